/* Activation functions over rows, written once for REAL (float or double).
 * Included by activations.c with REAL, SFX (f32/f64) and the math functions
 * M_EXP_NEG (e^x, x <= 0), M_EXPM1_NEG (e^x - 1, x <= 0), M_LOG1P_UNIT
 * (log(1 + y), 0 <= y <= 1) and M_GELU (z Phi(z)) defined, all the
 * vectorisable ones of vmath.h, so these loops compile to SIMD code.
 *
 * Every formula is the numerically stable one: no overflow for any finite z,
 * and NaN propagates (comparisons are written so that NaN falls through to an
 * arithmetic expression of z). */

/* 1 / (1 + e^-z) without overflow: exp of a non-positive number only. */
FM_INLINE REAL FM_CAT(sigmoid_, SFX)(REAL z) {
    REAL e = M_EXP_NEG(-(z < 0 ? -z : z));
    REAL s = (REAL)1 / ((REAL)1 + e);
    return z < 0 ? e * s : s;
}

FM_INLINE REAL FM_CAT(softplus_, SFX)(REAL z, REAL beta, REAL threshold) {
    REAL bz = beta * z;
    REAL abs_bz = bz < 0 ? -bz : bz;
    REAL positive_part = bz > 0 ? bz : 0;
    /* NaN: abs_bz is NaN, so the log1p term carries it. */
    REAL soft = (positive_part + M_LOG1P_UNIT(M_EXP_NEG(-abs_bz))) / beta;
    return bz > threshold ? z : soft;
}

/* tanh from expm1 of a non-positive number: no overflow, accurate near 0. */
FM_INLINE REAL FM_CAT(tanh_, SFX)(REAL z) {
    REAL a = z < 0 ? -z : z;
    REAL e = M_EXPM1_NEG(-2 * a);
    REAL t = -e / (2 + e);
    return z < 0 ? -t : t;
}

/* Softmax of one row, max-subtracted; a NaN anywhere makes the row NaN, as in numpy. */
static void FM_CAT(softmax_row_, SFX)(REAL *FM_RESTRICT z, size_t n) {
    REAL max = z[0];
    for (size_t j = 1; j < n; j++) {
        REAL v = z[j];
        max = (v > max || v != v) ? v : max;
    }
    for (size_t j = 0; j < n; j++) z[j] = M_EXP_NEG(z[j] - max);
    REAL sum = 0;
    for (size_t j = 0; j < n; j++) sum += z[j];
    REAL inv = (REAL)1 / sum;
    for (size_t j = 0; j < n; j++) z[j] *= inv;
}

static void FM_CAT(activate_row_, SFX)(fm_activation act, REAL *FM_RESTRICT z, size_t n) {
    const REAL p0 = (REAL)act.p0, p1 = (REAL)act.p1;
    switch (act.kind) {
    case FM_RELU:
        for (size_t j = 0; j < n; j++) z[j] = z[j] < 0 ? 0 : z[j];
        break;
    case FM_TANH:
        for (size_t j = 0; j < n; j++) z[j] = FM_CAT(tanh_, SFX)(z[j]);
        break;
    case FM_SIGMOID:
        for (size_t j = 0; j < n; j++) z[j] = FM_CAT(sigmoid_, SFX)(z[j]);
        break;
    case FM_SOFTMAX:
        FM_CAT(softmax_row_, SFX)(z, n);
        break;
    case FM_LEAKY_RELU:
        for (size_t j = 0; j < n; j++) z[j] = z[j] > 0 ? z[j] : p0 * z[j];
        break;
    case FM_ELU:
        for (size_t j = 0; j < n; j++) z[j] = z[j] > 0 ? z[j] : p0 * M_EXPM1_NEG(z[j]);
        break;
    case FM_GELU:
        /* 0.5 z erfc(-z/sqrt 2) == 0.5 z (1 + erf(z/sqrt 2)), accurate in the negative tail:
         * vmath.h's erfc with the argument's rounding error carried (fm_gelu_*). */
        for (size_t j = 0; j < n; j++) z[j] = M_GELU(z[j]);
        break;
    case FM_GELU_TANH: {
        /* 0.5 z (1 + tanh u) == z sigmoid(2u), u = sqrt(2/pi) (z + 0.044715 z^3). */
        const REAL c = (REAL)0.79788456080286535588, k = (REAL)0.044715;
        for (size_t j = 0; j < n; j++) {
            REAL v = z[j];
            REAL u = c * (v + k * v * v * v);
            z[j] = v * FM_CAT(sigmoid_, SFX)(2 * u);
        }
        break;
    }
    case FM_SILU:
        for (size_t j = 0; j < n; j++) z[j] = z[j] * FM_CAT(sigmoid_, SFX)(z[j]);
        break;
    case FM_SOFTPLUS:
        for (size_t j = 0; j < n; j++) z[j] = FM_CAT(softplus_, SFX)(z[j], p0, p1);
        break;
    default: /* FM_IDENTITY */
        break;
    }
}

void FM_SYM(FM_CAT(fm_activate_, SFX))(fm_activation act, REAL *z, size_t rows, size_t cols,
                                        size_t ld) {
    if (act.kind == FM_IDENTITY || cols == 0) return;
    /* Element-wise activations over contiguous rows run as one long row: narrow
     * layers would otherwise spend their time in loop prologues. */
    if (ld == cols && act.kind != FM_SOFTMAX) {
        FM_CAT(activate_row_, SFX)(act, z, rows * cols);
        return;
    }
    for (size_t r = 0; r < rows; r++) FM_CAT(activate_row_, SFX)(act, z + r * ld, cols);
}
