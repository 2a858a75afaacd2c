/* Elementary functions the compiler can vectorise: only arithmetic, selects and
 * integer bit operations, no calls and no branches, so a loop over them becomes
 * AVX-512, AVX2 or NEON code in the build for that instruction set.
 *
 * Each is written for the domain the activations need (x <= 0 for exp and
 * expm1, 0 <= y <= 1 for log1p), accurate to a few ulp there, and passes NaN
 * through. Polynomials are Taylor series cut where the next term is below
 * half an ulp on |r| <= ln(2)/2. */
#ifndef FASTMLP_VMATH_H
#define FASTMLP_VMATH_H

#include <stdint.h>
#include <string.h>

#include "isa.h"

FM_INLINE uint64_t fm_bits_f64(double x) { uint64_t u; memcpy(&u, &x, 8); return u; }
FM_INLINE double fm_from_bits_f64(uint64_t u) { double x; memcpy(&x, &u, 8); return x; }
FM_INLINE uint32_t fm_bits_f32(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
FM_INLINE float fm_from_bits_f32(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

/* --- double ------------------------------------------------------------------ */

#define FM_LOG2E 1.4426950408889634074
#define FM_LN2_HI 6.93147180369123816490e-01
#define FM_LN2_LO 1.90821492927058770002e-10
#define FM_SHIFT_F64 6755399441055744.0 /* 1.5 * 2^52: adding it rounds to an integer */

/* x = k ln2 + r, |r| <= ln2/2; k is read from the bits of the rounded value. */
FM_INLINE double fm_reduce_f64(double x, int64_t *k) {
    double kd = x * FM_LOG2E + FM_SHIFT_F64;
    *k = (int64_t)(fm_bits_f64(kd) - fm_bits_f64(FM_SHIFT_F64));
    kd -= FM_SHIFT_F64;
    return (x - kd * FM_LN2_HI) - kd * FM_LN2_LO;
}

FM_INLINE double fm_pow2_f64(int64_t k) { /* 2^k for -1022 <= k <= 1023 */
    return fm_from_bits_f64((uint64_t)(k + 1023) << 52);
}

/* e^r - 1 on |r| <= ln2/2, to r^13/13!. */
FM_INLINE double fm_expm1_poly_f64(double r) {
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    return (p * r) * r + r;
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

/* e^x - 1 for x <= 0 (larger x are taken as 0), accurate near 0. */
FM_INLINE double fm_expm1_neg_f64(double x) {
    x = x > 0 ? 0 : x;
    x = x < -64.0 ? -64.0 : x; /* e^-64 - 1 rounds to -1 */
    int64_t k;
    double r = fm_reduce_f64(x, &k);
    double q = fm_expm1_poly_f64(r), s = fm_pow2_f64(k);
    return s * q + (s - 1.0);
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

/* --- float ------------------------------------------------------------------- */

#define FM_SHIFT_F32 12582912.0f /* 1.5 * 2^23 */

FM_INLINE float fm_reduce_f32(float x, int32_t *k) {
    float kd = x * 1.44269504f + FM_SHIFT_F32;
    *k = (int32_t)(fm_bits_f32(kd) - fm_bits_f32(FM_SHIFT_F32));
    kd -= FM_SHIFT_F32;
    return (x - kd * 0.693145752f) - kd * 1.42860677e-6f;
}

FM_INLINE float fm_pow2_f32(int32_t k) { /* 2^k for -126 <= k <= 127 */
    return fm_from_bits_f32((uint32_t)(k + 127) << 23);
}

/* e^r - 1 on |r| <= ln2/2, to r^8/8!. */
FM_INLINE float fm_expm1_poly_f32(float r) {
    float p = 1.0f / 40320.0f;
    p = p * r + 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    return (p * r) * r + r;
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

FM_INLINE float fm_expm1_neg_f32(float x) {
    x = x > 0 ? 0 : x;
    x = x < -32.0f ? -32.0f : x;
    int32_t k;
    float r = fm_reduce_f32(x, &k);
    float q = fm_expm1_poly_f32(r), s = fm_pow2_f32(k);
    return s * q + (s - 1.0f);
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

#endif
