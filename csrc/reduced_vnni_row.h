/* One row's int8 sums against one panel by AVX512-VNNI's vpdpbusd, for the avx512_bf16
 * and amx variants (reduced_avx512.h, reduced_amx.h): their path for one or two rows.
 *
 * vpdpbusd multiplies unsigned by signed bytes, so the row enters as q + 128: stored so
 * (avx512_bf16), or stored signed and flipped here by one xor of the top bits (amx); then
 * 128 times each column's sum (packed with the weights) comes off. Four chains of sums
 * over the quads keep the adds' latency out of the loop: the sums are integers, wrapping
 * modulo 2^32 with the true sum in int32 range, so any order gives the same result. */
#ifndef FASTMLP_REDUCED_VNNI_ROW_H
#define FASTMLP_REDUCED_VNNI_ROW_H

#define RK_VNNI_QUAD(acc0, acc1, kq)                                                           \
    do {                                                                                      \
        int32_t quad_;                                                                        \
        memcpy(&quad_, xq + (kq) * 4, sizeof quad_);                                          \
        const __m512i x_ = _mm512_xor_si512(_mm512_set1_epi32(quad_), flip);                  \
        acc0 = _mm512_dpbusd_epi32(acc0, x_, _mm512_loadu_si512((const void *)(w + (kq) * 128))); \
        acc1 = _mm512_dpbusd_epi32(acc1, x_,                                                   \
                                   _mm512_loadu_si512((const void *)(w + (kq) * 128 + 64)));  \
    } while (0)

/* acc_out[0 .. NR) = the exact sums of the row's `quads` quads (q + 128 ^ flip_bits, bytes)
 * times the panel's columns. */
static void rk_vnni_int8_row(const unsigned char *xq, size_t quads, const unsigned char *panel,
                             int32_t *acc_out, int32_t flip_bits) {
    const unsigned char *w = panel + 4 * NR;
    const __m512i flip = _mm512_set1_epi32(flip_bits);
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0,
            d0 = a0, d1 = a0;
    size_t kq = 0;
    for (; kq + 4 <= quads; kq += 4) {
        RK_VNNI_QUAD(a0, a1, kq);
        RK_VNNI_QUAD(b0, b1, kq + 1);
        RK_VNNI_QUAD(c0, c1, kq + 2);
        RK_VNNI_QUAD(d0, d1, kq + 3);
    }
    for (; kq < quads; kq++) RK_VNNI_QUAD(a0, a1, kq);
    const __m512i s0 = _mm512_add_epi32(_mm512_add_epi32(a0, b0), _mm512_add_epi32(c0, d0));
    const __m512i s1 = _mm512_add_epi32(_mm512_add_epi32(a1, b1), _mm512_add_epi32(c1, d1));
    const __m512i off0 = _mm512_slli_epi32(_mm512_loadu_si512((const void *)panel), 7);
    const __m512i off1 = _mm512_slli_epi32(_mm512_loadu_si512((const void *)(panel + 64)), 7);
    _mm512_storeu_si512((void *)acc_out, _mm512_sub_epi32(s0, off0));
    _mm512_storeu_si512((void *)(acc_out + 16), _mm512_sub_epi32(s1, off1));
}

#endif
