/* Row-wise steps besides dense layers (steps.c). x, out: rows of `width` values with row
 * strides ldx / ldo (elements); out may be x (in place) but no other overlap. */
#ifndef FASTMLP_STEPS_H
#define FASTMLP_STEPS_H

#include <stddef.h>

#define FM_DECLARE_STEPS(SFX, REAL)                                                            \
    void fm_affine_##SFX(const REAL *x, size_t ldx, size_t rows, size_t width,                \
                         const REAL *scale, const REAL *shift, REAL *out, size_t ldo);        \
    void fm_layernorm_##SFX(const REAL *x, size_t ldx, size_t rows, size_t width,             \
                            const REAL *scale, const REAL *shift, double eps, REAL *out,      \
                            size_t ldo);                                                      \
    void fm_add_rows_##SFX(const REAL *x, size_t ldx, const REAL *y, size_t ldy, size_t rows, \
                           size_t width, REAL *out, size_t ldo);                              \
    void fm_copy_rows_##SFX(const REAL *x, size_t ldx, size_t rows, size_t width, REAL *out,  \
                            size_t ldo);

FM_DECLARE_STEPS(f32, float)
FM_DECLARE_STEPS(f64, double)

#endif
