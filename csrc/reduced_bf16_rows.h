/* A row rounded to bfloat16 by vcvtne2ps2bf16, 32 inputs per instruction, for the
 * avx512_bf16 and amx variants (reduced_avx512.h, reduced_amx.h), whose dot products read
 * subnormal inputs as zero anyway; the last n % 32 inputs by bf16_bits_flushed, which
 * rounds as the instruction does. In a fifth of the portable loop's instructions: at 1024
 * rows of 784-512-256-10 that loop was a fifth of the time on AMX. */
#ifndef FASTMLP_REDUCED_BF16_ROWS_H
#define FASTMLP_REDUCED_BF16_ROWS_H

/* d[0 .. n) = x[0 .. n) as bfloat16 bit patterns. */
static void rk_bf16_round_row(const float *x, int n, uint16_t *d) {
    int k = 0;
    for (; k + 32 <= n; k += 32) {
        const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + k + 16), _mm512_loadu_ps(x + k));
        _mm512_storeu_si512((void *)(d + k), (__m512i)v);
    }
    for (; k < n; k++) d[k] = bf16_bits_flushed(x[k]);
}

#endif
