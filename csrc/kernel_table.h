/* The functions each variant of the kernels (kernels.def) provides. */
#ifndef FASTMLP_KERNEL_TABLE_H
#define FASTMLP_KERNEL_TABLE_H

#include "fastmlp.h"

typedef struct {
    void (*dense_f32)(const fm_layer *, const float *, size_t, size_t, float *, size_t, int);
    void (*dense_f64)(const fm_layer *, const double *, size_t, size_t, double *, size_t, int);
    /* The same over a range of column panels [first, end). */
    void (*dense_cols_f32)(const fm_layer *, const float *, size_t, size_t, float *, size_t, int,
                           int, int, float *);
    void (*dense_cols_f64)(const fm_layer *, const double *, size_t, size_t, double *, size_t,
                           int, int, int, double *);
    void (*activate_f32)(fm_activation, float *, size_t, size_t, size_t);
    void (*activate_f64)(fm_activation, double *, size_t, size_t, size_t);
    /* A float layer with bfloat16 or int8 weights, over column panels [first, end)
     * (dense_reduced.c); apack as for dense_cols_f32, with k = fm_reduced_area_k(n_in),
     * or NULL. */
    void (*dense_reduced_cols)(const fm_layer *, const float *, size_t, size_t, float *, size_t,
                               int, int, int, float *);
    /* Rows of the dense micro-kernel (kernels.def's mr): a tile of more rows
     * than this is packed when the kernel is given room to pack it. */
    int mr;
    /* Accumulators of its narrow-layer path (kernels.def's narrow; 0: none). */
    int narrow;
} fm_kernel_table;

#define FM_DECLARE_VARIANT(sfx, id, arch, gcc, msvc, features, mr, gemv, narrow, vec)         \
    void fm_dense_f32_##sfx(const fm_layer *, const float *, size_t, size_t, float *, size_t, \
                            int);                                                            \
    void fm_dense_f64_##sfx(const fm_layer *, const double *, size_t, size_t, double *,      \
                            size_t, int);                                                    \
    void fm_dense_cols_f32_##sfx(const fm_layer *, const float *, size_t, size_t, float *,   \
                                 size_t, int, int, int, float *);                            \
    void fm_dense_cols_f64_##sfx(const fm_layer *, const double *, size_t, size_t, double *, \
                                 size_t, int, int, int, double *);                           \
    void fm_activate_f32_##sfx(fm_activation, float *, size_t, size_t, size_t);              \
    void fm_activate_f64_##sfx(fm_activation, double *, size_t, size_t, size_t);              \
    void fm_dense_reduced_cols_##sfx(const fm_layer *, const float *, size_t, size_t, float *, \
                                     size_t, int, int, int, float *);

FM_KERNELS(FM_DECLARE_VARIANT)

/* Elements of the area a tile of `rows` rows needs for packing its inputs, with a kernel
 * of `mr` rows per micro-tile and blocks of k_block inputs: that many inputs of the rows
 * rounded up to whole micro-tiles (dense_cols packs them so; the reduced-precision kernels
 * prepare rows into it, with k = fm_reduced_area_k). */
static inline size_t fm_pack_area_elems(size_t rows, int mr, int k_block) {
    return (rows + (size_t)mr - 1) / (size_t)mr * (size_t)mr * (size_t)k_block;
}

/* Inputs' worth of room per row that every packing area has for a reduced-precision
 * layer of n_in inputs (fm_plan_tiles sizes the areas so): dense_reduced.c prepares its
 * rows there, and n_in + 1 floats hold the largest of its variants' row formats, so up to
 * 4096 inputs a tile's rows are prepared at once (AMX wants 32 at a time). */
static inline int fm_reduced_area_k(int n_in) {
    const int k = (n_in < 4096 ? n_in : 4096) + 32;
    return k > FM_KC ? k : FM_KC;
}

/* Rows per tile of a network whose dense layers all have reduced-precision weights are a
 * multiple of this: every variant's group of rows (dense_reduced.c's RK_GROUP, 32 for
 * AMX's two tiles of 16 rows) divides it. */
#define FM_REDUCED_TILE_QUANTUM 32

/* The table of the variant fm_select_kernel chose. */
const fm_kernel_table *fm_kernels(void);

#endif
