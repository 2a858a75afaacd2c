/* Row-wise steps, written once for REAL; included by steps.c with REAL and SFX set. */

void FM_CAT(fm_affine_, SFX)(const REAL *x, size_t ldx, size_t rows, size_t width,
                             const REAL *scale, const REAL *shift, REAL *out, size_t ldo) {
    for (size_t r = 0; r < rows; r++) {
        const REAL *xr = x + r * ldx;
        REAL *o = out + r * ldo;
        /* Two roundings, never a fused multiply-add: the same bits on every machine. */
        if (scale && shift)
            for (size_t j = 0; j < width; j++) o[j] = xr[j] * scale[j] + shift[j];
        else if (scale)
            for (size_t j = 0; j < width; j++) o[j] = xr[j] * scale[j];
        else if (shift)
            for (size_t j = 0; j < width; j++) o[j] = xr[j] + shift[j];
        else if (o != xr)
            memcpy(o, xr, width * sizeof(REAL));
    }
}

/* Partial sums kept in this many lanes, added in a fixed order: vectorisable, and the
 * order depends only on the row's length, never on where the row lies in memory. */
#define FM_SUM_LANES 8

static double FM_CAT(row_sum_, SFX)(const REAL *x, size_t n) {
    double lane[FM_SUM_LANES] = {0};
    size_t j = 0;
    for (; j + FM_SUM_LANES <= n; j += FM_SUM_LANES)
        for (int l = 0; l < FM_SUM_LANES; l++) lane[l] += (double)x[j + l];
    double sum = 0;
    for (int l = 0; l < FM_SUM_LANES; l++) sum += lane[l];
    for (; j < n; j++) sum += (double)x[j];
    return sum;
}

static double FM_CAT(row_squares_, SFX)(const REAL *x, size_t n, double mean) {
    double lane[FM_SUM_LANES] = {0};
    size_t j = 0;
    for (; j + FM_SUM_LANES <= n; j += FM_SUM_LANES)
        for (int l = 0; l < FM_SUM_LANES; l++) {
            const double d = (double)x[j + l] - mean;
            lane[l] += d * d;
        }
    double sum = 0;
    for (int l = 0; l < FM_SUM_LANES; l++) sum += lane[l];
    for (; j < n; j++) {
        const double d = (double)x[j] - mean;
        sum += d * d;
    }
    return sum;
}

/* Mean and variance in double, in two passes (no cancellation), whatever REAL is: float
 * rows lose nothing to the statistics, and a NaN or inf makes the row NaN, as in PyTorch. */
void FM_CAT(fm_layernorm_, SFX)(const REAL *x, size_t ldx, size_t rows, size_t width,
                                const REAL *scale, const REAL *shift, double eps, REAL *out,
                                size_t ldo) {
    for (size_t r = 0; r < rows; r++) {
        const REAL *xr = x + r * ldx;
        REAL *o = out + r * ldo;
        const double mean = FM_CAT(row_sum_, SFX)(xr, width) / (double)width;
        const double var = FM_CAT(row_squares_, SFX)(xr, width, mean) / (double)width;
        const double inv = 1.0 / sqrt(var + eps);
        for (size_t j = 0; j < width; j++) {
            REAL y = (REAL)(((double)xr[j] - mean) * inv);
            if (scale) y = y * scale[j];
            if (shift) y = y + shift[j];
            o[j] = y;
        }
    }
}

void FM_CAT(fm_add_rows_, SFX)(const REAL *x, size_t ldx, const REAL *y, size_t ldy,
                               size_t rows, size_t width, REAL *out, size_t ldo) {
    for (size_t r = 0; r < rows; r++) {
        const REAL *xr = x + r * ldx, *yr = y + r * ldy;
        REAL *o = out + r * ldo;
        for (size_t j = 0; j < width; j++) o[j] = xr[j] + yr[j];
    }
}

void FM_CAT(fm_copy_rows_, SFX)(const REAL *x, size_t ldx, size_t rows, size_t width, REAL *out,
                                size_t ldo) {
    for (size_t r = 0; r < rows; r++)
        if (out + r * ldo != x + r * ldx) memcpy(out + r * ldo, x + r * ldx, width * sizeof(REAL));
}

#undef FM_SUM_LANES
