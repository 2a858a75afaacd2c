/* The whole forward pass: the batch is cut into row tiles that go through
 * every layer while their intermediates stay in cache, so no intermediate of
 * the whole batch is ever stored; tiles, or for small batches each layer's
 * columns, are shared out over the thread pool. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "fastmlp.h"
#include "isa.h"
#include "forward.h"
#include "kernel_table.h"
#include "pool.h"
#include "steps.h"

/* Scratch per thread for a tile's intermediates (at least two buffers' worth): half of
 * one core's L2 where the widths allow (within these bounds, whatever the CPU reports),
 * but never fewer than FM_MIN_TILE_ROWS rows, since every tile reads all the weights
 * once. */
#define FM_TILE_BYTES_DEFAULT (512 * 1024)
#define FM_TILE_BYTES_MIN (256 * 1024)
#define FM_TILE_BYTES_MAX (1024 * 1024)
#define FM_MIN_TILE_ROWS 96
/* Tiles per thread when threads share a call, of at least this many rows. */
#define FM_SHARED_TILES 4
#define FM_MIN_SHARED_TILE_ROWS 48
#define FM_MAX_TILE_ROWS 512
/* Rows per tile of a network whose widest buffers do not fit L2 at FM_MIN_TILE_ROWS. */
#define FM_STREAMING_TILE_ROWS 288
/* Below this many multiply-adds a call is not worth waking other threads. */
#define FM_PARALLEL_MIN_MACS (1u << 18)
/* Batches of fewer rows per thread than this share each layer by columns
 * between threads, when the call has this many multiply-adds or weights too
 * large for one core's L2 (then each core keeps its share cached). Below that,
 * a team's start and its barrier per layer (about 1 and 0.3 us measured here)
 * cost more than they save. */
#define FM_SPLIT_MAX_ROWS 64
#define FM_SPLIT_MIN_MACS (2u << 20)
#define FM_SPLIT_MIN_WEIGHT_BYTES (1u << 20)
/* Scratch of single-threaded calls up to this size lives on the stack. */
#define FM_STACK_SCRATCH (16 * 1024)

/* Set once, by fm_select_kernel at import, before any call reads it. */
static size_t tile_bytes = FM_TILE_BYTES_DEFAULT;

void fm_plan_set_l2(size_t l2_bytes) {
    const size_t half = l2_bytes / 2;
    tile_bytes = half < FM_TILE_BYTES_MIN   ? FM_TILE_BYTES_MIN
                 : half > FM_TILE_BYTES_MAX ? FM_TILE_BYTES_MAX
                                            : half;
}

size_t fm_plan_tile_bytes(void) { return tile_bytes; }

static size_t round_up(size_t n, size_t quantum) { return (n + quantum - 1) / quantum * quantum; }

static int fm_panels(int n_out, size_t elem) {
    return (int)(((size_t)n_out * elem + FM_PANEL_BYTES - 1) / FM_PANEL_BYTES);
}

static const fm_plan_options every_choice_planned = {0, FM_SPLIT_AUTO, FM_DENSE_AUTO, 0};

/* Multiply-adds per row: a dense step's n_in x n_out, about one operation per value for
 * the row-wise ones. */
static double steps_macs(const fm_step *steps, int n_steps) {
    double macs = 0;
    for (int i = 0; i < n_steps; i++) {
        const fm_layer *l = &steps[i].layer;
        macs += steps[i].kind == FM_STEP_DENSE ? (double)l->n_in * l->n_out : l->n_out;
    }
    return macs;
}

/* A call too small to wake other threads: it runs on the caller's alone, in tiles planned
 * for one thread (unless its weights are large enough that columns shared out pay). */
static int too_small_to_share(double macs, size_t rows, const fm_plan_options *options) {
    return options->split == FM_SPLIT_AUTO && macs * rows < FM_PARALLEL_MIN_MACS;
}

static int serial_call(double macs, size_t rows, size_t elem, const fm_plan_options *options) {
    return too_small_to_share(macs, rows, options) && macs * elem <= FM_SPLIT_MIN_WEIGHT_BYTES;
}

int fm_plan_is_serial(const fm_step *steps, int n_steps, size_t rows, size_t elem,
                      const fm_plan_options *options) {
    if (!options) options = &every_choice_planned;
    return serial_call(steps_macs(steps, n_steps), rows, elem, options);
}

fm_tiling fm_plan_tiles(const fm_step *steps, int n_steps, int n_buffers, size_t rows,
                        size_t elem, int threads, const fm_plan_options *options) {
    if (!options) options = &every_choice_planned;
    fm_tiling t;
    size_t widest = 0; /* widest value kept in scratch */
    const double macs = steps_macs(steps, n_steps);
    /* The most inputs a dense step packs at once: only the caller's input or output can
     * have rows 4 KiB apart (scratch rows never do); every area has room for FM_KC, and for
     * the rows a reduced-precision layer prepares (fm_reduced_area_k). */
    int k_block = FM_KC;
    int all_reduced = 1; /* every dense step has reduced-precision weights */
    for (int i = 0; i < n_steps; i++) {
        const fm_layer *l = &steps[i].layer;
        if (steps[i].dst >= 0 && (size_t)l->n_out > widest) widest = l->n_out;
        const int packs = steps[i].kind == FM_STEP_DENSE && steps[i].src < 0
                              ? (l->k_block < l->n_in ? l->k_block : l->n_in) : 0;
        const int prepares = steps[i].kind == FM_STEP_DENSE &&
                                     l->precision != FM_PRECISION_NATIVE
                                 ? fm_reduced_area_k(l->n_in)
                                 : 0;
        k_block = packs > k_block ? packs : k_block;
        k_block = prepares > k_block ? prepares : k_block;
        if (steps[i].kind == FM_STEP_DENSE && !prepares) all_reduced = 0;
    }
    /* Tiles are whole micro-tiles of the float kernels (a multiple of their mr), or for a
     * network of reduced-precision layers whole groups of their kernels: AMX multiplies
     * 32 rows at once (two tiles of 16), and every variant's group divides that. A tile of
     * 240 rows (7.5 groups) took 784-512-256-10 in bfloat16 at 16384 rows 1.04x longer
     * than one of 192 (Sapphire Rapids, one thread). */
    const size_t quantum = all_reduced ? FM_REDUCED_TILE_QUANTUM : FM_TILE_QUANTUM;
    const size_t micro = all_reduced ? FM_REDUCED_TILE_QUANTUM : (size_t)fm_kernels()->mr;
    /* Rows start on cache lines, except narrow ones, kept dense so that their
     * activation runs over the tile as one contiguous stretch. */
    t.stride = widest * elem < FM_ALIGN ? widest : round_up(widest, FM_ALIGN / elem);
    /* Rows 4 KiB apart share L1 sets; one cache line more keeps them apart. */
    if (t.stride && (t.stride * elem) % 4096 == 0) t.stride += FM_ALIGN / elem;
    const size_t buffers = n_buffers > 2 ? (size_t)n_buffers : 2;
    /* A network of reduced-precision layers also prepares each layer's rows in the tile's
     * scratch (k_block values a row, as much as a buffer), and its weights take less of L2:
     * the whole of it counts. 784-512-256-10 at 16384 rows, one thread, 128-row tiles
     * against 256 (Sapphire Rapids): bfloat16 1.04x, int8 1.08x. */
    const size_t row_bytes = (buffers * t.stride + (all_reduced ? (size_t)k_block : 0)) * elem;
    size_t cap = t.stride ? tile_bytes / row_bytes : FM_MAX_TILE_ROWS;
    cap = cap / quantum * quantum;
    /* Buffers too wide for L2 even at the lowest height stream through L3 whatever the
     * height: then what counts is how many rows use each block of weights fetched, as in
     * a GEMM's row blocks. Measured on an Intel Xeon (Sapphire Rapids, AVX-512, 2 MiB L2),
     * 1024-4096-1024 at 1024 rows on one thread, against 96 rows: 288 rows 1.14x in
     * float32, 1.10x in float64. Reduced-precision layers keep to the target while a
     * group of their rows fits it (their prepared rows count in it): on AMD Zen 3 (512 KiB
     * of L2), 784-512-256-10 at 16384 rows, one thread, 32-row tiles ran as fast as 288
     * (int8 and bfloat16, within the noise). Buffers of at most twice L2 at the lowest
     * height (four times the target) take that height rather than stream: on Zen 3,
     * 784-512-256-10 (4 KiB of buffers a row) at 4096 rows in 96-row tiles against 288,
     * float32 1.035x on one thread, 1.08x on two (1024 rows; 1.07x at 16384 rows); in
     * float64 (8 KiB a row: 1.5 times L2 at 96 rows) 1.05x at 16384 rows on one thread,
     * 1.08x at 1024 rows on two, even at 1024 rows on one. */
    const size_t lowest = all_reduced ? quantum : FM_MIN_TILE_ROWS;
    const int streaming = cap < lowest && lowest * row_bytes > 4 * tile_bytes;
    cap = streaming ? FM_STREAMING_TILE_ROWS : cap < lowest ? lowest : cap;
    cap = cap > FM_MAX_TILE_ROWS ? FM_MAX_TILE_ROWS : cap;

    /* A serial call does not ask for the default count: that is a system call (the CPUs
     * this process may run on) of 103 ns; skipping it took 64-128-128-10 at batch 1 from
     * 1084 to 918 ns a call (Sapphire Rapids). */
    if (threads <= 0) threads = serial_call(macs, rows, elem, options) ? 1 : fm_default_threads();
    const size_t rows_per_thread = (rows + threads - 1) / threads;
    /* Few rows per thread: tiles would make every thread stream all the
     * weights, so the team shares each layer by columns instead. */
    if (options->split == FM_SPLIT_AUTO)
        t.split_columns = threads > 1 && rows_per_thread < FM_SPLIT_MAX_ROWS &&
                          (macs * rows >= FM_SPLIT_MIN_MACS ||
                           macs * elem > FM_SPLIT_MIN_WEIGHT_BYTES);
    else
        t.split_columns = threads > 1 && options->split == FM_SPLIT_COLUMNS;
    if (!t.split_columns && too_small_to_share(macs, rows, options)) threads = 1;
    const int mr = fm_kernels()->mr;
    /* Every thread gets the same number of tiles (11 tiles on 2 threads would leave one
     * idle for a tile's time): the fewest tiles of at most cap rows that the threads
     * share evenly, their height rounded up to whole micro-tiles only (cap is a
     * multiple of the quantum, so it stays within cap). */
    size_t per_thread = ((rows + threads - 1) / threads + cap - 1) / cap;
    /* Shared, several tiles each: the pool gives a thread's tiles to whoever is free, so a
     * core slowed by other work (a busy host) takes fewer. Measured on Zen 4, two threads
     * against one, 1024 rows, interleaved: 64-128-128-10 1.74x in 2 tiles each, 1.80x in 4;
     * 256-256-256-256-1 1.76x and 1.92x. One thread ran within 1% from 48 rows a tile. */
    if (threads > 1) { /* rows_per_thread is still this many threads' share */
        /* streaming: tall tiles pay more than spare ones (1024 rows of 1024-4096-1024 on
         * two threads, float32: 2 tiles each of 256 rows 1.12x faster than 4 of 128) */
        const size_t fit =
            rows_per_thread / (streaming ? FM_STREAMING_TILE_ROWS : FM_MIN_SHARED_TILE_ROWS);
        const size_t want = fit < FM_SHARED_TILES ? fit : FM_SHARED_TILES;
        per_thread = per_thread > want ? per_thread : want;
    }
    const size_t even = per_thread * (size_t)threads;
    size_t tile = t.split_columns ? rows : round_up((rows + even - 1) / even, micro);
    t.tile = tile < cap ? tile : cap;
    /* Forced heights are a multiple of FM_TILE_QUANTUM (kernels.def: of every mr). */
    if (options->tile_rows > 0) t.tile = round_up((size_t)options->tile_rows, FM_TILE_QUANTUM);
    t.tile = t.tile < rows ? t.tile : rows;
    t.n_tiles = (rows + t.tile - 1) / t.tile;
    if (!t.split_columns && (size_t)threads > t.n_tiles) threads = (int)t.n_tiles;
    /* The tile's scratch buffers, then room to pack a tile's rows for the kernel (which
     * packs any tile of more rows than one micro-tile). */
    t.scratch_bytes = round_up((size_t)n_buffers * t.tile * t.stride * elem, FM_ALIGN);
    t.pack_elems = t.tile > (size_t)mr ? fm_pack_area_elems(t.tile, mr, k_block) : 0;
    t.scratch_bytes += t.pack_elems * elem;
    t.threads = threads > 1 ? threads : 1;
    return t;
}

/* Planned: all the inputs, or the fewest even blocks whose panel of weights (k x 128 bytes)
 * takes at most a quarter of L2 (half the tile's target): sums stay in registers over a
 * whole block, and each block of weights, fetched once per tile, serves all of its rows
 * from L2. Measured on Zen 4 (AVX2, 1 MiB L2) against the former fixed 256, interleaved:
 * 1024-4096-1024 at 1024 rows 1.07x on one thread, 1.01x on two, 1.06x at 32 rows;
 * 784-512-256-10 1.06x at 1024 rows, 1.07x at 16384 on two threads.
 * The rows' block of inputs (k values of the tallest tile's rows) must also stay in L2,
 * or every panel reads it again from L3, as in a GEMM whose A block outgrows L2. A panel
 * reads elem bytes of a row per NR = 128 / elem multiply-adds: float64 re-reads four
 * times float32's bytes per multiply-add, so its blocks are a quarter the size (float32:
 * the rows' block in L2, 1820 inputs; float64: 455). Sapphire Rapids, 1024-4096-1024 in
 * float64 on one thread, blocks of 342 and 410 inputs against all of them: 1024 rows 1.22x
 * (220 against 269 ms), 16384 rows 1.23x; float32 (4096 inputs in 3 blocks) within 2%.
 * But never fewer than FM_MIN_K_BLOCK_BYTES of a row (1024 float32 inputs, 512 float64)
 * for the rows' sake: every block costs each micro-tile its sums reloaded and its rows'
 * streams started again, and on a small L2 the rule above cut blocks too short. AMD Zen 3
 * (512 KiB L2, AVX2), one layer of 288 rows, blocks of 512 against the rule's: float64
 * 1024->4096 39.8 against 35.9 GFLOP/s (103 inputs), 512->256 43.0 against 40.6 (103);
 * float32 1024->4096 90.5 against 86.1 (342), 512->256 97.8 against 92.4 (256); float64
 * 4096->1024 the same (39.0, 39.2). float32 blocks of 1024 against 512, the whole
 * 1024-4096-1024 at 1024 rows, interleaved: 1.01-1.03x on one thread (the noise of that
 * host is as large), 1.04x on two; 32 rows even. The rows' block of 512 float64 inputs
 * still fits Sapphire Rapids' L2 (1.2 of 2 MiB); its float32 rule gives more than 1024
 * inputs there anyway. */
#define FM_MIN_K_BLOCK_BYTES 4096
int fm_plan_k_block(const fm_layer *layer, size_t elem, size_t tile_rows, int forced) {
    if (forced > 0) return layer->n_in < forced ? layer->n_in : forced;
    const int by_weights = (int)(tile_bytes / 2 / FM_PANEL_BYTES);
    const size_t rows_limit = 2 * tile_bytes * sizeof(float) / (tile_rows * elem * elem);
    const int fewest = (int)(FM_MIN_K_BLOCK_BYTES / elem);
    const int by_rows = rows_limit < (size_t)fewest ? fewest
                        : rows_limit < INT_MAX          ? (int)rows_limit
                                                        : INT_MAX;
    const int most = by_weights < by_rows ? by_weights : by_rows;
    const int blocks = (layer->n_in + most - 1) / most;
    return blocks > 1 ? (layer->n_in + blocks - 1) / blocks : layer->n_in;
}

void fm_plan_k_blocks(fm_step *steps, int n_steps, int n_buffers, size_t elem,
                      const fm_plan_options *options) {
    /* The tallest tile any call gets; its height does not depend on the blocks (they size
     * only its packing area). */
    for (int i = 0; i < n_steps; i++) steps[i].layer.k_block = steps[i].layer.n_in;
    const size_t tallest =
        fm_plan_tiles(steps, n_steps, n_buffers, (size_t)FM_MAX_TILE_ROWS * 64, elem, 1, options)
            .tile;
    const int forced = options ? options->k_block : 0;
    for (int i = 0; i < n_steps; i++)
        steps[i].layer.k_block = fm_plan_k_block(&steps[i].layer, elem, tallest, forced);
}

int fm_dense_method(const fm_layer *layer, size_t elem, size_t tile) {
    if (layer->precision != FM_PRECISION_NATIVE) return FM_DENSE_REDUCED;
    if (tile == 1) return FM_DENSE_ONE_ROW;
    const int nr = (int)(FM_PANEL_BYTES / elem);
    const int narrow = fm_dense_is_narrow(layer, fm_kernels()->narrow, nr, tile, 0,
                                          fm_panels(layer->n_out, elem));
    return narrow ? FM_DENSE_NARROW : FM_DENSE_PANELS;
}

/* Dense layers as steps of their own, for the layer-list API (fm_forward_*). */
static fm_step *steps_of_layers(const fm_layer *layers, int n_layers, size_t elem,
                                int *n_buffers) {
    fm_step *steps = calloc((size_t)n_layers, sizeof *steps);
    if (!steps) return NULL;
    for (int l = 0; l < n_layers; l++) {
        steps[l].kind = FM_STEP_DENSE;
        steps[l].layer = layers[l];
    }
    *n_buffers = fm_route_steps(steps, n_layers);
    fm_plan_k_blocks(steps, n_layers, *n_buffers, elem, NULL);
    for (int l = 0; l < n_layers; l++) /* the caller's own choice stands */
        if (layers[l].k_block > 0) steps[l].layer.k_block = layers[l].k_block;
    return steps;
}

#define REAL float
#define SFX f32
#define FM_FORWARD_FLOAT 1
#include "forward_impl.h"
#undef REAL
#undef SFX
#undef FM_FORWARD_FLOAT

#define REAL double
#define SFX f64
#define FM_FORWARD_FLOAT 0
#include "forward_impl.h"
