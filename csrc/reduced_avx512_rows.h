/* Rows prepared for the avx512_bf16 and amx variants (reduced_avx512.h, reduced_amx.h),
 * with the bits of the portable loops they replace.
 *
 * bfloat16 by vcvtne2ps2bf16, 32 inputs per instruction: its subnormal inputs read as zero,
 * as these variants' dot products read them anyway; the last n % 32 inputs by
 * bf16_bits_flushed, which rounds as the instruction does. At 1024 rows of 784-512-256-10
 * the portable loop was a fifth of the time on AMX.
 *
 * int8 by vcvtps2dq, 16 inputs at a time: it rounds to nearest even, as nearbyintf does in
 * the default mode, and |q| <= 127 (quantize_row in dense_reduced.c shows why), so the
 * saturating narrowing clamps nothing. */
#ifndef FASTMLP_REDUCED_AVX512_ROWS_H
#define FASTMLP_REDUCED_AVX512_ROWS_H

/* d[0 .. n) = x[0 .. n) as bfloat16 bit patterns. */
static void rk_bf16_round_row(const float *x, int n, uint16_t *d) {
    int k = 0;
    for (; k + 32 <= n; k += 32) {
        const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + k + 16), _mm512_loadu_ps(x + k));
        _mm512_storeu_si512((void *)(d + k), (__m512i)v);
    }
    for (; k < n; k++) d[k] = bf16_bits_flushed(x[k]);
}

/* Bytes round(x * inv) ^ flip for the first n - n % 16 inputs (flip -128: stored as
 * q + 128); returns how many it did, the rest being the portable loop's. */
static int rk_int8_quantize_row(const float *x, int n, float inv, void *dst, int8_t flip) {
    const __m512 scale = _mm512_set1_ps(inv);
    const __m128i flip_bits = _mm_set1_epi8(flip);
    int k = 0;
    for (; k + 16 <= n; k += 16) {
        const __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + k), scale));
        _mm_storeu_si128((__m128i *)((unsigned char *)dst + k),
                         _mm_xor_si128(_mm512_cvtsepi32_epi8(q), flip_bits));
    }
    return k;
}

#endif
