/* Dense layers with reduced-precision weights (bfloat16, int8) for float32 networks;
 * compiled once per kernel variant (kernels.def), with that variant's micro-kernels
 * (reduced_generic.h, reduced_avx2.h with avx2_vnni's int8, reduced_avx512.h, reduced_amx.h).
 *
 * Each chunk of a tile's rows is first prepared whole (rounded to bfloat16, or quantized
 * to int8 with one scale per row, from the row's own largest magnitude), then every
 * panel of 32 columns runs a micro-kernel over all the inputs, so no partial sum ever
 * leaves its registers or tiles. A row's result depends on that row alone:
 *   bfloat16: each product is exact in float (8-bit by 8-bit significands) and summed in
 *             float, in the order of k. The generic, avx2, avx2_vnni and avx512
 *             variants sum one product at a time (acc = x[k] * w[k] + acc) and agree
 *             bit for bit;
 *             avx512_bf16 (vdpbf16ps) and amx (tdpbf16ps) sum in the hardware's order
 *             and flush subnormals, so their last bits may differ, within the same bound.
 *   int8:     an exact int32 sum of q_x[k] * q_w[k], then z = sum * (s_x * s_w) in
 *             double, rounded to float, + bias (in the same loop): the same bits on every
 *             variant.
 * A row holding NaN or inf cannot be quantized; it is computed from the dequantized
 * weights in float (sequentially), so NaN and inf propagate as in a float network. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bfloat16.h"
#include "fastmlp.h"
#include "isa.h"
#include "kernel_table.h"

#define NR FM_NR_F32
/* Scratch for preparing rows when the caller gives none (small batches). */
#define FM_LOCAL_PREP_BYTES (16 * 1024)

/* Each header defines, for its variant:
 *   RK_GROUP, RK_ROW_QUANTUM  rows per micro-kernel call; prepared rows are padded with
 *                             zero rows to a multiple of RK_ROW_QUANTUM (an AMX tile's 16)
 *   rk_bf16_row_bytes(n_in), rk_bf16_prepare_row(x, n_in, dst)   a row as the kernel reads it
 *   rk_bf16_panel(xp, rows, n_in, w, z, ldz, n_valid)            z of rows x one panel
 *   rk_int8_row_bytes(n_in), RK_INT8_PUT(dst, k, q)              a quantized row's storage
 *   rk_int8_panel(xq, rows, n_in, panel, acc)                    exact sums, rows x NR int32
 *   began = rk_begin(int8, rows), rk_end(began)                  around a layer's call
 *   RK_INT8_PAD_ROWS(n)       optional: the zero rows int8 needs, where not RK_ROW_QUANTUM's */
#if FM_ISA == FM_ISA_GENERIC
#include "reduced_generic.h"
#elif FM_ISA == FM_ISA_AVX2 || FM_ISA == FM_ISA_AVX2_VNNI || FM_ISA == FM_ISA_AVX512
#include "reduced_avx2.h"
#elif FM_ISA == FM_ISA_AVX512_BF16
#include "reduced_avx512.h"
#elif FM_ISA == FM_ISA_AMX
#include "reduced_amx.h"
#else
#error "dense_reduced.c: no reduced-precision micro-kernels for this variant"
#endif

_Static_assert(FM_REDUCED_TILE_QUANTUM % RK_GROUP == 0, "tiles must hold whole groups");

/* -- int8 rows -------------------------------------------------------------------------- */

/* One row quantized into dst (rk_int8_row_bytes): q = round(x * (1 / s)) with
 * s = max|x| / 127 (s = 0 for a zero row); returns s, or NAN when the row is not finite.
 * Both loops vectorize: the magnitudes are compared as integers (for floats of one sign
 * the bit patterns' order is the values', and NaN's lie above inf's), and a product takes
 * the place of a division, which cost as much as the AMX tile multiplies. Every variant
 * runs this same code, so the rows' bits still agree across variants. */
static float quantize_row(const float *x, int n_in, void *dst) {
    uint32_t max_bits = 0;
    for (int k = 0; k < n_in; k++) {
        uint32_t bits;
        memcpy(&bits, x + k, sizeof bits);
        bits &= 0x7fffffffu;
        max_bits = bits > max_bits ? bits : max_bits;
    }
    memset((unsigned char *)dst + n_in * RK_INT8_BYTES, 0,
           rk_int8_row_bytes(n_in) - (size_t)n_in * RK_INT8_BYTES);
    if (max_bits >= 0x7f800000u) return NAN; /* inf or NaN */
    float max;
    memcpy(&max, &max_bits, sizeof max);
    const float s = max / 127.0f, inv = 1.0f / s;
    if (s == 0) { /* a zero row, or one so small that its scale underflows */
        for (int k = 0; k < n_in; k++) RK_INT8_PUT(dst, k, 0);
        return 0;
    }
    if (inv <= 3.4028234663852886e38f) {
#ifdef RK_INT8_QUANTIZE /* the variant's vector loop, then the rest here */
        const int first = rk_int8_quantize(x, n_in, inv, dst);
#else
        const int first = 0;
#endif
        for (int k = first; k < n_in; k++) {
            /* |x inv| <= max fl(1 / fl(max / 127)) (1 + u) < 127 (1 + 4u) < 127.5, so
             * |q| <= 127 already: the clamp below is only a guard */
            const int q = (int)nearbyintf(x[k] * inv);
            RK_INT8_PUT(dst, k, q > 127 ? 127 : q < -127 ? -127 : q);
        }
    } else { /* a subnormal scale, whose reciprocal overflows: divide */
        for (int k = 0; k < n_in; k++) {
            const int q = (int)nearbyintf(x[k] / s);
            RK_INT8_PUT(dst, k, q > 127 ? 127 : q < -127 ? -127 : q);
        }
    }
    return s;
}

/* A row that could not be quantized, from the dequantized weights, in float. */
static void int8_row_in_float(const fm_layer *layer, const float *x, float *z, int first,
                              int end, int relu) {
    const size_t panel = fm_reduced_panel_bytes(FM_PRECISION_INT8, layer->n_in);
    const int8_t *w = layer->packed_weights;
    for (int p = first; p < end; p++)
        for (int c = 0; c < NR && p * NR + c < layer->n_out; c++) {
            const int j = p * NR + c;
            const int8_t *col = w + p * panel + 4 * NR + 4 * c;
            float acc = 0;
            for (int k = 0; k < layer->n_in; k++)
                acc = x[k] * ((float)col[k / 4 * 4 * NR + k % 4] * layer->scales[j]) + acc;
            z[j] = acc + ((const float *)layer->bias)[j];
            if (relu) z[j] = z[j] < 0 ? 0 : z[j];
        }
}

/* -- the layer -------------------------------------------------------------------------- */

/* int8 layers scale their sums, add the bias and apply relu in one loop (relu as
 * activations_impl.h computes it: the same bits). */
static int int8_fuses_relu(const fm_layer *layer, int apply_activation) {
    return layer->precision == FM_PRECISION_INT8 && apply_activation &&
           layer->activation.kind == FM_RELU;
}

/* The bias (unless the int8 sums were scaled with it already), then the activation (unless
 * fused there too); relu in the bias's loop, as the int8 one is. */
static void epilogue(const fm_layer *layer, float *out, size_t ldo, size_t rows, int first,
                     int end, int apply_activation) {
    const float *bias = layer->bias;
    const int first_col = first * NR, end_col = end * NR < layer->n_out ? end * NR : layer->n_out;
    const int kind = layer->activation.kind;
    const int relu = apply_activation && kind == FM_RELU;
    if (layer->precision != FM_PRECISION_INT8) {
        for (size_t r = 0; r < rows; r++) {
            float *z = out + r * ldo;
            if (relu)
                for (int j = first_col; j < end_col; j++) {
                    const float v = z[j] + bias[j];
                    z[j] = v < 0 ? 0 : v;
                }
            else
                for (int j = first_col; j < end_col; j++) z[j] = z[j] + bias[j];
        }
    }
    if (!apply_activation || kind == FM_IDENTITY || relu) return;
    /* Softmax needs whole rows: the caller runs it once every column is done. */
    if (fm_activation_needs_whole_rows(kind) && !(first == 0 && end_col == layer->n_out))
        return;
    fm_activation act = layer->activation;
    if (act.vec) act.vec = (const float *)act.vec + first_col;
    FM_SYM(fm_activate_f32)(act, out + first_col, rows, (size_t)(end_col - first_col), ldo);
}

static void bf16_chunk(const fm_layer *layer, const float *x, size_t ldx, size_t n,
                       float *out, size_t ldo, int first_panel, int end_panel, void *work) {
    const int n_in = layer->n_in, n_out = layer->n_out;
    const size_t row_bytes = rk_bf16_row_bytes(n_in);
    const size_t padded = (n + RK_ROW_QUANTUM - 1) / RK_ROW_QUANTUM * RK_ROW_QUANTUM;
    unsigned char *prepared = work;
    for (size_t r = 0; r < n; r++) rk_bf16_prepare_row(x + r * ldx, n_in, prepared + r * row_bytes);
    memset(prepared + n * row_bytes, 0, (padded - n) * row_bytes);
    const size_t panel = fm_reduced_panel_bytes(FM_PRECISION_BF16, n_in);
#ifdef RK_BF16_PANELS /* the variant orders the panels' work itself */
    rk_bf16_panels(prepared, n, n_in, layer->packed_weights, panel, n_out, out, ldo,
                   first_panel, end_panel);
#else
    for (int p = first_panel; p < end_panel; p++) {
        const int n_valid = n_out - p * NR < NR ? n_out - p * NR : NR;
        const uint16_t *wp =
            (const uint16_t *)((const unsigned char *)layer->packed_weights + p * panel);
        for (size_t i = 0; i < n; i += RK_GROUP) {
            const size_t mr = n - i < RK_GROUP ? n - i : RK_GROUP;
            rk_bf16_panel(prepared + i * row_bytes, mr, n_in, wp, out + i * ldo + p * NR, ldo,
                          n_valid);
        }
    }
#endif
}

/* work holds `capacity` rows: the quantized rows, then their scales. */
static void int8_chunk(const fm_layer *layer, const float *x, size_t ldx, size_t n,
                       float *out, size_t ldo, int first_panel, int end_panel, void *work,
                       size_t capacity, int relu) {
    const int n_in = layer->n_in, n_out = layer->n_out;
    const size_t row_bytes = rk_int8_row_bytes(n_in);
#ifdef RK_INT8_PAD_ROWS
    const size_t padded = RK_INT8_PAD_ROWS(n);
#else
    const size_t padded = (n + RK_ROW_QUANTUM - 1) / RK_ROW_QUANTUM * RK_ROW_QUANTUM;
#endif
    unsigned char *quantized = work;
    float *scale = (float *)(quantized + capacity * row_bytes);
    for (size_t r = 0; r < n; r++)
        scale[r] = quantize_row(x + r * ldx, n_in, quantized + r * row_bytes);
    memset(quantized + n * row_bytes, 0, (padded - n) * row_bytes);
    const size_t panel = fm_reduced_panel_bytes(FM_PRECISION_INT8, n_in);
    for (int p = first_panel; p < end_panel; p++) {
        const int n_valid = n_out - p * NR < NR ? n_out - p * NR : NR;
        const unsigned char *wp = (const unsigned char *)layer->packed_weights + p * panel;
        const float *sw = layer->scales + p * NR, *bias = (const float *)layer->bias + p * NR;
        for (size_t i = 0; i < n; i += RK_GROUP) {
            const size_t mr = n - i < RK_GROUP ? n - i : RK_GROUP;
            int32_t acc[RK_GROUP * NR];
            rk_int8_panel(quantized + i * row_bytes, mr, n_in, wp, acc);
            for (size_t r = 0; r < mr; r++) {
                float *z = out + (i + r) * ldo + p * NR;
                const double sx = scale[i + r];
                /* in double: sx * sw is exact there, and a huge row scale times its sum
                 * cannot overflow before the small column scale applies */
                if (relu)
                    for (int j = 0; j < n_valid; j++) {
                        const float v =
                            (float)((double)acc[r * NR + j] * (sx * (double)sw[j])) + bias[j];
                        z[j] = v < 0 ? 0 : v;
                    }
                else
                    for (int j = 0; j < n_valid; j++)
                        z[j] = (float)((double)acc[r * NR + j] * (sx * (double)sw[j])) + bias[j];
            }
        }
    }
    for (size_t r = 0; r < n; r++)
        if (scale[r] != scale[r])
            int8_row_in_float(layer, x + r * ldx, out + r * ldo, first_panel, end_panel, relu);
}

void FM_SYM(fm_dense_reduced_cols)(const fm_layer *layer, const float *x, size_t ldx,
                                   size_t rows, float *out, size_t ldo, int apply_activation,
                                   int first_panel, int end_panel, float *apack) {
    const int int8 = layer->precision == FM_PRECISION_INT8;
    /* Bytes one prepared row takes, with the row's scale for int8. */
    const size_t row_bytes = int8 ? rk_int8_row_bytes(layer->n_in) + sizeof(float)
                                  : rk_bf16_row_bytes(layer->n_in);
    _Alignas(FM_ALIGN) unsigned char local[FM_LOCAL_PREP_BYTES];
    unsigned char *work = local;
    size_t capacity = sizeof local / row_bytes;
    if (apack) { /* the caller's packing area, for a tile of at least these rows */
        const size_t fits = fm_pack_area_elems(rows, FM_MR, fm_reduced_area_k(layer->n_in)) *
                            sizeof(float) / row_bytes;
        if (fits > capacity) work = (unsigned char *)apack, capacity = fits;
    }
    /* whole groups where it can, else whole quanta (padding rows must fit) */
    capacity = capacity >= RK_GROUP ? capacity / RK_GROUP * RK_GROUP
                                    : capacity / RK_ROW_QUANTUM * RK_ROW_QUANTUM;
    if (capacity < RK_ROW_QUANTUM) { /* very wide inputs and no room: on the heap */
        capacity = RK_ROW_QUANTUM;
        work = fm_aligned_alloc(capacity * row_bytes);
        if (!work) abort(); /* a few rows: the process is out of memory */
    }
    const int began = rk_begin(int8, rows);
    for (size_t r0 = 0; r0 < rows; r0 += capacity) {
        const size_t n = rows - r0 < capacity ? rows - r0 : capacity;
        const float *xc = x + r0 * ldx;
        float *oc = out + r0 * ldo;
        if (int8)
            int8_chunk(layer, xc, ldx, n, oc, ldo, first_panel, end_panel, work, capacity,
                       int8_fuses_relu(layer, apply_activation));
        else
            bf16_chunk(layer, xc, ldx, n, oc, ldo, first_panel, end_panel, work);
        epilogue(layer, oc, ldo, n, first_panel, end_panel, apply_activation);
    }
    rk_end(began);
    if (work != local && work != (unsigned char *)apack) fm_aligned_free(work);
}
