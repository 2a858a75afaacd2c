/* Reduced-precision micro-kernels for AVX512-BF16 and AVX512-VNNI (dense_reduced.c's
 * interface), as on AMD Zen 4 and Intel Cooper Lake and later:
 *   bfloat16: vdpbf16ps, two bfloat16 products into each float lane per instruction;
 *   int8:     vpdpbusd, four byte products into each int32 lane. It multiplies unsigned
 *             by signed bytes, so a row is stored as q + 128 (0 .. 255) and 128 times
 *             each column's sum (packed with the weights) is taken off afterwards; the
 *             sums wrap modulo 2^32 and the true sum fits in int32, so the result is exact. */
#include "simd.h"
#include "reduced_avx512_rows.h"
#include "reduced_vnni_row.h"

#define RK_GROUP 8
#define RK_ROW_QUANTUM 1

static inline int rk_begin(int int8, size_t rows) { return (void)int8, (void)rows, 0; }
static inline void rk_end(int began) { (void)began; }

/* The bfloat16 pairs of an integer vector, for vdpbf16ps (a cast of the same size). */
#define RK_AS_BH(v) ((__m512bh)(v))

/* Lane masks for the two 16-column halves of a panel of n_valid columns. */
static inline __mmask16 half_mask(int n_valid, int half) {
    const int n = n_valid - 16 * half;
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* bfloat16: a row as bfloat16 bit patterns, padded with a zero to pairs. */
static size_t rk_bf16_row_bytes(int n_in) { return ((size_t)n_in + 1) / 2 * 4; }

static void rk_bf16_prepare_row(const float *x, int n_in, void *dst) {
    uint16_t *d = dst;
    rk_bf16_round_row(x, n_in, d);
    if (n_in % 2) d[n_in] = 0;
}

FM_INLINE void bf16_micro(const int mr, const unsigned char *xp, size_t pairs,
                          const uint16_t *w, float *z, size_t ldz, int n_valid) {
    __m512 acc[RK_GROUP][2];
    for (int r = 0; r < mr; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (size_t kk = 0; kk < pairs; kk++) {
        const __m512i w0 = _mm512_loadu_si512((const void *)(w + kk * 2 * NR));
        const __m512i w1 = _mm512_loadu_si512((const void *)(w + kk * 2 * NR + 32));
        for (int r = 0; r < mr; r++) {
            int32_t pair;
            memcpy(&pair, xp + r * pairs * 4 + kk * 4, sizeof pair);
            const __m512i xv = _mm512_set1_epi32(pair);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], RK_AS_BH(xv), RK_AS_BH(w0));
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], RK_AS_BH(xv), RK_AS_BH(w1));
        }
    }
    const __mmask16 m0 = half_mask(n_valid, 0), m1 = half_mask(n_valid, 1);
    for (int r = 0; r < mr; r++) {
        _mm512_mask_storeu_ps(z + r * ldz, m0, acc[r][0]);
        _mm512_mask_storeu_ps(z + r * ldz + 16, m1, acc[r][1]);
    }
}

static void rk_bf16_panel(const void *xp, size_t rows, int n_in, const uint16_t *w, float *z,
                          size_t ldz, int n_valid) {
    const size_t pairs = ((size_t)n_in + 1) / 2;
    const unsigned char *x = xp;
    switch (rows) {
    case 8: bf16_micro(8, x, pairs, w, z, ldz, n_valid); break;
    case 7: bf16_micro(7, x, pairs, w, z, ldz, n_valid); break;
    case 6: bf16_micro(6, x, pairs, w, z, ldz, n_valid); break;
    case 5: bf16_micro(5, x, pairs, w, z, ldz, n_valid); break;
    case 4: bf16_micro(4, x, pairs, w, z, ldz, n_valid); break;
    case 3: bf16_micro(3, x, pairs, w, z, ldz, n_valid); break;
    case 2: bf16_micro(2, x, pairs, w, z, ldz, n_valid); break;
    default: bf16_micro(1, x, pairs, w, z, ldz, n_valid);
    }
}

/* int8: a row as q + 128, padded with zeros to quads (their weights are zero). */
static size_t rk_int8_row_bytes(int n_in) { return ((size_t)n_in + 3) / 4 * 4; }
#define RK_INT8_PUT(dst, k, q) (((uint8_t *)(dst))[k] = (uint8_t)((q) + 128))
#define RK_INT8_BYTES 1 /* bytes per stored input */

#define RK_INT8_QUANTIZE /* dense_reduced.c: the vector loop first */
static int rk_int8_quantize(const float *x, int n, float inv, void *dst) {
    return rk_int8_quantize_row(x, n, inv, dst, -128 /* stored as q + 128 */);
}

FM_INLINE void int8_micro(const int mr, const unsigned char *xq, size_t quads,
                          const unsigned char *panel, int32_t *acc_out) {
    const unsigned char *w = panel + 4 * NR;
    __m512i acc[RK_GROUP][2];
    for (int r = 0; r < mr; r++) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
    for (size_t kq = 0; kq < quads; kq++) {
        const __m512i w0 = _mm512_loadu_si512((const void *)(w + kq * 4 * NR));
        const __m512i w1 = _mm512_loadu_si512((const void *)(w + kq * 4 * NR + 64));
        for (int r = 0; r < mr; r++) {
            int32_t quad;
            memcpy(&quad, xq + r * quads * 4 + kq * 4, sizeof quad);
            const __m512i xv = _mm512_set1_epi32(quad);
            acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], xv, w0);
            acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], xv, w1);
        }
    }
    /* 128 * column sums: what the +128 of every input added */
    const __m512i off0 = _mm512_slli_epi32(_mm512_loadu_si512((const void *)panel), 7);
    const __m512i off1 = _mm512_slli_epi32(_mm512_loadu_si512((const void *)(panel + 64)), 7);
    for (int r = 0; r < mr; r++) {
        _mm512_storeu_si512((void *)(acc_out + r * NR), _mm512_sub_epi32(acc[r][0], off0));
        _mm512_storeu_si512((void *)(acc_out + r * NR + 16), _mm512_sub_epi32(acc[r][1], off1));
    }
}

static void rk_int8_panel(const void *xq, size_t rows, int n_in, const unsigned char *panel,
                          int32_t *acc_out) {
    const size_t quads = ((size_t)n_in + 3) / 4;
    const unsigned char *x = xq;
    switch (rows) {
    case 8: int8_micro(8, x, quads, panel, acc_out); break;
    case 7: int8_micro(7, x, quads, panel, acc_out); break;
    case 6: int8_micro(6, x, quads, panel, acc_out); break;
    case 5: int8_micro(5, x, quads, panel, acc_out); break;
    case 4: int8_micro(4, x, quads, panel, acc_out); break;
    case 3: int8_micro(3, x, quads, panel, acc_out); break;
    case 2: int8_micro(2, x, quads, panel, acc_out); break;
    default: rk_vnni_int8_row(x, quads, panel, acc_out, 0); /* stored as q + 128 */
    }
}
