/* Activation functions over rows, written once for REAL (float or double).
 * Included by activations.c with REAL, SFX (f32/f64) and the math functions
 * M_EXP_NEG (e^x, x <= 0), M_EXPM1_NEG (e^x - 1, x <= 0), M_LOG1P_UNIT
 * (log(1 + y), 0 <= y <= 1), M_GELU (z Phi(z)), M_EXPM1 (e^x - 1, any x), M_LOG1P_POS
 * (log(1 + y), y >= 0), M_TANH and M_SIGMOID, M_EXP_MUL (fm_exp_mul_*) and M_DIV_REM
 * (fm_div_rem_*) defined, all the vectorisable ones of vmath.h, so these loops compile to
 * SIMD code.
 *
 * Every formula is the numerically stable one: no overflow for any finite z,
 * and NaN propagates (comparisons are written so that NaN falls through to an
 * arithmetic expression of z). */

FM_INLINE REAL FM_CAT(softplus_, SFX)(REAL z, REAL beta, REAL threshold) {
    REAL bz = beta * z;
    REAL abs_bz = bz < 0 ? -bz : bz;
    REAL positive_part = bz > 0 ? bz : 0;
    /* NaN: abs_bz is NaN, so the log1p term carries it. */
    REAL soft = (positive_part + M_LOG1P_UNIT(M_EXP_NEG(-abs_bz))) / beta;
    return bz > threshold ? z : soft;
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

/* alpha (e^(z/alpha) - 1) for z <= 0: the CELU's negative branch, for either sign of alpha.
 * u = z/alpha is rounded; its error d (z/alpha = u + d, from the division's exact remainder)
 * is carried as expm1(u + d) = expm1(u) + e^u d, which matters where u is large (alpha < 0).
 * Past u = BIG (e^u alone exact enough) it is alpha e^(u + d) through fm_exp_mul, which
 * applies alpha before the last scaling: finite wherever the result is, even where e^u
 * alone would overflow (|alpha| < 1). */
#define FM_CELU_BIG (sizeof(REAL) == 8 ? (REAL)40 : (REAL)20)
#define FM_CELU_UMAX (sizeof(REAL) == 8 ? (REAL)1418 : (REAL)176) /* 2^k in two normal halves */
FM_INLINE REAL FM_CAT(celu_neg_, SFX)(REAL z, REAL alpha) {
    REAL u = z / alpha;
    REAL d = M_DIV_REM(z, alpha, u) / alpha;
    d = u > -FM_CELU_UMAX && u < FM_CELU_UMAX && d - d == 0 ? d : 0; /* NaN, inf: no carry */
    REAL r = M_EXPM1(u);
    REAL small = alpha * (r + (r + 1) * d);
    REAL large = M_EXP_MUL(u > FM_CELU_UMAX ? FM_CELU_UMAX : u, d, (REAL)1, alpha);
    return u > FM_CELU_BIG ? large : small;
}
#undef FM_CELU_BIG
#undef FM_CELU_UMAX

/* z tanh(softplus z) = z w / (w + 2), w = e^z (e^z + 2): one exponential, of -|z|, that
 * never overflows. For z > 0, with e = e^-z: z (1 + 2e) / (1 + 2e + 2e^2). For z <= 0,
 * e^z is carried scaled by 2^S (exact: fm_exp_mul applies the scale before 2^k) and
 * the final product rounds once where the result is subnormal but e^z alone would be
 * too, or the result normal while e^z is subnormal; past CLAMP the result is -0. */
#define FM_MISH_CLAMP (sizeof(REAL) == 8 ? (REAL)752 : (REAL)110)
#define FM_MISH_SCALE (sizeof(REAL) == 8 ? (REAL)0x1p80 : (REAL)0x1p40)
FM_INLINE REAL FM_CAT(mish_, SFX)(REAL z) {
    REAL a = z < 0 ? -z : z;
    REAL ac = a > FM_MISH_CLAMP ? FM_MISH_CLAMP : a;
    REAL e_scaled = M_EXP_MUL(-ac, (REAL)0, (REAL)1, FM_MISH_SCALE);
    REAL e = e_scaled * ((REAL)1 / FM_MISH_SCALE);
    REAL num = 1 + 2 * e;
    REAL pos = z * (num / (num + 2 * e * e));
    REAL neg = ((z * (e + 2) / (e * (e + 2) + 2)) * e_scaled) * ((REAL)1 / FM_MISH_SCALE);
    neg = a > FM_MISH_CLAMP ? (REAL)-0.0 : neg;
    return z > 0 ? pos : neg;
}
#undef FM_MISH_CLAMP
#undef FM_MISH_SCALE

/* z / (1 + |z|), +-1 for +-inf (the limit, where the quotient would be inf / inf). */
FM_INLINE REAL FM_CAT(softsign_, SFX)(REAL z) {
    REAL a = z < 0 ? -z : z;
    REAL q = z / (1 + a);
    REAL one = z < 0 ? (REAL)-1 : (REAL)1;
    return a - a == 0 || a != a ? q : one;
}

/* z relu6(z + 3) / 6: exactly z from 3 on, -0 to -3 (inf included: the limits). */
FM_INLINE REAL FM_CAT(hardswish_, SFX)(REAL z) {
    REAL mid = z * (z + 3) / 6;
    REAL r = z <= -3 ? (REAL)-0.0 : mid;
    return z >= 3 ? z : r;
}

/* Log-softmax of one row: (z - max) - log(sum e^(z - max)), stable; a NaN anywhere makes
 * the row NaN, as in softmax. The sum leaves out the terms of the maximum (each exactly 1)
 * and log1p adds them back, so log(1 + tiny) keeps its digits.
 *
 * z - max is carried with its rounding error (lse_diff_err).
 *
 * The row goes in blocks of up to FM_LSE_BLOCK through a buffer, and each block's max and
 * sum are reduced by halving (buf[i] with buf[i + w], w = P/2, P/4, ..., 1, P the block
 * padded to a power of two): every step is a plain elementwise loop, so it vectorises
 * without reassociation, and the order depends only on positions in the row, so a row
 * gives the same bits wherever it sits. The blocks combine in row order. */
#define FM_LSE_BLOCK 256

static size_t FM_CAT(lse_padded_, SFX)(size_t m) {
    size_t p = 1;
    while (p < m) p *= 2;
    return p;
}

/* max of zb[0 .. m): any NaN gives NaN. */
static REAL FM_CAT(lse_block_max_, SFX)(REAL *FM_RESTRICT buf, const REAL *FM_RESTRICT zb,
                                       size_t m) {
    const size_t p = FM_CAT(lse_padded_, SFX)(m);
    for (size_t i = 0; i < m; i++) buf[i] = zb[i];
    for (size_t i = m; i < p; i++) buf[i] = zb[0];
    for (size_t w = p / 2; w >= 1; w /= 2)
        for (size_t i = 0; i < w; i++) {
            REAL a = buf[i], b = buf[i + w];
            buf[i] = (b > a || b != b) ? b : a;
        }
    return buf[0];
}

/* sum of buf[0 .. m), which are >= 0 or NaN; pads buf with zeros. */
static REAL FM_CAT(lse_block_sum_, SFX)(REAL *FM_RESTRICT buf, size_t m) {
    const size_t p = FM_CAT(lse_padded_, SFX)(m);
    for (size_t i = m; i < p; i++) buf[i] = 0;
    for (size_t w = p / 2; w >= 1; w /= 2)
        for (size_t i = 0; i < w; i++) buf[i] += buf[i + w];
    return buf[0];
}

/* The rounding error of d = z - max (exactly z - max - d), carried into e^d and the result:
 * e^d is that sensitive to it (|d| ulp/2 relative). 0 where d is -inf or beyond e^d's range. */
#define FM_LSE_DMIN (sizeof(REAL) == 8 ? (REAL)-746 : (REAL)-104)
FM_INLINE REAL FM_CAT(lse_diff_err_, SFX)(REAL z, REAL max, REAL d) {
    REAL err = FM_CAT(fm_add_err_, SFX)(z, -max, d);
    return d > FM_LSE_DMIN ? err : 0;
}

static void FM_CAT(log_softmax_row_, SFX)(REAL *FM_RESTRICT z, size_t n) {
    REAL buf[FM_LSE_BLOCK];
    REAL max = z[0];
    for (size_t j0 = 0; j0 < n; j0 += FM_LSE_BLOCK) {
        const size_t m = n - j0 < FM_LSE_BLOCK ? n - j0 : FM_LSE_BLOCK;
        const REAL v = FM_CAT(lse_block_max_, SFX)(buf, z + j0, m);
        max = (v > max || v != v) ? v : max;
    }
    REAL others = 0; /* sum of e^(z - max) over the entries below the max */
    size_t n_max = 0; /* entries equal to it */
    for (size_t j0 = 0; j0 < n; j0 += FM_LSE_BLOCK) {
        const size_t m = n - j0 < FM_LSE_BLOCK ? n - j0 : FM_LSE_BLOCK;
        const REAL *FM_RESTRICT zb = z + j0;
        for (size_t i = 0; i < m; i++) {
            const REAL d = zb[i] - max, d_lo = FM_CAT(lse_diff_err_, SFX)(zb[i], max, d);
            const REAL e = M_EXP_MUL(d < FM_LSE_DMIN ? FM_LSE_DMIN : d, d_lo, (REAL)1, (REAL)1);
            buf[i] = d == 0 ? 0 : e; /* NaN for NaN */
            n_max += d == 0;
        }
        others += FM_CAT(lse_block_sum_, SFX)(buf, m);
    }
    /* n_max >= 1 unless the row holds a NaN (or +inf, whose z - max is NaN), and then the
     * NaN terms have reached the sum. */
    const REAL lse = M_LOG1P_POS(others + (REAL)(n_max - 1));
    for (size_t j = 0; j < n; j++) {
        const REAL d = z[j] - max;
        z[j] = (d - lse) + FM_CAT(lse_diff_err_, SFX)(z[j], max, d);
    }
}
#undef FM_LSE_BLOCK
#undef FM_LSE_DMIN

static void FM_CAT(activate_row_, SFX)(fm_activation act, REAL *FM_RESTRICT z, size_t n) {
    const REAL p0 = (REAL)act.p0, p1 = (REAL)act.p1;
    switch (act.kind) {
    case FM_RELU:
        for (size_t j = 0; j < n; j++) z[j] = z[j] < 0 ? 0 : z[j];
        break;
    case FM_TANH:
        for (size_t j = 0; j < n; j++) z[j] = M_TANH(z[j]);
        break;
    case FM_SIGMOID:
        for (size_t j = 0; j < n; j++) z[j] = M_SIGMOID(z[j]);
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
            z[j] = v * M_SIGMOID(2 * u);
        }
        break;
    }
    case FM_SILU:
        for (size_t j = 0; j < n; j++) z[j] = z[j] * M_SIGMOID(z[j]);
        break;
    case FM_SOFTPLUS:
        for (size_t j = 0; j < n; j++) z[j] = FM_CAT(softplus_, SFX)(z[j], p0, p1);
        break;
    case FM_SELU: {
        /* PyTorch's constants; scale * alpha rounded once. */
        const REAL scale = (REAL)1.0507009873554804934, scale_alpha = (REAL)1.7580993408473768600;
        for (size_t j = 0; j < n; j++)
            z[j] = z[j] > 0 ? scale * z[j] : scale_alpha * M_EXPM1_NEG(z[j]);
        break;
    }
    case FM_CELU:
        for (size_t j = 0; j < n; j++) z[j] = z[j] > 0 ? z[j] : FM_CAT(celu_neg_, SFX)(z[j], p0);
        break;
    case FM_MISH:
        for (size_t j = 0; j < n; j++) z[j] = FM_CAT(mish_, SFX)(z[j]);
        break;
    case FM_HARDSWISH:
        for (size_t j = 0; j < n; j++) z[j] = FM_CAT(hardswish_, SFX)(z[j]);
        break;
    case FM_HARDSIGMOID: {
        /* clip(alpha z + beta, 0, 1) as alpha (z + beta/alpha): z + 3 is exact near the
         * crossing -3 of the usual (1/6, 1/2), so the result is accurate relative to its size
         * there too. alpha z + beta where beta/alpha is no finite REAL (alpha 0 included). */
        const REAL c = (REAL)(act.p1 / act.p0);
        if (p0 != 0 && c - c == 0) {
            for (size_t j = 0; j < n; j++) {
                REAL y = (z[j] + c) * p0;
                y = y < 0 ? 0 : y;
                z[j] = y > 1 ? 1 : y;
            }
        } else {
            for (size_t j = 0; j < n; j++) {
                REAL y = p0 * z[j] + p1;
                y = y < 0 ? 0 : y;
                z[j] = y > 1 ? 1 : y;
            }
        }
        break;
    }
    case FM_RELU6:
        for (size_t j = 0; j < n; j++) {
            REAL y = z[j] < 0 ? 0 : z[j];
            z[j] = y > 6 ? 6 : y;
        }
        break;
    case FM_HARDTANH:
        for (size_t j = 0; j < n; j++) {
            REAL y = z[j] < p0 ? p0 : z[j];
            z[j] = y > p1 ? p1 : y;
        }
        break;
    case FM_PRELU:
        if (act.vec) {
            const REAL *FM_RESTRICT slope = (const REAL *)act.vec;
            for (size_t j = 0; j < n; j++) z[j] = z[j] > 0 ? z[j] : slope[j] * z[j];
        } else {
            for (size_t j = 0; j < n; j++) z[j] = z[j] > 0 ? z[j] : p0 * z[j];
        }
        break;
    case FM_SOFTSIGN:
        for (size_t j = 0; j < n; j++) z[j] = FM_CAT(softsign_, SFX)(z[j]);
        break;
    case FM_LOG_SOFTMAX:
        FM_CAT(log_softmax_row_, SFX)(z, n);
        break;
    default: /* FM_IDENTITY */
        break;
    }
}

#define FM_SHORT_RUN (FM_ALIGN / sizeof(REAL))

void FM_SYM(FM_CAT(fm_activate_, SFX))(fm_activation act, REAL *z, size_t rows, size_t cols,
                                        size_t ld) {
    if (act.kind == FM_IDENTITY || cols == 0) return;
    /* Element-wise activations over contiguous rows run as one long row: narrow
     * layers would otherwise spend their time in loop prologues. Not those that see
     * whole rows, nor per-feature parameters, which index by column. */
    if (ld == cols && !fm_activation_needs_whole_rows(act.kind) && act.vec == NULL) {
        const size_t n = rows * cols;
        if (n < FM_SHORT_RUN) {
            /* Fewer values than a 64-byte vector holds: the compiled loop's vector body
             * would never run, and its scalar tail costs far more than one pass of it
             * over a padded copy (the same bits: the formulas are the same operations
             * either way): 3-4-2 sigmoid at batch 1 145 -> 137 ns a call (Sapphire
             * Rapids), where the rest is the latency of one vector's exp and divide. */
            _Alignas(FM_ALIGN) REAL run[FM_SHORT_RUN] = {0};
            for (size_t j = 0; j < n; j++) run[j] = z[j];
            FM_CAT(activate_row_, SFX)(act, run, FM_SHORT_RUN);
            for (size_t j = 0; j < n; j++) z[j] = run[j];
            return;
        }
        FM_CAT(activate_row_, SFX)(act, z, n);
        return;
    }
    for (size_t r = 0; r < rows; r++) FM_CAT(activate_row_, SFX)(act, z + r * ld, cols);
}
#undef FM_SHORT_RUN
