/* The tiled forward pass, written once for REAL; included by forward.c with
 * REAL and SFX (f32/f64) defined. */

/* One tile of rows through every layer: intermediates ping-pong between the
 * two halves of scratch; the first layer reads x and the last writes out. */
static void FM_CAT(run_tile_, SFX)(const fm_kernel_table *k, const fm_layer *layers, int n_layers,
                                   const REAL *x, size_t rows, REAL *out, REAL *scratch,
                                   size_t stride, size_t tile) {
    REAL *apack = tile >= FM_PACK_MIN_ROWS ? scratch + 2 * tile * stride : NULL;
    const REAL *in = x;
    size_t ld_in = (size_t)layers[0].n_in;
    for (int l = 0; l < n_layers; l++) {
        const int last = l + 1 == n_layers;
        REAL *dst = last ? out : scratch + (size_t)(l & 1) * tile * stride;
        const size_t ld_dst = last ? (size_t)layers[l].n_out : stride;
        k->FM_CAT(dense_cols_, SFX)(&layers[l], in, ld_in, rows, dst, ld_dst, 1, 0,
                                    fm_panels(layers[l].n_out, sizeof(REAL)), apack);
        in = dst;
        ld_in = ld_dst;
    }
}

#ifdef _OPENMP
/* One tile through every layer with the team sharing each layer by column
 * panels: for batches too small to give every thread its own tiles. Each
 * thread always takes the same panels, so its share of the weights stays in
 * its own core's cache from call to call. */
static void FM_CAT(run_tile_split_, SFX)(const fm_kernel_table *k, const fm_layer *layers,
                                         int n_layers, const REAL *x, size_t rows, REAL *out,
                                         REAL *scratch, size_t stride, size_t tile) {
    const int team = omp_get_num_threads(), me = omp_get_thread_num();
    const REAL *in = x;
    size_t ld_in = (size_t)layers[0].n_in;
    for (int l = 0; l < n_layers; l++) {
        const int last = l + 1 == n_layers;
        REAL *dst = last ? out : scratch + (size_t)(l & 1) * tile * stride;
        const size_t ld_dst = last ? (size_t)layers[l].n_out : stride;
        const int n_panels = fm_panels(layers[l].n_out, sizeof(REAL));
        k->FM_CAT(dense_cols_, SFX)(&layers[l], in, ld_in, rows, dst, ld_dst, 1,
                                    n_panels * me / team, n_panels * (me + 1) / team, NULL);
#pragma omp barrier
        if (layers[l].activation.kind == FM_SOFTMAX && n_panels > 1) {
            /* dense_cols leaves softmax to whoever sees the whole row. */
#pragma omp single
            k->FM_CAT(activate_, SFX)(layers[l].activation, dst, rows, layers[l].n_out, ld_dst);
        }
        in = dst;
        ld_in = ld_dst;
    }
}
#endif

static void FM_CAT(run_tiles_, SFX)(const fm_kernel_table *k, const fm_layer *layers,
                                    int n_layers, const REAL *x, size_t rows, REAL *out,
                                    REAL *scratch, const fm_tiling *t, size_t first, size_t end) {
    const size_t n_in = (size_t)layers[0].n_in, n_out = (size_t)layers[n_layers - 1].n_out;
    for (size_t i = first; i < end; i++) {
        const size_t r0 = i * t->tile, r = rows - r0 < t->tile ? rows - r0 : t->tile;
        FM_CAT(run_tile_, SFX)(k, layers, n_layers, x + r0 * n_in, r, out + r0 * n_out, scratch,
                               t->stride, t->tile);
    }
}

int FM_CAT(fm_forward_, SFX)(const fm_layer *layers, int n_layers, const REAL *x, size_t rows,
                             REAL *out, int threads) {
    if (rows == 0 || n_layers <= 0) return 0;
    const fm_kernel_table *k = fm_kernels();
    fm_tiling t = plan_tiles(layers, n_layers, rows, sizeof(REAL), threads);
    if (t.threads == 1) {
        /* Small calls: no thread team, and scratch on the stack when it fits. */
        _Alignas(FM_ALIGN) unsigned char stack[FM_STACK_SCRATCH];
        REAL *scratch = t.scratch_bytes <= sizeof stack ? (REAL *)stack
                                                        : fm_aligned_alloc(t.scratch_bytes);
        if (t.scratch_bytes > sizeof stack && !scratch) return -1;
        FM_CAT(run_tiles_, SFX)(k, layers, n_layers, x, rows, out, scratch, &t, 0, t.n_tiles);
        if ((unsigned char *)scratch != stack) fm_aligned_free(scratch);
        return 0;
    }
    atomic_int failed = 0;
#ifdef _OPENMP
    if (t.split_columns) {
        REAL *scratch = fm_aligned_alloc(t.scratch_bytes);
        if (t.scratch_bytes && !scratch) {
            release_extra_threads(t.threads - 1);
            return -1;
        }
        const size_t n_in = (size_t)layers[0].n_in, n_out = (size_t)layers[n_layers - 1].n_out;
#pragma omp parallel num_threads(t.threads)
        for (size_t i = 0; i < t.n_tiles; i++) {
            const size_t r0 = i * t.tile, r = rows - r0 < t.tile ? rows - r0 : t.tile;
            FM_CAT(run_tile_split_, SFX)(k, layers, n_layers, x + r0 * n_in, r, out + r0 * n_out,
                                         scratch, t.stride, t.tile);
        }
        fm_aligned_free(scratch);
        release_extra_threads(t.threads - 1);
        return 0;
    }
#pragma omp parallel num_threads(t.threads)
    {
        REAL *scratch = fm_aligned_alloc(t.scratch_bytes);
        if (t.scratch_bytes && !scratch) atomic_store(&failed, 1);
#pragma omp for schedule(dynamic, 1)
        for (size_t i = 0; i < t.n_tiles; i++)
            if (!atomic_load(&failed))
                FM_CAT(run_tiles_, SFX)(k, layers, n_layers, x, rows, out, scratch, &t, i, i + 1);
        fm_aligned_free(scratch);
    }
#endif
    release_extra_threads(t.threads - 1);
    return atomic_load(&failed) ? -1 : 0;
}
