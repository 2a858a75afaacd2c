/* Reduced-precision micro-kernels for AVX2 (dense_reduced.c's interface), also used by
 * the avx512 variant: bfloat16 widened to float for fused multiply-adds, int8 widened to
 * int16 for vpmaddwd (two exact products per 32-bit lane); or, in the avx2_vnni variant
 * (AVX-VNNI, as on Intel Alder Lake), int8 by vpdpbusd, four byte products per lane, on
 * inputs offset to unsigned as in reduced_avx512.h. */
#include "simd.h"

#define RK_GROUP 4
#define RK_ROW_QUANTUM 1

static inline int rk_begin(int int8, size_t rows) { return (void)int8, (void)rows, 0; }
static inline void rk_end(int began) { (void)began; }

#include "reduced_float_rows.h"

/* z for mr prepared rows (row stride `width` floats) and all 32 columns of one panel. */
FM_INLINE void bf16_micro(const int mr, const float *xp, size_t width, const uint16_t *w,
                          size_t pairs, float *z, size_t ldz) {
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    for (int half = 0; half < 2; half++) { /* 16 columns at a time */
        __m256 acc[RK_GROUP][2];
        for (int r = 0; r < mr; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        const uint16_t *wh = w + half * 32;
        for (size_t kk = 0; kk < pairs; kk++) {
            __m256 even[2], odd[2];
            for (int v = 0; v < 2; v++) {
                /* 8 columns, (k even, k odd) in each 32-bit lane */
                const __m256i p =
                    _mm256_loadu_si256((const __m256i *)(wh + kk * 2 * NR + v * 16));
                even[v] = _mm256_castsi256_ps(_mm256_slli_epi32(p, 16));
                odd[v] = _mm256_castsi256_ps(_mm256_and_si256(p, high));
            }
            for (int r = 0; r < mr; r++) {
                const __m256 xe = _mm256_set1_ps(xp[r * width + 2 * kk]);
                const __m256 xo = _mm256_set1_ps(xp[r * width + 2 * kk + 1]);
                for (int v = 0; v < 2; v++) {
                    acc[r][v] = _mm256_fmadd_ps(xe, even[v], acc[r][v]);
                    acc[r][v] = _mm256_fmadd_ps(xo, odd[v], acc[r][v]);
                }
            }
        }
        for (int r = 0; r < mr; r++)
            for (int v = 0; v < 2; v++)
                _mm256_storeu_ps(z + r * ldz + half * 16 + v * 8, acc[r][v]);
    }
}

static void rk_bf16_panel(const void *xp, size_t rows, int n_in, const uint16_t *w, float *z,
                          size_t ldz, int n_valid) {
    const size_t pairs = ((size_t)n_in + 1) / 2;
    float full[RK_GROUP * NR];
    float *dst = n_valid == NR ? z : full;
    const size_t ld = n_valid == NR ? ldz : NR;
    switch (rows) {
    case 4: bf16_micro(4, xp, 2 * pairs, w, pairs, dst, ld); break;
    case 3: bf16_micro(3, xp, 2 * pairs, w, pairs, dst, ld); break;
    case 2: bf16_micro(2, xp, 2 * pairs, w, pairs, dst, ld); break;
    default: bf16_micro(1, xp, 2 * pairs, w, pairs, dst, ld);
    }
    if (dst == full)
        for (size_t r = 0; r < rows; r++)
            memcpy(z + r * ldz, full + r * NR, (size_t)n_valid * sizeof(float));
}

#if FM_ISA == FM_ISA_AVX2_VNNI
/* int8: a row as q + 128, padded with zeros to quads (their weights are zero). */
static size_t rk_int8_row_bytes(int n_in) { return ((size_t)n_in + 3) / 4 * 4; }
#define RK_INT8_PUT(dst, k, q) (((uint8_t *)(dst))[k] = (uint8_t)((q) + 128))
#define RK_INT8_BYTES 1 /* bytes per stored input */

/* Sums of mr rows against 16 columns (half a panel): two vectors of 8 columns x 4 inputs. */
FM_INLINE void int8_micro(const int mr, const unsigned char *xq, size_t quads,
                          const unsigned char *panel, int32_t *acc_out) {
    const unsigned char *w = panel + 4 * NR;
    for (int half = 0; half < 2; half++) {
        __m256i acc[RK_GROUP][2];
        for (int r = 0; r < mr; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
        for (size_t kq = 0; kq < quads; kq++) {
            const unsigned char *wk = w + kq * 4 * NR + half * 64;
            const __m256i w0 = _mm256_loadu_si256((const __m256i *)wk);
            const __m256i w1 = _mm256_loadu_si256((const __m256i *)(wk + 32));
            for (int r = 0; r < mr; r++) {
                int32_t quad;
                memcpy(&quad, xq + r * quads * 4 + kq * 4, sizeof quad);
                const __m256i xv = _mm256_set1_epi32(quad);
                acc[r][0] = _mm256_dpbusd_avx_epi32(acc[r][0], xv, w0);
                acc[r][1] = _mm256_dpbusd_avx_epi32(acc[r][1], xv, w1);
            }
        }
        /* 128 * column sums: what the +128 of every input added (wrapping, exact) */
        const int32_t *sums = (const int32_t *)panel + half * 16;
        const __m256i off0 = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)sums), 7);
        const __m256i off1 =
            _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(sums + 8)), 7);
        for (int r = 0; r < mr; r++) {
            int32_t *dst = acc_out + r * NR + half * 16;
            _mm256_storeu_si256((__m256i *)dst, _mm256_sub_epi32(acc[r][0], off0));
            _mm256_storeu_si256((__m256i *)(dst + 8), _mm256_sub_epi32(acc[r][1], off1));
        }
    }
}

/* One row against the whole panel: four vectors of 8 columns, each with two chains of
 * sums over alternate quads, so that vpdpbusd's latency does not bound the loop (exact
 * integer sums, wrapping modulo 2^32: the same result in any order). */
static void int8_row(const unsigned char *xq, size_t quads, const unsigned char *panel,
                     int32_t *acc_out) {
    const unsigned char *w = panel + 4 * NR;
    __m256i even[4], odd[4];
    for (int c = 0; c < 4; c++) even[c] = odd[c] = _mm256_setzero_si256();
    size_t kq = 0;
    for (; kq + 2 <= quads; kq += 2) {
        int32_t q0, q1;
        memcpy(&q0, xq + kq * 4, sizeof q0);
        memcpy(&q1, xq + kq * 4 + 4, sizeof q1);
        const __m256i x0 = _mm256_set1_epi32(q0), x1 = _mm256_set1_epi32(q1);
        for (int c = 0; c < 4; c++) {
            const __m256i *wk = (const __m256i *)(w + kq * 4 * NR + c * 32);
            even[c] = _mm256_dpbusd_avx_epi32(even[c], x0, _mm256_loadu_si256(wk));
            odd[c] = _mm256_dpbusd_avx_epi32(odd[c], x1, _mm256_loadu_si256(wk + 4));
        }
    }
    if (kq < quads) {
        int32_t q0;
        memcpy(&q0, xq + kq * 4, sizeof q0);
        const __m256i x0 = _mm256_set1_epi32(q0);
        for (int c = 0; c < 4; c++)
            even[c] = _mm256_dpbusd_avx_epi32(
                even[c], x0, _mm256_loadu_si256((const __m256i *)(w + kq * 4 * NR + c * 32)));
    }
    for (int c = 0; c < 4; c++) { /* less 128 * column sums: what the +128 added */
        const __m256i off =
            _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)panel + c), 7);
        _mm256_storeu_si256((__m256i *)(acc_out + c * 8),
                            _mm256_sub_epi32(_mm256_add_epi32(even[c], odd[c]), off));
    }
}

static void rk_int8_panel(const void *xq, size_t rows, int n_in, const unsigned char *panel,
                          int32_t *acc_out) {
    const size_t quads = ((size_t)n_in + 3) / 4;
    const unsigned char *x = xq;
    switch (rows) {
    case 4: int8_micro(4, x, quads, panel, acc_out); break;
    case 3: int8_micro(3, x, quads, panel, acc_out); break;
    case 2: int8_micro(2, x, quads, panel, acc_out); break;
    default: int8_row(x, quads, panel, acc_out);
    }
}
#else
/* int8: a row as int16 values, padded with zeros to quads (one 64-bit broadcast each). */
static size_t rk_int8_row_bytes(int n_in) { return ((size_t)n_in + 3) / 4 * 4 * sizeof(int16_t); }
#define RK_INT8_PUT(dst, k, q) (((int16_t *)(dst))[k] = (int16_t)(q))
#define RK_INT8_BYTES 2

/* Sums of mr rows against 8 columns (a quarter panel): each weight vector holds 4
 * columns x 4 inputs as int16; vpmaddwd leaves two partial sums per column, which a
 * horizontal add joins at the end. */
FM_INLINE void int8_micro(const int mr, const int16_t *xq, size_t quads, const int8_t *w,
                          int32_t *acc_out) {
    for (int quarter = 0; quarter < 4; quarter++) {
        __m256i acc[RK_GROUP][2];
        for (int r = 0; r < mr; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
        const int8_t *wq = w + quarter * 32;
        for (size_t kq = 0; kq < quads; kq++) {
            __m256i wv[2];
            for (int v = 0; v < 2; v++)
                wv[v] = _mm256_cvtepi8_epi16(
                    _mm_loadu_si128((const __m128i *)(wq + kq * 4 * NR + v * 16)));
            for (int r = 0; r < mr; r++) {
                int64_t quad;
                memcpy(&quad, xq + r * 4 * quads + 4 * kq, sizeof quad);
                const __m256i xv = _mm256_set1_epi64x(quad);
                for (int v = 0; v < 2; v++)
                    acc[r][v] = _mm256_add_epi32(acc[r][v], _mm256_madd_epi16(wv[v], xv));
            }
        }
        for (int r = 0; r < mr; r++) {
            /* [c0 c1 c4 c5 | c2 c3 c6 c7] -> c0 .. c7 */
            const __m256i sums = _mm256_permute4x64_epi64(
                _mm256_hadd_epi32(acc[r][0], acc[r][1]), 0xD8);
            _mm256_storeu_si256((__m256i *)(acc_out + r * NR + quarter * 8), sums);
        }
    }
}

static void rk_int8_panel(const void *xq, size_t rows, int n_in, const unsigned char *panel,
                          int32_t *acc_out) {
    const size_t quads = ((size_t)n_in + 3) / 4;
    const int8_t *w = (const int8_t *)panel + 4 * NR;
    switch (rows) {
    case 4: int8_micro(4, xq, quads, w, acc_out); break;
    case 3: int8_micro(3, xq, quads, w, acc_out); break;
    case 2: int8_micro(2, xq, quads, w, acc_out); break;
    default: int8_micro(1, xq, quads, w, acc_out);
    }
}
#endif
