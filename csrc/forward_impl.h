/* The tiled forward pass, written once for REAL; included by forward.c with
 * REAL and SFX (f32/f64) defined. */

/* Where layer l of a tile writes: the caller's out for the last layer, else
 * one of the two halves of scratch, in turn (row stride in *ld). */
static REAL *FM_CAT(layer_output_, SFX)(const fm_layer *layers, int n_layers, int l, REAL *out,
                                        REAL *scratch, size_t stride, size_t tile, size_t *ld) {
    if (l + 1 == n_layers) {
        *ld = (size_t)layers[l].n_out;
        return out;
    }
    *ld = stride;
    return scratch + (size_t)(l & 1) * tile * stride;
}

/* One tile of rows through every layer: the first layer reads x and the last
 * writes out. */
static void FM_CAT(run_tile_, SFX)(const fm_kernel_table *k, const fm_layer *layers, int n_layers,
                                   const REAL *x, size_t rows, REAL *out, REAL *scratch,
                                   size_t stride, size_t tile) {
    REAL *apack = tile >= FM_PACK_MIN_ROWS ? scratch + 2 * tile * stride : NULL;
    const REAL *in = x;
    size_t ld_in = (size_t)layers[0].n_in;
    for (int l = 0; l < n_layers; l++) {
        size_t ld_dst;
        REAL *dst = FM_CAT(layer_output_, SFX)(layers, n_layers, l, out, scratch, stride, tile,
                                               &ld_dst);
        k->FM_CAT(dense_cols_, SFX)(&layers[l], in, ld_in, rows, dst, ld_dst, 1, 0,
                                    fm_panels(layers[l].n_out, sizeof(REAL)), apack);
        in = dst;
        ld_in = ld_dst;
    }
}

typedef struct {
    const fm_kernel_table *k;
    const fm_layer *layers;
    int n_layers;
    const REAL *x;
    size_t rows;
    REAL *out;
    const fm_tiling *t;
    unsigned char *scratch; /* t->scratch_bytes for each slot */
} FM_CAT(tiles_job_, SFX);

static void FM_CAT(tile_task_, SFX)(void *ctx, int task, int slot) {
    const FM_CAT(tiles_job_, SFX) *job = ctx;
    const fm_tiling *t = job->t;
    const size_t n_in = (size_t)job->layers[0].n_in;
    const size_t n_out = (size_t)job->layers[job->n_layers - 1].n_out;
    const size_t r0 = (size_t)task * t->tile;
    const size_t rows = job->rows - r0 < t->tile ? job->rows - r0 : t->tile;
    FM_CAT(run_tile_, SFX)(job->k, job->layers, job->n_layers, job->x + r0 * n_in, rows,
                           job->out + r0 * n_out,
                           (REAL *)(job->scratch + (size_t)slot * t->scratch_bytes), t->stride,
                           t->tile);
}

/* One layer over a batch, its column panels shared out as tasks. */
typedef struct {
    const fm_kernel_table *k;
    const fm_layer *layer;
    const REAL *in;
    size_t ld_in, rows;
    REAL *dst;
    size_t ld_dst;
    int n_panels, n_tasks;
} FM_CAT(columns_job_, SFX);

static void FM_CAT(columns_task_, SFX)(void *ctx, int task, int slot) {
    const FM_CAT(columns_job_, SFX) *job = ctx;
    (void)slot;
    const int first = job->n_panels * task / job->n_tasks;
    const int end = job->n_panels * (task + 1) / job->n_tasks;
    if (first < end)
        job->k->FM_CAT(dense_cols_, SFX)(job->layer, job->in, job->ld_in, job->rows, job->dst,
                                          job->ld_dst, 1, first, end, NULL);
}

/* A batch too small to give every slot its own tiles: layer after layer, each
 * slot computes its own share of the columns (the same share every call, so
 * its part of the weights stays in its core's cache). */
static void FM_CAT(run_split_, SFX)(const fm_kernel_table *k, const fm_layer *layers,
                                    int n_layers, const REAL *x, size_t rows, REAL *out,
                                    REAL *scratch, size_t stride, size_t tile, int width) {
    const REAL *in = x;
    size_t ld_in = (size_t)layers[0].n_in;
    for (int l = 0; l < n_layers; l++) {
        size_t ld_dst;
        REAL *dst = FM_CAT(layer_output_, SFX)(layers, n_layers, l, out, scratch, stride, tile,
                                               &ld_dst);
        FM_CAT(columns_job_, SFX) job = {k, &layers[l], in, ld_in, rows, dst, ld_dst,
                                         fm_panels(layers[l].n_out, sizeof(REAL)), 2 * width};
        fm_pool_run(FM_CAT(columns_task_, SFX), &job, job.n_tasks, width);
        /* dense_cols leaves softmax to whoever sees whole rows. */
        if (fm_activation_needs_whole_rows(layers[l].activation.kind) && job.n_panels > 1)
            k->FM_CAT(activate_, SFX)(layers[l].activation, dst, rows, layers[l].n_out, ld_dst);
        in = dst;
        ld_in = ld_dst;
    }
}

int FM_CAT(fm_forward_, SFX)(const fm_layer *layers, int n_layers, const REAL *x, size_t rows,
                             REAL *out, int threads) {
    if (rows == 0 || n_layers <= 0) return 0;
    const fm_kernel_table *k = fm_kernels();
    const fm_tiling t = plan_tiles(layers, n_layers, rows, sizeof(REAL), threads);
    const int width = t.threads > 1 ? fm_pool_reserve(t.threads) : 1;
    const size_t n_in = (size_t)layers[0].n_in, n_out = (size_t)layers[n_layers - 1].n_out;
    const size_t slots = t.split_columns ? 1 : (size_t)width;
    _Alignas(FM_ALIGN) unsigned char stack[FM_STACK_SCRATCH];
    unsigned char *scratch = stack;
    if (t.scratch_bytes * slots > sizeof stack) {
        scratch = fm_aligned_alloc(t.scratch_bytes * slots);
        if (!scratch) {
            fm_pool_release(width);
            return -1;
        }
    }
    if (t.split_columns && width > 1) {
        for (size_t r0 = 0; r0 < rows; r0 += t.tile)
            FM_CAT(run_split_, SFX)(k, layers, n_layers, x + r0 * n_in,
                                    rows - r0 < t.tile ? rows - r0 : t.tile, out + r0 * n_out,
                                    (REAL *)scratch, t.stride, t.tile, width);
    } else {
        FM_CAT(tiles_job_, SFX) job = {k, layers, n_layers, x, rows, out, &t, scratch};
        fm_pool_run(FM_CAT(tile_task_, SFX), &job, (int)t.n_tiles, width);
    }
    fm_pool_release(width);
    if (scratch != stack) fm_aligned_free(scratch);
    return 0;
}
