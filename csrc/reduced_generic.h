/* Reduced-precision micro-kernels in portable C (dense_reduced.c's interface): slow but
 * exact, the reference every other variant is tested against. */
#define RK_GROUP 4
#define RK_ROW_QUANTUM 1

static inline int rk_begin(int int8, size_t rows) { return (void)int8, (void)rows, 0; }
static inline void rk_end(int began) { (void)began; }

#include "reduced_float_rows.h"

static void rk_bf16_panel(const void *xp, size_t rows, int n_in, const uint16_t *w, float *z,
                          size_t ldz, int n_valid) {
    const size_t pairs = ((size_t)n_in + 1) / 2, width = 2 * pairs;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = (const float *)xp + r * width;
        float acc[NR] = {0};
        for (size_t kk = 0; kk < pairs; kk++) {
            const uint16_t *wk = w + kk * 2 * NR;
            for (int j = 0; j < NR; j++) acc[j] = xr[2 * kk] * bf16_value(wk[2 * j]) + acc[j];
            for (int j = 0; j < NR; j++)
                acc[j] = xr[2 * kk + 1] * bf16_value(wk[2 * j + 1]) + acc[j];
        }
        for (int j = 0; j < n_valid; j++) z[r * ldz + j] = acc[j];
    }
}

/* int8: a row as its int8 values, padded with zeros to quads. */
static size_t rk_int8_row_bytes(int n_in) { return ((size_t)n_in + 3) / 4 * 4; }
#define RK_INT8_PUT(dst, k, q) (((int8_t *)(dst))[k] = (int8_t)(q))
#define RK_INT8_BYTES 1 /* bytes per stored input */

static void rk_int8_panel(const void *xq, size_t rows, int n_in, const unsigned char *panel,
                          int32_t *acc_out) {
    const size_t quads = ((size_t)n_in + 3) / 4;
    const int8_t *w = (const int8_t *)panel + 4 * NR;
    for (size_t r = 0; r < rows; r++) {
        const int8_t *xr = (const int8_t *)xq + r * 4 * quads;
        int32_t acc[NR] = {0};
        for (size_t kq = 0; kq < quads; kq++) {
            const int8_t *wk = w + kq * 4 * NR;
            for (int j = 0; j < NR; j++)
                for (int h = 0; h < 4; h++) acc[j] += xr[4 * kq + h] * wk[4 * j + h];
        }
        memcpy(acc_out + r * NR, acc, sizeof acc);
    }
}
