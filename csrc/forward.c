/* The whole forward pass: the batch is cut into row tiles that go through
 * every layer while their intermediates stay in cache, so no intermediate of
 * the whole batch is ever stored; tiles are spread over OpenMP threads. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "fastmlp.h"
#include "kernel_table.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Scratch per thread: two tiles of intermediates, sized to sit in L2. */
#define FM_TILE_BYTES (512 * 1024)
#define FM_MAX_TILE_ROWS 512
/* Multiple of every kernel's rows per micro-tile (8, 3, 2). */
#define FM_TILE_QUANTUM 24
/* Below this many multiply-adds a call is not worth waking other threads. */
#define FM_PARALLEL_MIN_MACS (1u << 18)

int fm_have_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int fm_default_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* Extra threads (beyond each caller's own) running in all calls together, so
 * that calls from many Python threads never ask for more threads than cores. */
static atomic_int extra_threads_in_use;

static int reserve_extra_threads(int wanted) {
#ifdef _OPENMP
    const int cap = omp_get_num_procs() - 1;
    int in_use = atomic_load(&extra_threads_in_use), got;
    do {
        got = cap - in_use;
        got = got < 0 ? 0 : (got > wanted ? wanted : got);
    } while (got > 0 && !atomic_compare_exchange_weak(&extra_threads_in_use, &in_use, in_use + got));
    return got;
#else
    (void)wanted;
    return 0;
#endif
}

static void release_extra_threads(int n) {
    if (n > 0) atomic_fetch_sub(&extra_threads_in_use, n);
}

static size_t round_up(size_t n, size_t quantum) { return (n + quantum - 1) / quantum * quantum; }

/* Widest intermediate (every layer's output but the last), padded to a cache line. */
static size_t scratch_stride(const fm_layer *layers, int n_layers, size_t elem) {
    size_t widest = 0;
    for (int l = 0; l + 1 < n_layers; l++)
        if ((size_t)layers[l].n_out > widest) widest = (size_t)layers[l].n_out;
    return round_up(widest, FM_ALIGN / elem);
}

static size_t tile_rows(size_t rows, size_t stride, size_t elem) {
    size_t tile = stride ? FM_TILE_BYTES / (2 * stride * elem) : FM_MAX_TILE_ROWS;
    tile = tile / FM_TILE_QUANTUM * FM_TILE_QUANTUM;
    if (tile < FM_TILE_QUANTUM) tile = FM_TILE_QUANTUM;
    if (tile > FM_MAX_TILE_ROWS) tile = FM_MAX_TILE_ROWS;
    return tile < rows ? tile : rows;
}

static double macs_per_row(const fm_layer *layers, int n_layers) {
    double macs = 0;
    for (int l = 0; l < n_layers; l++) macs += (double)layers[l].n_in * layers[l].n_out;
    return macs;
}

static int threads_for(const fm_layer *layers, int n_layers, size_t rows, size_t n_tiles,
                       int threads) {
    if (threads <= 0) threads = fm_default_threads();
    if ((size_t)threads > n_tiles) threads = (int)n_tiles;
    if (macs_per_row(layers, n_layers) * rows < FM_PARALLEL_MIN_MACS) threads = 1;
    return threads < 1 ? 1 : threads;
}

#define FM_DEFINE_FORWARD(SFX, REAL)                                                           \
    static void run_tile_##SFX(const fm_kernel_table *k, const fm_layer *layers, int n_layers, \
                               const REAL *x, size_t rows, REAL *out, REAL *scratch,          \
                               size_t stride, size_t tile) {                                   \
        const REAL *in = x;                                                                    \
        size_t ld_in = (size_t)layers[0].n_in;                                                 \
        for (int l = 0; l < n_layers; l++) {                                                   \
            const int last = l + 1 == n_layers;                                                \
            REAL *dst = last ? out : scratch + (size_t)(l & 1) * tile * stride;                \
            size_t ld_dst = last ? (size_t)layers[l].n_out : stride;                           \
            k->dense_##SFX(&layers[l], in, ld_in, rows, dst, ld_dst, 1);                       \
            in = dst;                                                                          \
            ld_in = ld_dst;                                                                    \
        }                                                                                      \
    }                                                                                          \
                                                                                               \
    int fm_forward_##SFX(const fm_layer *layers, int n_layers, const REAL *x, size_t rows,     \
                         REAL *out, int threads) {                                             \
        if (rows == 0 || n_layers <= 0) return 0;                                              \
        const fm_kernel_table *k = fm_kernels();                                               \
        const size_t n_in = (size_t)layers[0].n_in, n_out = (size_t)layers[n_layers - 1].n_out; \
        const size_t stride = scratch_stride(layers, n_layers, sizeof(REAL));                  \
        const size_t tile = tile_rows(rows, stride, sizeof(REAL));                             \
        const size_t n_tiles = (rows + tile - 1) / tile;                                       \
        int extra = threads_for(layers, n_layers, rows, n_tiles, threads) - 1;                 \
        extra = reserve_extra_threads(extra);                                                  \
        const size_t scratch_bytes = round_up(2 * tile * stride * sizeof(REAL), FM_ALIGN);     \
        int failed = 0;                                                                        \
        FM_PARALLEL(extra + 1)                                                                 \
        {                                                                                      \
            REAL *scratch = scratch_bytes ? aligned_alloc(FM_ALIGN, scratch_bytes) : NULL;     \
            if (scratch_bytes && !scratch) failed = 1;                                         \
            FM_FOR_TILES                                                                       \
            for (size_t t = 0; t < n_tiles; t++) {                                             \
                if (failed) continue;                                                          \
                const size_t r0 = t * tile, r = rows - r0 < tile ? rows - r0 : tile;           \
                run_tile_##SFX(k, layers, n_layers, x + r0 * n_in, r, out + r0 * n_out,        \
                               scratch, stride, tile);                                         \
            }                                                                                  \
            free(scratch);                                                                     \
        }                                                                                      \
        release_extra_threads(extra);                                                          \
        return failed ? -1 : 0;                                                                \
    }

#ifdef _OPENMP
#define FM_PRAGMA(x) _Pragma(#x)
#define FM_PARALLEL(n) FM_PRAGMA(omp parallel num_threads(n) if (n > 1))
#define FM_FOR_TILES FM_PRAGMA(omp for schedule(dynamic, 1))
#else
#define FM_PARALLEL(n)
#define FM_FOR_TILES
#endif

FM_DEFINE_FORWARD(f32, float)
FM_DEFINE_FORWARD(f64, double)
