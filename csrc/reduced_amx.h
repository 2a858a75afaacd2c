/* Reduced-precision micro-kernels for AMX (dense_reduced.c's interface), as on Intel
 * Sapphire Rapids: tile multiplies of 16 rows by 16 columns, over 32 bfloat16 inputs
 * (tdpbf16ps) or 64 int8 inputs (tdpbssd, signed by signed: no offset needed) at once.
 *
 * Every tile is 16 rows of 64 bytes, configured once per layer call: tiles 0-3 hold the
 * sums of up to 32 rows x the two 16-column halves of a panel, 4-5 the rows' inputs,
 * 6-7 the two halves' weights. The weights are read in place: each panel's rows of
 * pairs (quads) are 128 bytes apart, padded to whole tiles (FM_REDUCED_K_ROWS), and the
 * prepared rows are padded with zero inputs and zero rows to whole tiles, so a tile never
 * reads past its buffer. A row's sums depend on its own inputs only, whatever the rows
 * beside it in the tile. */
#include "simd.h"

#define RK_GROUP 32
#define RK_ROW_QUANTUM 16

/* GCC spells tile loads and stores as inline assembly that passes the stride as a long (32
 * bits on Windows: no address register) and tells the compiler nothing of the memory a
 * load reads (so it could keep the prepared rows' stores for later). These wrappers pass
 * 64 bits and clobber memory. clang's and MSVC's intrinsics are builtins that know both. */
#if defined(__GNUC__) && !defined(__clang__) && !defined(FM_EMULATE_ISA)
#define RK_TILE_LOADD(t, base, stride)                                                        \
    __asm__ volatile("tileloadd\t(%0,%1,1), %%tmm" #t ::"r"((const void *)(base)),            \
                     "r"((long long)(stride))                                                 \
                     : "memory")
#define RK_TILE_STORED(t, base, stride)                                                       \
    __asm__ volatile("tilestored\t%%tmm" #t ", (%0,%1,1)" ::"r"((void *)(base)),               \
                     "r"((long long)(stride))                                                 \
                     : "memory")
#else
#define RK_TILE_LOADD(t, base, stride) _tile_loadd(t, base, stride)
#define RK_TILE_STORED(t, base, stride) _tile_stored(t, base, stride)
#endif

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} rk_tile_config;

/* Every tile 16 rows of 64 bytes. In read-only memory, whole: GCC's _tile_loadconfig tells
 * the compiler it reads 8 bytes, so the stores filling a local copy could be dropped. */
static const rk_tile_config rk_config = {
    .palette = 1,
    .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
    .rows = {16, 16, 16, 16, 16, 16, 16, 16},
};

static inline void rk_begin(void) { _tile_loadconfig(&rk_config); }

/* Back to the initial state: the next context switch saves no tile data. */
static inline void rk_end(void) { _tile_release(); }

/* Copies the tiles' sums (four 16 x 16 blocks of 4-byte values, in tile order) of `rows`
 * rows and n_valid columns to z. */
static void rk_copy_sums(const void *sums, size_t rows, int n_valid, void *z, size_t ldz) {
    const unsigned char *s = sums;
    unsigned char *d = z;
    for (size_t r = 0; r < rows; r++) {
        const unsigned char *block = s + (r / 16) * 2 * 1024 + (r % 16) * 64;
        const int left = n_valid < 16 ? n_valid : 16;
        memcpy(d + r * ldz * 4, block, (size_t)left * 4);
        if (n_valid > 16) memcpy(d + r * ldz * 4 + 64, block + 1024, (size_t)(n_valid - 16) * 4);
    }
}

/* The tiles' products of up to 32 rows (A, row stride `stride` bytes) and one panel of
 * weights (B, rows 128 bytes apart), over `blocks` tiles' worth of inputs, into `sums`. */
#define RK_AMX_PANEL(DP, a, stride, w, blocks, two_groups, sums)                              \
    do {                                                                                      \
        _tile_zero(0);                                                                        \
        _tile_zero(1);                                                                        \
        _tile_zero(2);                                                                        \
        _tile_zero(3);                                                                        \
        for (size_t b_ = 0; b_ < (blocks); b_++) {                                            \
            RK_TILE_LOADD(6, (w) + b_ * 16 * 128, 128);                                         \
            RK_TILE_LOADD(7, (w) + b_ * 16 * 128 + 64, 128);                                    \
            RK_TILE_LOADD(4, (a) + b_ * 64, (stride));                                   \
            DP(0, 4, 6);                                                                      \
            DP(1, 4, 7);                                                                      \
            if (two_groups) {                                                                 \
                RK_TILE_LOADD(5, (a) + 16 * (stride) + b_ * 64, (stride));               \
                DP(2, 5, 6);                                                                  \
                DP(3, 5, 7);                                                                  \
            }                                                                                 \
        }                                                                                     \
        RK_TILE_STORED(0, (sums), 64);                                                          \
        RK_TILE_STORED(1, (sums) + 1024, 64);                                                   \
        if (two_groups) {                                                                     \
            RK_TILE_STORED(2, (sums) + 2048, 64);                                               \
            RK_TILE_STORED(3, (sums) + 3072, 64);                                               \
        }                                                                                     \
    } while (0)

/* bfloat16: a row as bfloat16 bit patterns, padded with zeros to whole tiles. */
static size_t rk_bf16_row_bytes(int n_in) { return fm_bf16_pairs(n_in) * 4; }

static void rk_bf16_prepare_row(const float *x, int n_in, void *dst) {
    uint16_t *d = dst;
    for (int k = 0; k < n_in; k++) d[k] = bf16_bits(x[k]);
    memset(d + n_in, 0, rk_bf16_row_bytes(n_in) - (size_t)n_in * 2);
}

static void rk_bf16_panel(const void *xp, size_t rows, int n_in, const uint16_t *w, float *z,
                          size_t ldz, int n_valid) {
    _Alignas(64) unsigned char sums[4 * 1024];
    const size_t stride = rk_bf16_row_bytes(n_in), blocks = fm_bf16_pairs(n_in) / 16;
    RK_AMX_PANEL(_tile_dpbf16ps, (const unsigned char *)xp, stride, (const unsigned char *)w,
                 blocks, rows > 16, sums);
    rk_copy_sums(sums, rows, n_valid, z, ldz);
}

/* int8: a row as its int8 values, padded with zeros to whole tiles. */
static size_t rk_int8_row_bytes(int n_in) { return fm_int8_quads(n_in) * 4; }
#define RK_INT8_PUT(dst, k, q) (((int8_t *)(dst))[k] = (int8_t)(q))
#define RK_INT8_BYTES 1 /* bytes per stored input */

static void rk_int8_panel(const void *xq, size_t rows, int n_in, const unsigned char *panel,
                          int32_t *acc_out) {
    _Alignas(64) unsigned char sums[4 * 1024];
    const size_t stride = rk_int8_row_bytes(n_in), blocks = fm_int8_quads(n_in) / 16;
    RK_AMX_PANEL(_tile_dpbssd, (const unsigned char *)xq, stride, panel + 4 * NR, blocks,
                 rows > 16, sums);
    rk_copy_sums(sums, rows, NR, acc_out, NR);
}
