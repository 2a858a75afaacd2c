/* Elementary functions the compiler can vectorise: only arithmetic, selects and
 * integer bit operations, no calls and no branches, so a loop over them becomes
 * AVX-512, AVX2 or NEON code in the build for that instruction set.
 *
 * Each is written for the domain the activations need (x <= 0 for exp_neg and
 * expm1_neg, 0 <= y <= 1 for log1p; GELU and its erfc for any z), accurate to a few
 * ulp there, and passes NaN through. The exp polynomials are Taylor series cut
 * where the next term is below half an ulp on |r| <= ln(2)/2; the erfc ones are
 * fitted by scripts/fit_erfc.py.
 *
 * The exp/erfc code selects with fm_sel_* (bit masks) and sign-bit operations rather
 * than ternaries, so it vectorises even without -fno-trapping-math: under GCC's default
 * -ftrapping-math a ternary whose arm ends up holding arithmetic (GCC moves arithmetic that
 * follows a select into its arms) stays a branch, and the loop then vectorises only with
 * AVX-512, which can mask the arm.
 *
 * The one operation beyond + - * / is fused multiply-add (FM_HAVE_FMA: the AVX builds,
 * aarch64): it gives erfc exact product errors, and fewer roundings and instructions in
 * its polynomials (FM_MADD_*). Without it Dekker's splitting gives the same exact errors
 * and FM_MADD_* is a multiply and an add, so such builds are slightly slower and lose
 * about half an ulp. */
#ifndef FASTMLP_VMATH_H
#define FASTMLP_VMATH_H

#include <stdint.h>
#include <string.h>

#include "isa.h"

FM_INLINE uint64_t fm_bits_f64(double x) { uint64_t u; memcpy(&u, &x, 8); return u; }
FM_INLINE double fm_from_bits_f64(uint64_t u) { double x; memcpy(&x, &u, 8); return x; }
FM_INLINE uint32_t fm_bits_f32(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
FM_INLINE float fm_from_bits_f32(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

/* c ? a : b through a bit mask. (x86 before SSE4.1 has no 64-bit blend, and GCC then
 * vectorises neither form under -ftrapping-math; the ternary at least vectorises there
 * with -fno-trapping-math.) */
FM_INLINE double fm_sel_f64(int c, double a, double b) {
#if defined(__x86_64__) && !defined(__SSE4_1__)
    return c ? a : b;
#else
    uint64_t m = c ? ~(uint64_t)0 : 0;
    return fm_from_bits_f64((fm_bits_f64(a) & m) | (fm_bits_f64(b) & ~m));
#endif
}
FM_INLINE float fm_sel_f32(int c, float a, float b) {
    uint32_t m = c ? ~(uint32_t)0 : 0;
    return fm_from_bits_f32((fm_bits_f32(a) & m) | (fm_bits_f32(b) & ~m));
}

#define FM_SIGN_F64 ((uint64_t)1 << 63)
#define FM_SIGN_F32 ((uint32_t)1 << 31)

#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
#define FM_HAVE_FMA 1
#else
#define FM_HAVE_FMA 0
#endif

/* a * b + c, fused (one rounding) where the ISA has FMA, else two roundings. */
#if FM_HAVE_FMA
#define FM_MADD_F64(a, b, c) __builtin_fma((a), (b), (c))
#define FM_MADD_F32(a, b, c) __builtin_fmaf((a), (b), (c))
#else
#define FM_MADD_F64(a, b, c) ((a) * (b) + (c))
#define FM_MADD_F32(a, b, c) ((a) * (b) + (c))
#endif

/* Error-free transformations. fm_add_err: s = fl(a + b) -> (a + b) - s, exactly (Knuth's
 * two-sum). fm_mul_err: p = fl(a * b) -> a * b - p, exactly (no overflow or underflow).
 * fm_div_rem: q = fl(n / d) -> n - q * d, exactly (a correctly rounded quotient's remainder
 * is representable). */
FM_INLINE double fm_add_err_f64(double a, double b, double s) {
    double bb = s - a;
    return (a - (s - bb)) + (b - bb);
}
FM_INLINE float fm_add_err_f32(float a, float b, float s) {
    float bb = s - a;
    return (a - (s - bb)) + (b - bb);
}

FM_INLINE double fm_mul_err_f64(double a, double b, double p) {
#if FM_HAVE_FMA
    return __builtin_fma(a, b, -p);
#else
    double ca = 134217729.0 * a, ah = ca - (ca - a), al = a - ah; /* 2^27 + 1: 26-bit halves */
    double cb = 134217729.0 * b, bh = cb - (cb - b), bl = b - bh;
    return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
#endif
}
FM_INLINE float fm_mul_err_f32(float a, float b, float p) {
#if FM_HAVE_FMA
    return __builtin_fmaf(a, b, -p);
#else
    float ca = 4097.0f * a, ah = ca - (ca - a), al = a - ah; /* 2^12 + 1: 12-bit halves */
    float cb = 4097.0f * b, bh = cb - (cb - b), bl = b - bh;
    return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
#endif
}

FM_INLINE double fm_div_rem_f64(double n, double d, double q) {
#if FM_HAVE_FMA
    return __builtin_fma(-q, d, n);
#else
    double p = q * d; /* n - p is exact (p is within a factor 2 of n) */
    return (n - p) - fm_mul_err_f64(q, d, p);
#endif
}
FM_INLINE float fm_div_rem_f32(float n, float d, float q) {
#if FM_HAVE_FMA
    return __builtin_fmaf(-q, d, n);
#else
    float p = q * d;
    return (n - p) - fm_mul_err_f32(q, d, p);
#endif
}

/* --- double ------------------------------------------------------------------ */

#define FM_LOG2E 1.4426950408889634074
#define FM_LN2_HI 6.93147180369123816490e-01
#define FM_LN2_LO 1.90821492927058770002e-10
#define FM_SHIFT_F64 6755399441055744.0 /* 1.5 * 2^52: adding it rounds to an integer */

/* x = k ln2 + r, |r| <= ln2/2; k is read from the bits of the rounded value. */
FM_INLINE double fm_reduce_f64(double x, int64_t *k) {
    double kd = FM_MADD_F64(x, FM_LOG2E, FM_SHIFT_F64);
    *k = (int64_t)(fm_bits_f64(kd) - fm_bits_f64(FM_SHIFT_F64));
    kd -= FM_SHIFT_F64;
    return FM_MADD_F64(-kd, FM_LN2_LO, FM_MADD_F64(-kd, FM_LN2_HI, x));
}

FM_INLINE double fm_pow2_f64(int64_t k) { /* 2^k for -1022 <= k <= 1023 */
    return fm_from_bits_f64((uint64_t)(k + 1023) << 52);
}

/* e^r - 1 on |r| <= ln2/2, to r^13/13!: r + r^2 p(r), p evaluated by Estrin's scheme (pairs,
 * then pairs of pairs), a dependency chain of 5 multiply-adds instead of Horner's 12, which
 * is what limits a vector loop of exponentials (the FMA units wait on it, not on each other). */
FM_INLINE double fm_expm1_poly_f64(double r) {
    double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    double p0 = FM_MADD_F64(1.0 / 6.0, r, 0.5);
    double p1 = FM_MADD_F64(1.0 / 120.0, r, 1.0 / 24.0);
    double p2 = FM_MADD_F64(1.0 / 5040.0, r, 1.0 / 720.0);
    double p3 = FM_MADD_F64(1.0 / 362880.0, r, 1.0 / 40320.0);
    double p4 = FM_MADD_F64(1.0 / 39916800.0, r, 1.0 / 3628800.0);
    double p5 = FM_MADD_F64(1.0 / 6227020800.0, r, 1.0 / 479001600.0);
    double q0 = FM_MADD_F64(p1, r2, p0), q1 = FM_MADD_F64(p3, r2, p2), q2 = FM_MADD_F64(p5, r2, p4);
    double p = FM_MADD_F64(q2, r8, FM_MADD_F64(q1, r4, q0));
    return FM_MADD_F64(p, r2, r);
}

/* e^x for x <= 0 (larger x are taken as 0); 0 below the subnormal range. */
FM_INLINE double fm_exp_neg_f64(double x) {
    x = x > 0 ? 0 : x;
    x = x < -746.0 ? -746.0 : x;
    int64_t k;
    double r = fm_reduce_f64(x, &k);
    double p = fm_expm1_poly_f64(r) + 1.0;
    /* 2^k in two factors, so results in the subnormal range come out right. */
    int64_t k1 = k >> 1;
    return p * fm_pow2_f64(k1) * fm_pow2_f64(k - k1);
}

/* e^x - 1 for x <= 0 or NaN (callers make sure), accurate near 0: the core of
 * fm_expm1_neg_f64 and fm_tanh_f64, without the clamp of positive x that tanh does not need
 * (its compare and blend made a vector loop of tanh 14-17% slower, measured on Zen 4). */
FM_INLINE double fm_expm1_nonpos_f64(double x) {
    x = x < -64.0 ? -64.0 : x; /* e^-64 - 1 rounds to -1 */
    int64_t k;
    double r = fm_reduce_f64(x, &k);
    double q = fm_expm1_poly_f64(r), s = fm_pow2_f64(k);
    return FM_MADD_F64(s, q, s - 1.0);
}

/* e^x - 1 for x <= 0 (larger x are taken as 0), accurate near 0. */
FM_INLINE double fm_expm1_neg_f64(double x) { return fm_expm1_nonpos_f64(x > 0 ? 0 : x); }

/* 1 / (1 + e^-z) from e = e^-|z| (no overflow): 1 / (1 + e) for z >= 0, e / (1 + e) below;
 * NaN for NaN. -|z| and the choice come from the sign bit, as in fm_tanh_f64. */
FM_INLINE double fm_sigmoid_f64(double z) {
    double e = fm_exp_neg_f64(fm_from_bits_f64(fm_bits_f64(z) | FM_SIGN_F64));
    double s = 1.0 / (1.0 + e);
    return fm_sel_f64((fm_bits_f64(z) & FM_SIGN_F64) != 0, e * s, s);
}

/* tanh z = |e / (2 + e)| with z's sign, e = e^(-2|z|) - 1 in [-1, 0]: no overflow, accurate
 * near 0, +-0 for +-0, NaN for NaN. The sign goes on by bits, so the loop needs no compares
 * for it (fewer instructions in flight, the limit of a vector loop of these). */
FM_INLINE double fm_tanh_f64(double z) {
    uint64_t sign = fm_bits_f64(z) & FM_SIGN_F64;
    double e = fm_expm1_nonpos_f64(-2.0 * fm_from_bits_f64(fm_bits_f64(z) ^ sign));
    double t = e / (2.0 + e);
    return fm_from_bits_f64((fm_bits_f64(t) & ~FM_SIGN_F64) | sign);
}

/* log(1 + y) for 0 <= y <= 1. */
FM_INLINE double fm_log1p_unit_f64(double y) {
    double u = 1.0 + y;
    int big = u > 1.4142135623730951;
    double m = big ? u * 0.5 : u;
    double s = (m - 1.0) / (m + 1.0), s2 = s * s;
    double p = 1.0 / 21.0;
    p = p * s2 + 1.0 / 19.0;
    p = p * s2 + 1.0 / 17.0;
    p = p * s2 + 1.0 / 15.0;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    double log_u = 2.0 * (s + s * s2 * p) + (big ? FM_LN2_HI + FM_LN2_LO : 0.0);
    /* u = 1 + y rounded; scaling by y / (u - 1) undoes that rounding (Goldberg). */
    return u == 1.0 ? y : log_u * (y / (u - 1.0));
}

/* fm_expm1_poly_f64's series with fused steps where the ISA has them (fewer instructions). */
FM_INLINE double fm_expm1_poly_madd_f64(double r) {
    double p = 1.0 / 6227020800.0;
    p = FM_MADD_F64(p, r, 1.0 / 479001600.0);
    p = FM_MADD_F64(p, r, 1.0 / 39916800.0);
    p = FM_MADD_F64(p, r, 1.0 / 3628800.0);
    p = FM_MADD_F64(p, r, 1.0 / 362880.0);
    p = FM_MADD_F64(p, r, 1.0 / 40320.0);
    p = FM_MADD_F64(p, r, 1.0 / 5040.0);
    p = FM_MADD_F64(p, r, 1.0 / 720.0);
    p = FM_MADD_F64(p, r, 1.0 / 120.0);
    p = FM_MADD_F64(p, r, 1.0 / 24.0);
    p = FM_MADD_F64(p, r, 1.0 / 6.0);
    p = FM_MADD_F64(p, r, 0.5);
    return FM_MADD_F64(p * r, r, r);
}

/* f * e^(hi + lo) * m for an exponent given as any double hi plus a small correction lo
 * (|lo| < 2^-10; it is added after the reduction), hi + lo in [-746, 709.78] (the caller
 * clamps). f (within a factor 2^8 of 1) is applied before the scaling by 2^k and m (any size)
 * between its two halves, so a result in the subnormal range is rounded once.
 * hi - k ln2_hi is exact: ln2_hi has 32 bits and |k| < 2^11. */
FM_INLINE double fm_exp_mul_f64(double hi, double lo, double f, double m) {
    double kd = FM_MADD_F64(hi + lo, FM_LOG2E, FM_SHIFT_F64);
    int64_t k = (int64_t)(fm_bits_f64(kd) - fm_bits_f64(FM_SHIFT_F64));
    kd -= FM_SHIFT_F64;
    double r = FM_MADD_F64(-kd, FM_LN2_LO, FM_MADD_F64(-kd, FM_LN2_HI, hi) + lo);
    double p = FM_MADD_F64(fm_expm1_poly_madd_f64(r), f, f); /* (1 + q) f */
    int64_t k1 = k >> 1;
    return ((p * fm_pow2_f64(k1)) * m) * fm_pow2_f64(k - k1);
}

/* erfc -------------------------------------------------------------------------
 * For t >= 0, erfc(t) = e^(-t^2) g(t) with g(t) = e^(t^2) erfc(t) smooth (g(0) = 1,
 * g ~ 1/(t sqrt(pi)) as t grows). With x = (t - K)/(t + K) in [-1, 1) and u = (1 - x)/2,
 * g(t) = u G(x), G a polynomial fitted by scripts/fit_erfc.py on t <= 27.3 (erfc rounds to 0
 * beyond) to 2e-17 relative error.
 *
 * The rounding of x would cost up to ~4 ulp (g is sensitive to its argument through the
 * map), so it is undone: the computed x is the exact image of some t' = t + delta, and delta
 * follows from the exact errors of t -/+ K and of the division. Then
 * log g(t) = log g(t') + h delta with h = -(log g)'(t') = 2/(sqrt(pi) g) - 2t, from a short
 * fitted polynomial h(x) (delta < 1e-14, so h needs only 3 digits), and h delta joins the
 * exponent. e^(-t^2) is e^(-a_hi^2 c2) e^(-(a - a_hi)(a + a_hi) c2), with a_hi the top 26 bits
 * of a, so the large part of the exponent is exact. */

#define FM_ERFC_K_F64 4.0
#define FM_ERFC_TMAX_F64 27.3 /* erfc(27.3) < 2^-1080 */
#define FM_SQRT1_2_HI 0.7071067811865476
#define FM_SQRT1_2_LO (-4.833646656726457e-17) /* sqrt(1/2) - FM_SQRT1_2_HI */

/* G(x) on x in [-1, 0.7444] (t in [0, 27.3]), K = 4, degree 21: max relative error 5.6e-17. */
FM_INLINE double fm_erfc_poly_f64(double x) {
    double p = -7.160221831557191e-10;
    p = FM_MADD_F64(p, x, -3.511087418957039e-09);
    p = FM_MADD_F64(p, x, 2.454860684635028e-09);
    p = FM_MADD_F64(p, x, 3.124688089444684e-08);
    p = FM_MADD_F64(p, x, -2.174749591314796e-08);
    p = FM_MADD_F64(p, x, -2.1234859314467712e-07);
    p = FM_MADD_F64(p, x, 3.5810938691370483e-07);
    p = FM_MADD_F64(p, x, 1.1743537490267048e-06);
    p = FM_MADD_F64(p, x, -4.71613760224815e-06);
    p = FM_MADD_F64(p, x, -9.091610513127821e-07);
    p = FM_MADD_F64(p, x, 4.420346473562725e-05);
    p = FM_MADD_F64(p, x, -0.00011376306473396273);
    p = FM_MADD_F64(p, x, -7.023976342166497e-05);
    p = FM_MADD_F64(p, x, 0.0015280138955853194);
    p = FM_MADD_F64(p, x, -0.006592513329868984);
    p = FM_MADD_F64(p, x, 0.019095378729154653);
    p = FM_MADD_F64(p, x, -0.043502734310306955);
    p = FM_MADD_F64(p, x, 0.08271289696940691);
    p = FM_MADD_F64(p, x, -0.13521345782829947);
    p = FM_MADD_F64(p, x, 0.1933021755663115);
    p = FM_MADD_F64(p, x, -0.24413718227022058);
    p = FM_MADD_F64(p, x, 0.27399891525012277);
    return p;
}

/* h(x) = 2/(sqrt(pi) g(t)) - 2t, same range, degree 5: max absolute error 3.4e-4. */
FM_INLINE double fm_erfc_dlog_f64(double x) {
    double p = 0.04170239921763862;
    p = FM_MADD_F64(p, x, 0.026086072907048327);
    p = FM_MADD_F64(p, x, -0.17682148782920462);
    p = FM_MADD_F64(p, x, 0.3084515719668256);
    p = FM_MADD_F64(p, x, -0.42287718290508414);
    p = FM_MADD_F64(p, x, 0.23618323667595767);
    return p;
}

/* m * erfc(t) for 0 <= t <= FM_ERFC_TMAX_F64, where t + t_lo is the argument (t_lo = 0 when t
 * is exact, else t's rounding error) and t^2 = c2 a^2 exactly, c2 a power of two. */
FM_INLINE double fm_erfc_right_f64(double a, double c2, double t, double t_lo, double m) {
    const double K = FM_ERFC_K_F64;
    double n = t - K, d = t + K;
    double en = fm_add_err_f64(t, -K, n), ed = fm_add_err_f64(t, K, d);
    double x = n / d;
    double rho = fm_div_rem_f64(n, d, x);
    /* x - x(t) = (x ed - en - rho) / (t + K); dt/dx = (t + K)^2 / 2K. */
    double delta = FM_MADD_F64(d * (0.5 / K), FM_MADD_F64(x, ed, -en) - rho, -t_lo);
    double G = fm_erfc_poly_f64(x);
#if FM_HAVE_FMA
    double g = 0.5 * __builtin_fma(-x, G, G); /* g(t') = (1 - x)/2 G, one rounding */
#else
    double g = (0.5 - 0.5 * x) * G;
#endif
    double a_hi = fm_from_bits_f64(fm_bits_f64(a) & ~(((uint64_t)1 << 27) - 1));
    double hi = -(c2 * (a_hi * a_hi));
    double lo = -(c2 * ((a - a_hi) * (a + a_hi)));
    lo = FM_MADD_F64(fm_erfc_dlog_f64(x), delta, lo); /* g(t) = g(t') e^(h delta) */
    return fm_exp_mul_f64(hi, lo, g, m);
}

/* z/2 erfc(-z/sqrt 2) = z Phi(z), the GELU, from the erfc pieces above (fm_erfc_right_f64), with the
 * argument z/sqrt 2 carried with its rounding error and the exponent -z^2/2 formed from z, and
 * the factor z/2 applied before the final scaling: as accurate as erfc in the negative tail
 * too (plain 0.5 z erfc(-z sqrt(1/2)) loses up to ~z^2 ulp there, and more where erfc is
 * subnormal). Finite for all finite z; NaN for NaN. */
FM_INLINE double fm_gelu_f64(double z) {
    const double amax = FM_ERFC_TMAX_F64 * 1.4142135623730951 - 0.01; /* t = amax/sqrt2 < 27.3 */
    uint64_t sign = fm_bits_f64(z) & FM_SIGN_F64;
    double a = fm_from_bits_f64(fm_bits_f64(z) ^ sign);
    a = fm_sel_f64(a > amax, amax, a);
    double t = a * FM_SQRT1_2_HI;
    double t_lo = fm_mul_err_f64(a, FM_SQRT1_2_HI, t) + a * FM_SQRT1_2_LO;
    double m = 0.5 * z;
    double r = fm_erfc_right_f64(a, 0.5, t, t_lo, m); /* z/2 erfc(|z|/sqrt 2) */
    r = fm_sel_f64(a >= amax, 0.0, r); /* erfc rounds to 0 there; also drops inf * 0 for z = +-inf */
    /* z >= 0 (sign bit clear): z - r, else 0 + r */
    double zpos = fm_from_bits_f64(fm_bits_f64(z) & ((sign >> 63) - 1)); /* z, or 0 if negative */
    return zpos + fm_from_bits_f64(fm_bits_f64(r) ^ (sign ^ FM_SIGN_F64));
}

/* --- float ------------------------------------------------------------------- */

#define FM_SHIFT_F32 12582912.0f /* 1.5 * 2^23 */

FM_INLINE float fm_reduce_f32(float x, int32_t *k) {
    float kd = FM_MADD_F32(x, 1.44269504f, FM_SHIFT_F32);
    *k = (int32_t)(fm_bits_f32(kd) - fm_bits_f32(FM_SHIFT_F32));
    kd -= FM_SHIFT_F32;
    return FM_MADD_F32(-kd, 1.42860677e-6f, FM_MADD_F32(-kd, 0.693145752f, x));
}

FM_INLINE float fm_pow2_f32(int32_t k) { /* 2^k for -126 <= k <= 127 */
    return fm_from_bits_f32((uint32_t)(k + 127) << 23);
}

/* e^r - 1 on |r| <= ln2/2, to r^8/8! (the next term, r^9/9! < 2^-32, is far below half an
 * ulp of e^r - 1 >= r/2): r + r^2 p(r), p by Estrin's scheme as in fm_expm1_poly_f64. */
FM_INLINE float fm_expm1_poly_f32(float r) {
    float r2 = r * r, r4 = r2 * r2;
    float p0 = FM_MADD_F32(1.0f / 6.0f, r, 0.5f);
    float p1 = FM_MADD_F32(1.0f / 120.0f, r, 1.0f / 24.0f);
    float p2 = FM_MADD_F32(1.0f / 5040.0f, r, 1.0f / 720.0f);
    float q0 = FM_MADD_F32(p1, r2, p0);
    float p = FM_MADD_F32(FM_MADD_F32(1.0f / 40320.0f, r2, p2), r4, q0);
    return FM_MADD_F32(p, r2, r);
}

FM_INLINE float fm_exp_neg_f32(float x) {
    x = x > 0 ? 0 : x;
    x = x < -104.0f ? -104.0f : x;
    int32_t k;
    float r = fm_reduce_f32(x, &k);
    float p = fm_expm1_poly_f32(r) + 1.0f;
    int32_t k1 = k >> 1;
    return p * fm_pow2_f32(k1) * fm_pow2_f32(k - k1);
}

/* As fm_expm1_nonpos_f64 (e^-32 - 1 rounds to -1 in float). */
FM_INLINE float fm_expm1_nonpos_f32(float x) {
    x = x < -32.0f ? -32.0f : x;
    int32_t k;
    float r = fm_reduce_f32(x, &k);
    float q = fm_expm1_poly_f32(r), s = fm_pow2_f32(k);
    return FM_MADD_F32(s, q, s - 1.0f);
}

FM_INLINE float fm_expm1_neg_f32(float x) { return fm_expm1_nonpos_f32(x > 0 ? 0 : x); }

/* As fm_sigmoid_f64. */
FM_INLINE float fm_sigmoid_f32(float z) {
    float e = fm_exp_neg_f32(fm_from_bits_f32(fm_bits_f32(z) | FM_SIGN_F32));
    float s = 1.0f / (1.0f + e);
    return fm_sel_f32((fm_bits_f32(z) & FM_SIGN_F32) != 0, e * s, s);
}

/* As fm_tanh_f64. */
FM_INLINE float fm_tanh_f32(float z) {
    uint32_t sign = fm_bits_f32(z) & FM_SIGN_F32;
    float e = fm_expm1_nonpos_f32(-2.0f * fm_from_bits_f32(fm_bits_f32(z) ^ sign));
    float t = e / (2.0f + e);
    return fm_from_bits_f32((fm_bits_f32(t) & ~FM_SIGN_F32) | sign);
}

FM_INLINE float fm_log1p_unit_f32(float y) {
    float u = 1.0f + y;
    int big = u > 1.41421356f;
    float m = big ? u * 0.5f : u;
    float s = (m - 1.0f) / (m + 1.0f), s2 = s * s;
    float p = 1.0f / 11.0f;
    p = p * s2 + 1.0f / 9.0f;
    p = p * s2 + 1.0f / 7.0f;
    p = p * s2 + 1.0f / 5.0f;
    p = p * s2 + 1.0f / 3.0f;
    float log_u = 2.0f * (s + s * s2 * p) + (big ? 0.693147181f : 0.0f);
    return u == 1.0f ? y : log_u * (y / (u - 1.0f));
}

FM_INLINE float fm_expm1_poly_madd_f32(float r) {
    float p = 1.0f / 40320.0f;
    p = FM_MADD_F32(p, r, 1.0f / 5040.0f);
    p = FM_MADD_F32(p, r, 1.0f / 720.0f);
    p = FM_MADD_F32(p, r, 1.0f / 120.0f);
    p = FM_MADD_F32(p, r, 1.0f / 24.0f);
    p = FM_MADD_F32(p, r, 1.0f / 6.0f);
    p = FM_MADD_F32(p, r, 0.5f);
    return FM_MADD_F32(p * r, r, r);
}

/* As fm_exp_mul_f64: hi + lo in [-104, 88.73]; ln2_hi has 15 bits and |k| < 2^8. */
FM_INLINE float fm_exp_mul_f32(float hi, float lo, float f, float m) {
    float kd = FM_MADD_F32(hi + lo, 1.44269504f, FM_SHIFT_F32);
    int32_t k = (int32_t)(fm_bits_f32(kd) - fm_bits_f32(FM_SHIFT_F32));
    kd -= FM_SHIFT_F32;
    float r = FM_MADD_F32(-kd, 1.42860677e-6f, FM_MADD_F32(-kd, 0.693145752f, hi) + lo);
    float p = FM_MADD_F32(fm_expm1_poly_madd_f32(r), f, f);
    int32_t k1 = k >> 1;
    return ((p * fm_pow2_f32(k1)) * m) * fm_pow2_f32(k - k1);
}

/* erfc in float, computed in float as the double pieces with its own fit (K = 3, t <= 10.15;
 * erfc(10.1) < 2^-151 rounds to 0). a_hi keeps the top 12 bits of a. */
#define FM_ERFC_K_F32 3.0f
#define FM_ERFC_TMAX_F32 10.1f

/* G(x) on x in [-1, 0.5437] (t in [0, 10.15]), K = 3, degree 9: max relative error 7.7e-9. */
FM_INLINE float fm_erfc_poly_f32(float x) {
    float p = -0.000106541382f;
    p = FM_MADD_F32(p, x, -0.000158356153f);
    p = FM_MADD_F32(p, x, 0.00102566916f);
    p = FM_MADD_F32(p, x, -0.000411184825f);
    p = FM_MADD_F32(p, x, -0.00894641317f);
    p = FM_MADD_F32(p, x, 0.0398437455f);
    p = FM_MADD_F32(p, x, -0.103488691f);
    p = FM_MADD_F32(p, x, 0.196742684f);
    p = FM_MADD_F32(p, x, -0.294464827f);
    p = FM_MADD_F32(p, x, 0.358002305f);
    return p;
}

/* h(x), same range, degree 4: max absolute error 3.7e-4. */
FM_INLINE float fm_erfc_dlog_f32(float x) {
    float p = -0.0545002446f;
    p = FM_MADD_F32(p, x, -0.0695518032f);
    p = FM_MADD_F32(p, x, 0.298257142f);
    p = FM_MADD_F32(p, x, -0.512045026f);
    p = FM_MADD_F32(p, x, 0.303396672f);
    return p;
}

FM_INLINE float fm_erfc_right_f32(float a, float c2, float t, float t_lo, float m) {
    const float K = FM_ERFC_K_F32;
    float n = t - K, d = t + K;
    float en = fm_add_err_f32(t, -K, n), ed = fm_add_err_f32(t, K, d);
    float x = n / d;
    float rho = fm_div_rem_f32(n, d, x);
    float delta = FM_MADD_F32(d * (0.5f / K), FM_MADD_F32(x, ed, -en) - rho, -t_lo);
    float G = fm_erfc_poly_f32(x);
#if FM_HAVE_FMA
    float g = 0.5f * __builtin_fmaf(-x, G, G);
#else
    float g = (0.5f - 0.5f * x) * G;
#endif
    float a_hi = fm_from_bits_f32(fm_bits_f32(a) & ~(((uint32_t)1 << 12) - 1));
    float hi = -(c2 * (a_hi * a_hi));
    float lo = -(c2 * ((a - a_hi) * (a + a_hi)));
    lo = FM_MADD_F32(fm_erfc_dlog_f32(x), delta, lo);
    return fm_exp_mul_f32(hi, lo, g, m);
}

FM_INLINE float fm_gelu_f32(float z) {
    const float amax = 14.28f; /* amax / sqrt 2 = 10.097 */
    const float c_hi = 0.707106769f, c_lo = 1.21016171e-08f; /* sqrt(1/2) = c_hi + c_lo */
    uint32_t sign = fm_bits_f32(z) & FM_SIGN_F32;
    float a = fm_from_bits_f32(fm_bits_f32(z) ^ sign);
    a = fm_sel_f32(a > amax, amax, a);
    float t = a * c_hi;
    float t_lo = fm_mul_err_f32(a, c_hi, t) + a * c_lo;
    float m = 0.5f * z;
    float r = fm_erfc_right_f32(a, 0.5f, t, t_lo, m);
    r = fm_sel_f32(a >= amax, 0.0f, r);
    float zpos = fm_from_bits_f32(fm_bits_f32(z) & ((sign >> 31) - 1));
    return zpos + fm_from_bits_f32(fm_bits_f32(r) ^ (sign ^ FM_SIGN_F32));
}

/* --- expm1 and log1p on wider domains (celu, log_softmax) ---------------------- */

/* e^x - 1 for any x: -1 below -64, +inf above 709.78, NaN for NaN. 2^k is applied as
 * 2^min(k, 1023) times 2 when k = 1024, where the -1 is far below half an ulp. */
FM_INLINE double fm_expm1_f64(double x) {
    x = x < -64.0 ? -64.0 : x;
    x = x > 709.79 ? 709.79 : x; /* e^709.79 overflows: the last product gives +inf */
    int64_t k;
    double r = fm_reduce_f64(x, &k);
    int64_t k_lo = k > 1023 ? 1023 : k;
    double q = fm_expm1_poly_f64(r), s = fm_pow2_f64(k_lo);
    return (s * q + (s - 1.0)) * (k > k_lo ? 2.0 : 1.0);
}

/* log(1 + y) for 0 <= y < 2^1023 (any size: 1 + y = 2^e m with m in [sqrt(1/2), sqrt 2),
 * log m from the atanh series of fm_log1p_unit_f64). NaN for NaN. */
FM_INLINE double fm_log1p_pos_f64(double y) {
    double u = 1.0 + y;
    const uint64_t sqrt_half = 0x3fe6a09e667f3bcdULL; /* bits of sqrt(1/2) */
    int64_t e = (int64_t)(fm_bits_f64(u) - sqrt_half) >> 52;
    double m = fm_from_bits_f64(fm_bits_f64(u) - ((uint64_t)e << 52));
    double s = (m - 1.0) / (m + 1.0), s2 = s * s;
    double p = 1.0 / 21.0;
    p = p * s2 + 1.0 / 19.0;
    p = p * s2 + 1.0 / 17.0;
    p = p * s2 + 1.0 / 15.0;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    double ed = (double)e;
    double log_u = (ed * FM_LN2_LO + 2.0 * (s + s * s2 * p)) + ed * FM_LN2_HI;
    /* As in fm_log1p_unit_f64: y / (u - 1) undoes the rounding of 1 + y. */
    return u == 1.0 ? y : log_u * (y / (u - 1.0));
}

FM_INLINE float fm_expm1_f32(float x) {
    x = x < -32.0f ? -32.0f : x;
    x = x > 88.73f ? 88.73f : x;
    int32_t k;
    float r = fm_reduce_f32(x, &k);
    int32_t k_lo = k > 127 ? 127 : k;
    float q = fm_expm1_poly_f32(r), s = fm_pow2_f32(k_lo);
    return (s * q + (s - 1.0f)) * (k > k_lo ? 2.0f : 1.0f);
}

FM_INLINE float fm_log1p_pos_f32(float y) {
    float u = 1.0f + y;
    const uint32_t sqrt_half = 0x3f3504f3u;
    int32_t e = (int32_t)(fm_bits_f32(u) - sqrt_half) >> 23;
    float m = fm_from_bits_f32(fm_bits_f32(u) - ((uint32_t)e << 23));
    float s = (m - 1.0f) / (m + 1.0f), s2 = s * s;
    float p = 1.0f / 11.0f;
    p = p * s2 + 1.0f / 9.0f;
    p = p * s2 + 1.0f / 7.0f;
    p = p * s2 + 1.0f / 5.0f;
    p = p * s2 + 1.0f / 3.0f;
    float ed = (float)e;
    float log_u = (ed * 1.42860677e-6f + 2.0f * (s + s * s2 * p)) + ed * 0.693145752f;
    return u == 1.0f ? y : log_u * (y / (u - 1.0f));
}

#endif
