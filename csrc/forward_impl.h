/* The tiled forward pass over routed steps, written once for REAL; included by forward.c
 * with REAL and SFX (f32/f64) defined. */

/* A step's buffer inside the tile: the caller's input or output, or a scratch buffer
 * (row stride in *ld). */
typedef struct {
    const REAL *x;
    REAL *out;
    REAL *scratch;
    size_t n_in, n_out, stride, tile;
} FM_CAT(tile_buffers_, SFX);

static REAL *FM_CAT(buffer_, SFX)(const FM_CAT(tile_buffers_, SFX) *b, int id, size_t *ld) {
    if (id == FM_BUF_INPUT) {
        *ld = b->n_in;
        return (REAL *)b->x; /* only ever read */
    }
    if (id == FM_BUF_OUTPUT) {
        *ld = b->n_out;
        return b->out;
    }
    *ld = b->stride;
    return b->scratch + (size_t)id * b->tile * b->stride;
}

/* Column panels [first, end) of a dense layer, by the kernel for its precision (reduced
 * precisions exist for float networks only: network.c refuses them for double ones). */
static void FM_CAT(dense_kernel_, SFX)(const fm_kernel_table *k, const fm_layer *layer,
                                       const REAL *in, size_t ld_in, size_t rows, REAL *dst,
                                       size_t ld_dst, int first, int end, REAL *apack) {
#if FM_FORWARD_FLOAT
    if (layer->precision != FM_PRECISION_NATIVE) {
        k->dense_reduced_cols(layer, in, ld_in, rows, dst, ld_dst, 1, first, end, apack);
        return;
    }
#endif
    k->FM_CAT(dense_cols_, SFX)(layer, in, ld_in, rows, dst, ld_dst, 1, first, end, apack);
}

/* One dense layer over `rows`, its column panels shared out over the pool. */
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
        FM_CAT(dense_kernel_, SFX)(job->k, job->layer, job->in, job->ld_in, job->rows, job->dst,
                                   job->ld_dst, first, end, NULL);
}

static void FM_CAT(run_dense_, SFX)(const fm_kernel_table *k, const fm_layer *layer,
                                    const REAL *in, size_t ld_in, size_t rows, REAL *dst,
                                    size_t ld_dst, REAL *apack, int width) {
    const int n_panels = fm_panels(layer->n_out, sizeof(REAL));
    if (width <= 1) {
        FM_CAT(dense_kernel_, SFX)(k, layer, in, ld_in, rows, dst, ld_dst, 0, n_panels, apack);
        return;
    }
    /* Each slot computes the same share of the columns every call, so its part of the
     * weights stays in its core's cache. */
    FM_CAT(columns_job_, SFX) job = {k, layer, in, ld_in, rows, dst, ld_dst, n_panels, 2 * width};
    fm_pool_run(FM_CAT(columns_task_, SFX), &job, job.n_tasks, width);
    /* dense_cols leaves softmax to whoever sees whole rows. */
    if (fm_activation_needs_whole_rows(layer->activation.kind) && n_panels > 1)
        k->FM_CAT(activate_, SFX)(layer->activation, dst, rows, layer->n_out, ld_dst);
}

/* One tile of rows through every step; width > 1 shares each dense layer's columns over
 * that many slots of the pool (the caller holds it). */
static void FM_CAT(run_tile_, SFX)(const fm_kernel_table *k, const fm_step *steps, int n_steps,
                                   const FM_CAT(tile_buffers_, SFX) *b, size_t rows, REAL *apack,
                                   int width) {
    for (int i = 0; i < n_steps; i++) {
        const fm_step *s = &steps[i];
        const size_t n = (size_t)s->layer.n_out;
        size_t ld_src, ld_dst;
        const REAL *src = FM_CAT(buffer_, SFX)(b, s->src, &ld_src);
        REAL *dst = FM_CAT(buffer_, SFX)(b, s->dst, &ld_dst);
        switch (s->kind) {
        case FM_STEP_DENSE:
            FM_CAT(run_dense_, SFX)(k, &s->layer, src, ld_src, rows, dst, ld_dst, apack, width);
            break;
        case FM_STEP_AFFINE:
            FM_CAT(fm_affine_, SFX)(src, ld_src, rows, n, s->scale, s->shift, dst, ld_dst);
            break;
        case FM_STEP_LAYERNORM:
            FM_CAT(fm_layernorm_, SFX)(src, ld_src, rows, n, s->scale, s->shift, s->eps, dst,
                                       ld_dst);
            break;
        case FM_STEP_ACTIVATION:
            FM_CAT(fm_copy_rows_, SFX)(src, ld_src, rows, n, dst, ld_dst);
            k->FM_CAT(activate_, SFX)(s->layer.activation, dst, rows, n, ld_dst);
            break;
        case FM_STEP_RESIDUAL_END: {
            size_t ld_saved;
            const REAL *saved = FM_CAT(buffer_, SFX)(b, s->saved, &ld_saved);
            FM_CAT(fm_add_rows_, SFX)(src, ld_src, saved, ld_saved, rows, n, dst, ld_dst);
            break;
        }
        default: /* FM_STEP_RESIDUAL_BEGIN: remembers its input; a copy only when traced */
            FM_CAT(fm_copy_rows_, SFX)(src, ld_src, rows, n, dst, ld_dst);
        }
    }
}

typedef struct {
    const fm_kernel_table *k;
    const fm_step *steps;
    int n_steps, n_buffers;
    const REAL *x;
    size_t rows;
    REAL *out;
    const fm_tiling *t;
    unsigned char *scratch; /* t->scratch_bytes for each slot */
} FM_CAT(tiles_job_, SFX);

static REAL *FM_CAT(pack_area_, SFX)(REAL *scratch, const fm_tiling *t, int n_buffers) {
    return t->pack_elems ? scratch + (size_t)n_buffers * t->tile * t->stride : NULL;
}

static void FM_CAT(tile_task_, SFX)(void *ctx, int task, int slot) {
    const FM_CAT(tiles_job_, SFX) *job = ctx;
    const fm_tiling *t = job->t;
    const size_t n_in = (size_t)job->steps[0].layer.n_in;
    const size_t n_out = (size_t)job->steps[job->n_steps - 1].layer.n_out;
    const size_t r0 = (size_t)task * t->tile;
    const size_t rows = job->rows - r0 < t->tile ? job->rows - r0 : t->tile;
    REAL *scratch = (REAL *)(job->scratch + (size_t)slot * t->scratch_bytes);
    const FM_CAT(tile_buffers_, SFX) b = {job->x + r0 * n_in, job->out + r0 * n_out, scratch,
                                          n_in, n_out, t->stride, t->tile};
    FM_CAT(run_tile_, SFX)(job->k, job->steps, job->n_steps, &b, rows,
                           FM_CAT(pack_area_, SFX)(scratch, t, job->n_buffers), 1);
}

int FM_CAT(fm_run_steps_, SFX)(const fm_step *steps, int n_steps, int n_buffers, const REAL *x,
                               size_t rows, REAL *out, int threads,
                               const fm_plan_options *options, const fm_tiling *planned) {
    if (rows == 0 || n_steps <= 0) return FM_OK;
    const fm_kernel_table *k = fm_kernels();
    const fm_tiling t = planned ? *planned
                                : fm_plan_tiles(steps, n_steps, n_buffers, rows, sizeof(REAL),
                                                threads, options);
    const int width = t.threads > 1 ? fm_pool_reserve(t.threads) : 1;
    const size_t n_in = (size_t)steps[0].layer.n_in;
    const size_t n_out = (size_t)steps[n_steps - 1].layer.n_out;
    const size_t slots = t.split_columns ? 1 : (size_t)width;
    _Alignas(FM_ALIGN) unsigned char stack[FM_STACK_SCRATCH];
    unsigned char *scratch = stack;
    if (t.scratch_bytes * slots > sizeof stack) {
        scratch = fm_aligned_alloc(t.scratch_bytes * slots);
        if (!scratch) {
            fm_pool_release(width);
            return FM_ERR_NO_MEMORY;
        }
    }
    if (t.split_columns && width > 1) {
        for (size_t r0 = 0; r0 < rows; r0 += t.tile) {
            const FM_CAT(tile_buffers_, SFX) b = {x + r0 * n_in, out + r0 * n_out, (REAL *)scratch,
                                                  n_in, n_out, t.stride, t.tile};
            FM_CAT(run_tile_, SFX)(k, steps, n_steps, &b, rows - r0 < t.tile ? rows - r0 : t.tile,
                                   NULL, width);
        }
    } else {
        FM_CAT(tiles_job_, SFX) job = {k, steps, n_steps, n_buffers, x, rows, out, &t, scratch};
        fm_pool_run(FM_CAT(tile_task_, SFX), &job, (int)t.n_tiles, width);
    }
    fm_pool_release(width);
    if (scratch != stack) fm_aligned_free(scratch);
    return FM_OK;
}

int FM_CAT(fm_forward_, SFX)(const fm_layer *layers, int n_layers, const REAL *x, size_t rows,
                             REAL *out, int threads) {
    if (rows == 0 || n_layers <= 0) return FM_OK;
    int n_buffers;
    fm_step *steps = steps_of_layers(layers, n_layers, sizeof(REAL), &n_buffers);
    if (!steps) return FM_ERR_NO_MEMORY;
    int rc = FM_CAT(fm_run_steps_, SFX)(steps, n_layers, n_buffers, x, rows, out, threads, NULL,
                                        NULL);
    free(steps);
    return rc;
}
