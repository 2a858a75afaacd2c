/* Dense layers with reduced-precision weights (bfloat16, int8) for float32 networks;
 * compiled once per kernel variant (kernels.def).
 *
 * Each chunk of a tile's rows is first prepared whole (rounded to bfloat16, or quantized
 * to int8 with one scale per row, from the row's own largest magnitude), then every
 * panel of 32 columns runs a micro-kernel over all the inputs, so no partial sum ever
 * leaves its register. The order of every sum is fixed and independent of the rows
 * around it:
 *   bfloat16: acc = 0; acc = x[k] * w[k] + acc for k = 0 .. n_in-1 (each product exact
 *             in float: 8-bit by 8-bit significands), then + bias. Every variant here
 *             computes exactly this, so all give the same bits.
 *   int8:     an exact int32 sum of q_x[k] * q_w[k], then z = sum * (s_x * s_w) in
 *             double, rounded to float, + bias: the same bits on every variant.
 * A row holding NaN or inf cannot be quantized; it is computed from the dequantized
 * weights in float (sequentially), so NaN and inf propagate as in a float network. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fastmlp.h"
#include "isa.h"
#include "kernel_table.h"

#if FM_ISA != FM_ISA_GENERIC
#include <immintrin.h>
#define FM_REDUCED_AVX2 1 /* the avx2 and avx512 rows both have AVX2 */
#endif

#define NR FM_NR_F32
/* Rows per micro-tile of the reduced kernels. */
#define QMR 4
/* Scratch for preparing rows when the caller gives none (small batches). */
#define FM_LOCAL_PREP_BYTES (16 * 1024)

static size_t pairs_of(int n_in) { return ((size_t)n_in + 1) / 2; }

/* -- bfloat16 --------------------------------------------------------------------------- */

/* x rounded to the nearest bfloat16 (ties to even), as a float; NaN stays NaN. */
static inline float round_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return x; /* NaN: keep it (and quiet) */
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&x, &u, sizeof u);
    return x;
}

#if !FM_REDUCED_AVX2
static inline float bf16_value(uint16_t bits) {
    uint32_t u = (uint32_t)bits << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
#endif

/* Rows of x rounded to bfloat16, padded with a zero input to an even count. */
static void prepare_bf16(const float *x, size_t ldx, size_t rows, int n_in, float *dst) {
    const size_t width = 2 * pairs_of(n_in);
    for (size_t r = 0; r < rows; r++) {
        for (int k = 0; k < n_in; k++) dst[r * width + k] = round_bf16(x[r * ldx + k]);
        if ((size_t)n_in < width) dst[r * width + n_in] = 0;
    }
}

#if FM_REDUCED_AVX2
/* z for mr prepared rows (row stride `width`) and all 32 columns of one panel. */
FM_INLINE void micro_bf16_avx2(const int mr, const float *xp, size_t width, const uint16_t *w,
                               size_t pairs, float *z, size_t ldz) {
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    for (int half = 0; half < 2; half++) { /* 16 columns at a time */
        __m256 acc[QMR][2];
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
#endif

/* z for `mr` prepared rows (row stride `width`) and one panel (its n_valid columns). */
static void micro_bf16(int mr, const float *xp, size_t width, const uint16_t *w, size_t pairs,
                       float *z, size_t ldz, int n_valid) {
#if FM_REDUCED_AVX2
    float full[QMR * NR];
    float *dst = n_valid == NR ? z : full;
    const size_t ld = n_valid == NR ? ldz : NR;
    switch (mr) {
    case 4: micro_bf16_avx2(4, xp, width, w, pairs, dst, ld); break;
    case 3: micro_bf16_avx2(3, xp, width, w, pairs, dst, ld); break;
    case 2: micro_bf16_avx2(2, xp, width, w, pairs, dst, ld); break;
    default: micro_bf16_avx2(1, xp, width, w, pairs, dst, ld);
    }
    if (dst == full)
        for (int r = 0; r < mr; r++) memcpy(z + r * ldz, full + r * NR, n_valid * sizeof(float));
#else
    for (int r = 0; r < mr; r++) {
        float acc[NR] = {0};
        const float *xr = xp + r * width;
        for (size_t kk = 0; kk < pairs; kk++) {
            const uint16_t *wk = w + kk * 2 * NR;
            for (int j = 0; j < NR; j++) acc[j] = xr[2 * kk] * bf16_value(wk[2 * j]) + acc[j];
            for (int j = 0; j < NR; j++)
                acc[j] = xr[2 * kk + 1] * bf16_value(wk[2 * j + 1]) + acc[j];
        }
        for (int j = 0; j < n_valid; j++) z[r * ldz + j] = acc[j];
    }
#endif
}

/* -- int8 ------------------------------------------------------------------------------- */

/* One row quantized: q = round(x / s) with s = max|x| / 127 (s = 0 for a zero row), the
 * pairs of q as 32-bit words; returns s, or NAN when the row is not finite. */
static float quantize_row(const float *x, int n_in, int32_t *dst) {
    float max = 0;
    for (int k = 0; k < n_in; k++) {
        const float a = fabsf(x[k]);
        max = a > max || a != a ? a : max;
    }
    if (!(max <= 3.4028234663852886e38f)) return NAN; /* inf or NaN */
    const float s = max / 127.0f;
    for (int k = 0; k < n_in; k += 2) {
        int32_t q[2] = {0, 0};
        for (int h = 0; h < 2 && k + h < n_in; h++) {
            float v = s > 0 ? nearbyintf(x[k + h] / s) : 0.0f;
            q[h] = (int32_t)(v > 127 ? 127 : v < -127 ? -127 : v);
        }
        /* the pair as one word, k even in the low half (what vpmaddwd reads) */
        dst[k / 2] = (int32_t)(((uint32_t)q[1] << 16) | ((uint32_t)q[0] & 0xffffu));
    }
    return s;
}

#if FM_REDUCED_AVX2
FM_INLINE void micro_int8_avx2(const int mr, const int32_t *xq, size_t pairs, const int8_t *w,
                               int32_t *acc_out) {
    for (int half = 0; half < 2; half++) {
        __m256i acc[QMR][2];
        for (int r = 0; r < mr; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
        const int8_t *wh = w + half * 32;
        for (size_t kk = 0; kk < pairs; kk++) {
            __m256i wv[2];
            for (int v = 0; v < 2; v++) /* 8 columns x (k even, k odd), as int16 */
                wv[v] = _mm256_cvtepi8_epi16(
                    _mm_loadu_si128((const __m128i *)(wh + kk * 2 * NR + v * 16)));
            for (int r = 0; r < mr; r++) {
                const __m256i xv = _mm256_set1_epi32(xq[r * pairs + kk]);
                /* vpmaddwd: two exact int16 products per lane, summed in int32 */
                for (int v = 0; v < 2; v++)
                    acc[r][v] = _mm256_add_epi32(acc[r][v], _mm256_madd_epi16(wv[v], xv));
            }
        }
        for (int r = 0; r < mr; r++)
            for (int v = 0; v < 2; v++)
                _mm256_storeu_si256((__m256i *)(acc_out + r * NR + half * 16 + v * 8), acc[r][v]);
    }
}
#endif

/* Exact int32 sums of mr quantized rows against all 32 columns of one panel. */
static void micro_int8(int mr, const int32_t *xq, size_t pairs, const int8_t *w, int32_t *acc_out) {
#if FM_REDUCED_AVX2
    switch (mr) {
    case 4: micro_int8_avx2(4, xq, pairs, w, acc_out); break;
    case 3: micro_int8_avx2(3, xq, pairs, w, acc_out); break;
    case 2: micro_int8_avx2(2, xq, pairs, w, acc_out); break;
    default: micro_int8_avx2(1, xq, pairs, w, acc_out);
    }
#else
    for (int r = 0; r < mr; r++) {
        int32_t acc[NR] = {0};
        for (size_t kk = 0; kk < pairs; kk++) {
            const uint32_t pair = (uint32_t)xq[r * pairs + kk];
            const int32_t even = (int16_t)(pair & 0xffffu), odd = (int16_t)(pair >> 16);
            const int8_t *wk = w + kk * 2 * NR;
            for (int j = 0; j < NR; j++) acc[j] += even * wk[2 * j] + odd * wk[2 * j + 1];
        }
        memcpy(acc_out + r * NR, acc, sizeof acc);
    }
#endif
}

/* A row that could not be quantized, from the dequantized weights, in float. */
static void int8_row_in_float(const fm_layer *layer, const float *x, float *z, int first,
                              int end) {
    const size_t pairs = pairs_of(layer->n_in);
    const int8_t *w = layer->packed_weights;
    for (int p = first; p < end; p++)
        for (int c = 0; c < NR && p * NR + c < layer->n_out; c++) {
            const int j = p * NR + c;
            float acc = 0;
            for (int k = 0; k < layer->n_in; k++)
                acc = x[k] * ((float)w[p * pairs * 2 * NR + (k / 2) * 2 * NR + 2 * c + k % 2] *
                              layer->scales[j]) + acc;
            z[j] = acc;
        }
}

/* -- the layer -------------------------------------------------------------------------- */

static void epilogue(const fm_layer *layer, float *out, size_t ldo, size_t rows, int first,
                     int end, int apply_activation) {
    const float *bias = layer->bias;
    const int first_col = first * NR, end_col = end * NR < layer->n_out ? end * NR : layer->n_out;
    for (size_t r = 0; r < rows; r++)
        for (int j = first_col; j < end_col; j++) out[r * ldo + j] = out[r * ldo + j] + bias[j];
    const int kind = layer->activation.kind;
    if (!apply_activation || kind == FM_IDENTITY) return;
    /* Softmax needs whole rows: the caller runs it once every column is done. */
    if (fm_activation_needs_whole_rows(kind) && !(first == 0 && end_col == layer->n_out))
        return;
    fm_activation act = layer->activation;
    if (act.vec) act.vec = (const float *)act.vec + first_col;
    FM_SYM(fm_activate_f32)(act, out + first_col, rows, (size_t)(end_col - first_col), ldo);
}

void FM_SYM(fm_dense_reduced_cols)(const fm_layer *layer, const float *x, size_t ldx,
                                   size_t rows, float *out, size_t ldo, int apply_activation,
                                   int first_panel, int end_panel, float *apack) {
    const int n_in = layer->n_in, n_out = layer->n_out;
    const size_t pairs = pairs_of(n_in);
    const int int8 = layer->precision == FM_PRECISION_INT8;
    /* Bytes one prepared row takes: floats, or int16 pairs plus the row's scale. */
    const size_t row_bytes = int8 ? pairs * 4 + sizeof(float) : pairs * 2 * sizeof(float);
    _Alignas(FM_ALIGN) unsigned char local[FM_LOCAL_PREP_BYTES];
    unsigned char *work = local;
    size_t capacity = sizeof local;
    if (apack) { /* the caller's packing area, for a tile of at least these rows */
        work = (unsigned char *)apack;
        capacity = fm_pack_area_elems(rows, FM_MR, FM_KC) * sizeof(float);
    }
    size_t chunk = capacity / row_bytes;
    chunk = chunk > QMR ? chunk / QMR * QMR : chunk;
    if (chunk == 0) { /* very wide inputs and no room: one row at a time, on the heap */
        work = malloc(row_bytes);
        chunk = 1;
        if (!work) abort(); /* a few KiB: the process is out of memory */
    }
    for (size_t r0 = 0; r0 < rows; r0 += chunk) {
        const size_t n = rows - r0 < chunk ? rows - r0 : chunk;
        const float *xc = x + r0 * ldx;
        float *oc = out + r0 * ldo;
        if (!int8) {
            float *prepared = (float *)work;
            prepare_bf16(xc, ldx, n, n_in, prepared);
            for (int p = first_panel; p < end_panel; p++) {
                const int n_valid = n_out - p * NR < NR ? n_out - p * NR : NR;
                const uint16_t *wp = (const uint16_t *)layer->packed_weights + p * pairs * 2 * NR;
                for (size_t i = 0; i < n; i += QMR) {
                    const int mr = n - i < QMR ? (int)(n - i) : QMR;
                    micro_bf16(mr, prepared + i * 2 * pairs, 2 * pairs, wp, pairs,
                               oc + i * ldo + p * NR, ldo, n_valid);
                }
            }
        } else {
            int32_t *quantized = (int32_t *)work;
            float *scale = (float *)(work + n * pairs * 4);
            for (size_t r = 0; r < n; r++) scale[r] = quantize_row(xc + r * ldx, n_in, quantized + r * pairs);
            for (int p = first_panel; p < end_panel; p++) {
                const int n_valid = n_out - p * NR < NR ? n_out - p * NR : NR;
                const int8_t *wp = (const int8_t *)layer->packed_weights + p * pairs * 2 * NR;
                const float *sw = layer->scales + p * NR;
                for (size_t i = 0; i < n; i += QMR) {
                    const int mr = n - i < QMR ? (int)(n - i) : QMR;
                    int32_t acc[QMR * NR];
                    micro_int8(mr, quantized + i * pairs, pairs, wp, acc);
                    for (int r = 0; r < mr; r++) {
                        float *z = oc + (i + r) * ldo + p * NR;
                        const double sx = scale[i + r];
                        /* in double: sx * sw is exact there, and a huge row scale times
                         * its sum cannot overflow before the small column scale applies */
                        for (int j = 0; j < n_valid; j++)
                            z[j] = (float)((double)acc[r * NR + j] * (sx * (double)sw[j]));
                    }
                }
            }
            for (size_t r = 0; r < n; r++)
                if (scale[r] != scale[r])
                    int8_row_in_float(layer, xc + r * ldx, oc + r * ldo, first_panel, end_panel);
        }
        epilogue(layer, oc, ldo, n, first_panel, end_panel, apply_activation);
    }
    if (work != local && work != (unsigned char *)apack) free(work);
}
