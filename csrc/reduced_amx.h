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
#include "reduced_avx512_rows.h"
#include "reduced_vnni_row.h"

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

/* int8 groups of at most this many rows run on AVX512-VNNI (reduced_vnni_row.h), one row
 * at a time: a tile multiply costs the same for 1 row as for 16, and a call of so few rows
 * is spared the tiles' configuration (the sums are exact: the same bits either way). */
#define RK_VNNI_ROWS 2

/* Tiles configured for the call unless none of its groups will use them; returns whether. */
static inline int rk_begin(int int8, size_t rows) {
    if (int8 && rows <= RK_VNNI_ROWS) return 0;
    _tile_loadconfig(&rk_config);
    return 1;
}

/* Back to the initial state: the next context switch saves no tile data. */
static inline void rk_end(int began) {
    if (began) _tile_release();
}

/* Zero rows added to a group of n prepared rows, so that its tiles read only its buffer. */
#define RK_INT8_PAD_ROWS(n) ((n) <= RK_VNNI_ROWS ? (n) : ((n) + 15) / 16 * 16)

/* The tiles' products of up to 32 rows (A, row stride `stride` bytes) and one panel of
 * weights (B, rows 128 bytes apart), over `blocks` tiles' worth of inputs, added to the
 * sums at `sums` (16 or 32 rows of 32 4-byte sums, `ld` bytes apart) if `carry`, else to
 * zero, and stored there. Carried sums leave and re-enter the tiles unchanged: a row gets
 * the same sequence of tile multiplies either way. */
#define RK_AMX_PANEL(DP, a, stride, w, blocks, two_groups, sums, ld, carry)                  \
    do {                                                                                      \
        if (carry) {                                                                          \
            RK_TILE_LOADD(0, (sums), (ld));                                                   \
            RK_TILE_LOADD(1, (sums) + 64, (ld));                                              \
            if (two_groups) {                                                                 \
                RK_TILE_LOADD(2, (sums) + 16 * (ld), (ld));                                   \
                RK_TILE_LOADD(3, (sums) + 16 * (ld) + 64, (ld));                              \
            }                                                                                 \
        } else {                                                                              \
            _tile_zero(0);                                                                    \
            _tile_zero(1);                                                                    \
            _tile_zero(2);                                                                    \
            _tile_zero(3);                                                                    \
        }                                                                                     \
        for (size_t b_ = 0; b_ < (blocks); b_++) {                                            \
            RK_TILE_LOADD(6, (w) + b_ * 16 * 128, 128);                                       \
            RK_TILE_LOADD(7, (w) + b_ * 16 * 128 + 64, 128);                                  \
            RK_TILE_LOADD(4, (a) + b_ * 64, (stride));                                        \
            DP(0, 4, 6);                                                                      \
            DP(1, 4, 7);                                                                      \
            if (two_groups) {                                                                 \
                RK_TILE_LOADD(5, (a) + 16 * (stride) + b_ * 64, (stride));                    \
                DP(2, 5, 6);                                                                  \
                DP(3, 5, 7);                                                                  \
            }                                                                                 \
        }                                                                                     \
        RK_TILE_STORED(0, (sums), (ld));                                                      \
        RK_TILE_STORED(1, (sums) + 64, (ld));                                                 \
        if (two_groups) {                                                                     \
            RK_TILE_STORED(2, (sums) + 16 * (ld), (ld));                                      \
            RK_TILE_STORED(3, (sums) + 16 * (ld) + 64, (ld));                                 \
        }                                                                                     \
    } while (0)

/* bfloat16: a row as bfloat16 bit patterns, padded with zeros to whole tiles. */
static size_t rk_bf16_row_bytes(int n_in) { return fm_bf16_pairs(n_in) * 4; }

static void rk_bf16_prepare_row(const float *x, int n_in, void *dst) {
    uint16_t *d = dst;
    rk_bf16_round_row(x, n_in, d);
    memset(d + n_in, 0, rk_bf16_row_bytes(n_in) - (size_t)n_in * 2);
}

/* Sums straight into z where the tiles cover exactly its rows and columns; else through
 * a buffer, copied row by row. */
static void rk_bf16_panel(const void *xp, size_t rows, int n_in, const uint16_t *w, float *z,
                          size_t ldz, int n_valid) {
    const size_t stride = rk_bf16_row_bytes(n_in), blocks = fm_bf16_pairs(n_in) / 16;
    const unsigned char *a = xp, *b = (const unsigned char *)w;
    if (n_valid == NR && (rows == 16 || rows == 32)) {
        RK_AMX_PANEL(_tile_dpbf16ps, a, stride, b, blocks, rows > 16, (unsigned char *)z,
                     ldz * sizeof(float), 0);
        return;
    }
    _Alignas(64) float sums[RK_GROUP * NR];
    RK_AMX_PANEL(_tile_dpbf16ps, a, stride, b, blocks, rows > 16, (unsigned char *)sums,
                 NR * sizeof(float), 0);
    for (size_t r = 0; r < rows; r++)
        memcpy(z + r * ldz, sums + r * NR, (size_t)n_valid * sizeof(float));
}

/* Tiles of inputs per pass over a panel's weights: 12 tiles of B (24 KB) stay in L1 while
 * every group of rows streams past them. A whole panel of a wide layer (50 KB for 784
 * inputs) does not, and re-reading it from L2 for each group of 32 rows bound the tile
 * multiplies by L2's bandwidth. */
#define RK_AMX_PASS_BLOCKS 12

/* Every group of n prepared rows x panels [first, end) of z = x w: full panels of inputs
 * wider than a pass in passes over the inputs, their sums carried in z between passes. */
#define RK_BF16_PANELS
static void rk_bf16_panels(const unsigned char *prepared, size_t n, int n_in,
                           const unsigned char *weights, size_t panel_bytes, int n_out,
                           float *out, size_t ldo, int first, int end) {
    const size_t stride = rk_bf16_row_bytes(n_in), blocks = fm_bf16_pairs(n_in) / 16;
    const size_t passes = (blocks + RK_AMX_PASS_BLOCKS - 1) / RK_AMX_PASS_BLOCKS;
    const size_t per_pass = (blocks + passes - 1) / passes;
    const size_t whole = passes > 1 ? n / 16 * 16 : 0; /* rows in whole tiles */
    for (int p = first; p < end; p++) {
        const int n_valid = n_out - p * NR < NR ? n_out - p * NR : NR;
        const unsigned char *w = weights + p * panel_bytes;
        size_t done = 0;
        if (n_valid == NR) {
            for (size_t b0 = 0; b0 < blocks; b0 += per_pass) {
                const size_t nb = blocks - b0 < per_pass ? blocks - b0 : per_pass;
                for (size_t i = 0; i < whole; i += RK_GROUP) {
                    unsigned char *z = (unsigned char *)(out + i * ldo + p * NR);
                    RK_AMX_PANEL(_tile_dpbf16ps, prepared + i * stride + b0 * 64, stride,
                                 w + b0 * 16 * 128, nb, whole - i > 16, z,
                                 ldo * sizeof(float), b0 > 0);
                }
            }
            done = whole;
        }
        for (size_t i = done; i < n; i += RK_GROUP) {
            const size_t mr = n - i < RK_GROUP ? n - i : RK_GROUP;
            rk_bf16_panel(prepared + i * stride, mr, n_in, (const uint16_t *)w,
                          out + i * ldo + p * NR, ldo, n_valid);
        }
    }
}

/* int8: a row as its int8 values, padded with zeros to whole tiles. */
static size_t rk_int8_row_bytes(int n_in) { return fm_int8_quads(n_in) * 4; }
#define RK_INT8_PUT(dst, k, q) (((int8_t *)(dst))[k] = (int8_t)(q))
#define RK_INT8_BYTES 1 /* bytes per stored input */

#define RK_INT8_QUANTIZE /* dense_reduced.c: the vector loop first */
static int rk_int8_quantize(const float *x, int n, float inv, void *dst) {
    return rk_int8_quantize_row(x, n, inv, dst, 0 /* stored signed */);
}

static void rk_int8_panel(const void *xq, size_t rows, int n_in, const unsigned char *panel,
                          int32_t *acc_out) {
    const size_t stride = rk_int8_row_bytes(n_in), blocks = fm_int8_quads(n_in) / 16;
    if (rows <= RK_VNNI_ROWS) { /* signed bytes, flipped to q + 128 */
        for (size_t r = 0; r < rows; r++)
            rk_vnni_int8_row((const unsigned char *)xq + r * stride, ((size_t)n_in + 3) / 4,
                             panel, acc_out + r * NR, (int32_t)0x80808080u);
        return;
    }
    RK_AMX_PANEL(_tile_dpbssd, (const unsigned char *)xq, stride, panel + 4 * NR, blocks,
                 rows > 16, (unsigned char *)acc_out, NR * sizeof(int32_t), 0);
}
