/* The dense layer out = f(x W + b) over packed weights, written once for REAL.
 * Included by dense.c after vec.h, with REAL and SFX (f32/f64) defined.
 *
 * Every output element is summed in one fixed order, acc = 0, then
 * acc = x[k] * w[k] + acc for k = 0 .. n_in-1 (fused on the AVX paths), then
 * + bias, whatever the number of rows, their position or the blocking, so a
 * row's result never depends on the batch it came in. */

#define NR ((int)(FM_PANEL_BYTES / sizeof(REAL)))
/* Inputs per block: a block of one panel (KC x 128 bytes) stays in L1 while
 * every row tile streams past it. */
#define KC FM_KC
/* Columns of a micro-tile: the whole panel for the scalar kernel; two vectors for the
 * others, so that FM_MR rows of sums, two vectors of weights and a broadcast fit the
 * registers: the whole panel on AVX-512 (8 x 2 + 3 of 32), half of it on AVX2 (6 x 2 + 3
 * of 16; 3 rows of the whole panel needed 17, and one weight vector was loaded again for
 * every row). A panel is then one or more micro-tiles wide. */
#ifdef FM_SCALAR_KERNEL
#define MC NR
#else
#define MV 2 /* vectors */
#define MC (MV * VL)
#endif

#ifndef FM_REG_ACT_DEFINED
#define FM_REG_ACT_DEFINED
/* In-register epilogue: which activations are cheap enough to fuse. */
enum { REG_NONE = 0, REG_RELU = 1, REG_LEAKY = 2 };
#endif

#ifdef FM_SCALAR_KERNEL

FM_INLINE void FM_CAT(micro_, SFX)(const int mr, const REAL *FM_RESTRICT x, size_t rs, size_t ks,
                                   const REAL *FM_RESTRICT w, int kc, REAL *FM_RESTRICT c,
                                   size_t ldc, int n_valid, int accumulate,
                                   const REAL *FM_RESTRICT bias, int reg_act, REAL slope,
                                   const char *prefetch) {
    REAL acc[FM_MR][NR];
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < NR; j++) acc[r][j] = (accumulate && j < n_valid) ? c[r * ldc + j] : 0;
    for (int k = 0; k < kc; k++) {
        if (prefetch) FM_PREFETCH_L2(prefetch + (size_t)k * FM_ALIGN);
        const REAL *wk = w + (size_t)k * NR;
        for (int r = 0; r < mr; r++) {
            const REAL xr = x[r * rs + k * ks];
            for (int j = 0; j < NR; j++) acc[r][j] += xr * wk[j];
        }
    }
    for (int r = 0; r < mr; r++) {
        for (int j = 0; j < n_valid; j++) {
            REAL z = acc[r][j];
            if (bias) {
                z += bias[j];
                if (reg_act == REG_RELU) z = z < 0 ? 0 : z;
                else if (reg_act == REG_LEAKY) z = z > 0 ? z : slope * z;
            }
            c[r * ldc + j] = z;
        }
    }
}

#else

/* The micro-kernel of MC columns (micro_), and of a whole panel (micro_panel_, for a short
 * last micro-tile and the one-row path's last panel): one body, each copy with
 * accumulators of its exact size (a copy of MC columns whose arrays had room for a whole
 * panel ran the packed rows at half speed, GCC 12). */
#define MICRO_NAME FM_CAT(micro_, SFX)
#define MICRO_NV MV
#include "dense_micro.h"
#define MICRO_NAME FM_CAT(micro_panel_, SFX)
#define MICRO_NV (NR / VL)
#include "dense_micro.h"

/* One row against n_panels full, adjacent panels at once: enough independent
 * accumulators to hide the FMA latency when there is a single row. Same sums,
 * so the same bits, as micro_ with one row. */
FM_INLINE void FM_CAT(gemv_group_, SFX)(const int n_panels, const REAL *FM_RESTRICT x,
                                        const REAL *FM_RESTRICT w, size_t panel_stride, int kc,
                                        REAL *FM_RESTRICT c, int accumulate,
                                        const REAL *FM_RESTRICT bias, int reg_act, REAL slope) {
    enum { NV = FM_PANEL_BYTES / sizeof(REAL) / VL };
    V acc[FM_GEMV_PANELS][NV];
    for (int p = 0; p < n_panels; p++)
        for (int v = 0; v < NV; v++)
            acc[p][v] = accumulate ? V_LOADU(c + p * NR + v * VL) : V_ZERO();
    for (int k = 0; k < kc; k++) {
        const V xk = V_SET1(x[k]);
        for (int p = 0; p < n_panels; p++)
            for (int v = 0; v < NV; v++)
                acc[p][v] = V_FMA(xk, V_LOAD(w + p * panel_stride + (size_t)k * NR + v * VL), acc[p][v]);
    }
    const V vslope = V_SET1(slope);
    for (int p = 0; p < n_panels; p++)
        for (int v = 0; v < NV; v++) {
            V z = acc[p][v];
            if (bias) {
                z = V_ADD(z, V_LOADU(bias + p * NR + v * VL));
                if (reg_act == REG_RELU) z = V_RELU(z);
                else if (reg_act == REG_LEAKY) z = V_LEAKY(z, vslope);
            }
            V_STOREU(c + p * NR + v * VL, z);
        }
}
#endif

/* Rows i .. i+mr of one micro-tile's columns (MC of them); mr is made a constant so the
 * accumulators live in registers. */
static void FM_CAT(micro_rows_, SFX)(int mr, const REAL *x, size_t rs, size_t ks, const REAL *w,
                                     int kc,
                                     REAL *c, size_t ldc, int n_valid, int accumulate,
                                     const REAL *bias, int reg_act, REAL slope,
                                     const char *prefetch) {
#define FM_MICRO_CASE(m)                                                                   \
    case m:                                                                                \
        FM_CAT(micro_, SFX)(m, x, rs, ks, w, kc, c, ldc, n_valid, accumulate, bias, reg_act,    \
                            slope, prefetch);                                                  \
        break;
    switch (mr) {
#if FM_MR >= 8
        FM_MICRO_CASE(8)
        FM_MICRO_CASE(7)
#endif
#if FM_MR >= 6
        FM_MICRO_CASE(6)
        FM_MICRO_CASE(5)
        FM_MICRO_CASE(4)
#endif
#if FM_MR >= 3
        FM_MICRO_CASE(3)
#endif
        FM_MICRO_CASE(2)
    default:
        FM_CAT(micro_, SFX)(1, x, rs, ks, w, kc, c, ldc, n_valid, accumulate, bias, reg_act, slope,
                            prefetch);
    }
#undef FM_MICRO_CASE
}

#if !defined(FM_SCALAR_KERNEL)
/* A short last micro-tile (at most FM_MR / 2 rows) over the whole panel at once, where a
 * micro-tile is half a panel: 2 rows of 2 vectors keep only 4 chains of FMAs going, too few
 * for the FMAs' latency; of 4 vectors, 8. Same sums, same bits. Batches of 32 rows end so. */
static void FM_CAT(micro_tail_, SFX)(int mr, const REAL *x, size_t rs, size_t ks, const REAL *w,
                                     int kc, REAL *c, size_t ldc, int n_valid, int accumulate,
                                     const REAL *bias, int reg_act, REAL slope) {
    if (mr >= 3)
        FM_CAT(micro_panel_, SFX)(3, x, rs, ks, w, kc, c, ldc, n_valid, accumulate, bias,
                                  reg_act, slope, NULL);
    else if (mr == 2)
        FM_CAT(micro_panel_, SFX)(2, x, rs, ks, w, kc, c, ldc, n_valid, accumulate, bias,
                                  reg_act, slope, NULL);
    else
        FM_CAT(micro_panel_, SFX)(1, x, rs, ks, w, kc, c, ldc, n_valid, accumulate, bias,
                                  reg_act, slope, NULL);
}
#endif

#ifndef FM_SCALAR_KERNEL
/* A single row over panels [first, end): groups of full panels through
 * gemv_group, the rest one panel at a time. */
static void FM_CAT(gemv_block_, SFX)(const REAL *x, const REAL *w, size_t panel_stride, int kc,
                                     int n_out, int first, int end, REAL *c, int accumulate,
                                     const REAL *bias, int reg_act, REAL slope) {
    const int full_end = n_out / NR < end ? n_out / NR : end;
    int p = first;
    for (; p + FM_GEMV_PANELS <= full_end; p += FM_GEMV_PANELS)
        FM_CAT(gemv_group_, SFX)(FM_GEMV_PANELS, x, w + p * panel_stride, panel_stride, kc,
                                 c + p * NR, accumulate, bias ? bias + p * NR : NULL, reg_act,
                                 slope);
    for (; p < end; p++) {
        const int n_valid = n_out - p * NR < NR ? n_out - p * NR : NR;
        FM_CAT(micro_panel_, SFX)(1, x, 0, 1, w + p * panel_stride, kc, c + p * NR, 0, n_valid,
                                  accumulate, bias ? bias + p * NR : NULL, reg_act, slope, NULL);
    }
}
#endif

#if !defined(FM_SCALAR_KERNEL) && FM_NARROW > 0
/* Outputs [0, nj) of w (one panel, offset to the first of them, at input kb) for VL rows
 * whose inputs kb .. kb+kc are in xt, input-major (xt[k * VL + lane]): each lane holds a row
 * and each output one vector, so a narrow layer wastes no lane on panel padding. The sums
 * are micro_'s (0, then x[k] * w[k] + acc for k in order, + bias on the last block, the
 * in-register activation), and so are the bits. acc carries the sums between blocks. */
FM_INLINE void FM_CAT(narrow_chunk_, SFX)(const int nj, const REAL *FM_RESTRICT xt, int kc,
                                          const REAL *FM_RESTRICT w, V *FM_RESTRICT acc) {
    V a[FM_NARROW];
    for (int j = 0; j < nj; j++) a[j] = acc[j];
    for (int k = 0; k < kc; k++) {
        const V xk = V_LOAD(xt + (size_t)k * VL);
        const REAL *wk = w + (size_t)k * NR;
        for (int j = 0; j < nj; j++) a[j] = V_FMA(xk, V_SET1(wk[j]), a[j]);
    }
    for (int j = 0; j < nj; j++) acc[j] = a[j];
}

static void FM_CAT(narrow_chunk_rows_, SFX)(int nj, const REAL *xt, int kc, const REAL *w,
                                            V *acc) {
#define FM_NARROW_CASE(n)                                          \
    case n:                                                        \
        FM_CAT(narrow_chunk_, SFX)(n, xt, kc, w, acc);             \
        break;
    switch (nj) {
#if FM_NARROW >= 16
        FM_NARROW_CASE(16)
        FM_NARROW_CASE(15)
        FM_NARROW_CASE(14)
        FM_NARROW_CASE(13)
#endif
#if FM_NARROW >= 12
        FM_NARROW_CASE(12)
        FM_NARROW_CASE(11)
        FM_NARROW_CASE(10)
        FM_NARROW_CASE(9)
        FM_NARROW_CASE(8)
        FM_NARROW_CASE(7)
        FM_NARROW_CASE(6)
        FM_NARROW_CASE(5)
#endif
        FM_NARROW_CASE(4)
        FM_NARROW_CASE(3)
        FM_NARROW_CASE(2)
    default:
        FM_CAT(narrow_chunk_, SFX)(1, xt, kc, w, acc);
    }
#undef FM_NARROW_CASE
}

/* Inputs kb .. kb+kc of `valid` rows into xt, input-major; lanes past them repeat the last
 * row (computed, never stored). Where the ISA has no in-register transpose: one gather per
 * input up to 32 inputs (over 16384 rows, one thread: 4->2 88 us against 192 us with
 * copies), plain copies beyond (with gathers, 128->10 took 5.8 ms against 1.4 ms). AVX-512
 * (two-vector permutes) transposes in registers from 8 inputs on (Sapphire Rapids, float32,
 * 16384 rows, one thread, against gathers: 32->8 205 -> 157 us, 12->3 76 -> 68; 3->10
 * stays with gathers, 52 us against 63; 64-128-128-10 at 1024 rows: 378 -> 322 us with the
 * stores below, 1.04x the panels). AVX2 transposes from one input on: AMD Zen 3's gathers
 * are slow (float32, 240 rows, one layer, against gathers: 3->10 1.42x, 5->10 1.24x, 6->12
 * 1.43x; against copies: 128->10 1.73x, 32->8 2.55x, 256->1 1.92x). Gathers take 32-bit
 * element offsets. */
#if defined(V_PERMUTE2)
#define FM_NARROW_TRANSPOSES 1
#define FM_NARROW_GATHER_INPUTS 7
#elif defined(V_SWAP_LOWER)
#define FM_NARROW_TRANSPOSES 1
#define FM_NARROW_GATHER_INPUTS 0
#else
#define FM_NARROW_TRANSPOSES 0
#define FM_NARROW_GATHER_INPUTS 32
#endif
#if FM_NARROW_TRANSPOSES
/* One round of an in-register transpose of VL vectors: rows i and i + h (i & h == 0) swap
 * the off-diagonal h-lane halves of each 2h-lane block (lane L of row i keeps L where
 * L & h == 0 and takes lane L - h of row i + h elsewhere). */
FM_INLINE void FM_CAT(transpose_round_, SFX)(V *r, const int h) {
#if defined(V_SWAP_LOWER) /* AVX2: shuffles and blends for each h */
#define FM_LOWER(a, b) V_SWAP_LOWER(a, b, h)
#define FM_UPPER(a, b) V_SWAP_UPPER(a, b, h)
#else /* AVX-512: a two-vector permute by lane indices into a, then b (>= VL) */
    int keep[VL], take[VL];
    for (int lane = 0; lane < VL; lane++) {
        const int low = (lane & h) == 0;
        keep[lane] = low ? lane : VL + lane - h;
        take[lane] = low ? lane + h : VL + lane;
    }
    const VPERM lower = V_PERM_INDEX(keep), upper = V_PERM_INDEX(take);
#define FM_LOWER(a, b) V_PERMUTE2(a, lower, b)
#define FM_UPPER(a, b) V_PERMUTE2(a, upper, b)
#endif
    for (int i = 0; i < VL; i++)
        if ((i & h) == 0) {
            const V a = r[i], b = r[i + h];
            r[i] = FM_LOWER(a, b);
            r[i + h] = FM_UPPER(a, b);
        }
#undef FM_LOWER
#undef FM_UPPER
}

/* r[i] lane L <-> r[L] lane i. */
FM_INLINE void FM_CAT(transpose_square_, SFX)(V *r) {
    if (VL >= 16) FM_CAT(transpose_round_, SFX)(r, 8);
    if (VL >= 8) FM_CAT(transpose_round_, SFX)(r, 4);
    FM_CAT(transpose_round_, SFX)(r, 2);
    FM_CAT(transpose_round_, SFX)(r, 1);
}
_Static_assert(KC / 8 % VL == 0, "narrow_transpose_ stores whole squares of inputs, also in "
                                  "narrow_few_layer_'s slots of KC / 8");

/* The same rows' inputs 0 .. kc, a square of VL rows by VL inputs at a time, transposed in
 * registers in log2(VL) rounds of two-vector permutes (AVX-512: 0.25 permutes an element for
 * VL 16) or of shuffles and blends (AVX2: 0.375 an element for VL 8), against a load and a
 * store for copies. */
static void FM_CAT(narrow_transpose_, SFX)(const REAL *FM_RESTRICT x, size_t ldx, int valid,
                                           int kc, REAL *FM_RESTRICT xt) {
    for (int k0 = 0; k0 < kc; k0 += VL) {
        const int kn = kc - k0 < VL ? kc - k0 : VL;
        V r[VL];
        for (int i = 0; i < VL; i++) {
            const REAL *row = x + (size_t)(i < valid ? i : valid - 1) * ldx + k0;
            r[i] = kn == VL ? V_LOADU(row) : V_MLOAD(row, V_MASK(kn));
        }
        FM_CAT(transpose_square_, SFX)(r);
        /* All VL, past kc too: xt holds KC (a multiple of VL) inputs, and a store of a
         * variable count would go through memory. */
        for (int k = 0; k < VL; k++) V_STOREU(xt + (size_t)(k0 + k) * VL, r[k]);
    }
}
#endif

static void FM_CAT(narrow_pack_, SFX)(const REAL *FM_RESTRICT x, size_t ldx, int valid, int kc,
                                      REAL *FM_RESTRICT xt) {
    if (kc <= FM_NARROW_GATHER_INPUTS && ldx <= (size_t)INT_MAX / VL) {
        const VIDX rows_at = V_ROW_INDEX((int)ldx, valid - 1);
        for (int k = 0; k < kc; k++) V_STOREU(xt + (size_t)k * VL, V_GATHER(x + k, rows_at));
        return;
    }
#if FM_NARROW_TRANSPOSES
    FM_CAT(narrow_transpose_, SFX)(x, ldx, valid, kc, xt);
#else
    for (int r = 0; r < VL; r++) {
        const REAL *row = x + (size_t)(r < valid ? r : valid - 1) * ldx;
        for (int k = 0; k < kc; k++) xt[(size_t)k * VL + r] = row[k];
    }
#endif
}

/* Outputs [0, nj) of `valid` rows, output j of row r in lane r of z[j], to rows ldo apart:
 * transposed back in registers where the ISA can. */
static void FM_CAT(narrow_store_, SFX)(const V *z, int nj, int valid, REAL *out, size_t ldo) {
#if FM_NARROW_TRANSPOSES
    for (int jb = 0; jb < nj; jb += VL) {
        const int jn = nj - jb < VL ? nj - jb : VL;
        V r[VL];
        for (int t = 0; t < VL; t++) r[t] = t < jn ? z[jb + t] : V_ZERO();
        FM_CAT(transpose_square_, SFX)(r);
        if (jn == VL)
            for (int row = 0; row < valid; row++) V_STOREU(out + (size_t)row * ldo + jb, r[row]);
        else
            for (int row = 0; row < valid; row++)
                V_MSTORE(out + (size_t)row * ldo + jb, V_MASK(jn), r[row]);
    }
#else
    _Alignas(FM_ALIGN) REAL lanes[FM_NARROW][VL];
    for (int j = 0; j < nj; j++) V_STOREU(lanes[j], z[j]);
    for (int r = 0; r < valid; r++)
        for (int j = 0; j < nj; j++) out[(size_t)r * ldo + j] = lanes[j][r];
#endif
}

/* Outputs [0, nj) of VL rows (one a lane), their sums in z: + bias, the in-register
 * activation, as micro_'s epilogue does. */
FM_INLINE void FM_CAT(narrow_bias_act_, SFX)(V *z, int nj, const REAL *bias, int reg_act,
                                             V vslope) {
    for (int j = 0; j < nj; j++) {
        V v = V_ADD(z[j], V_SET1(bias[j]));
        if (reg_act == REG_RELU) v = V_RELU(v);
        else if (reg_act == REG_LEAKY) v = V_LEAKY(v, vslope);
        z[j] = v;
    }
}

/* A layer of one panel, VL rows at a time, its outputs in chunks of FM_NARROW, its inputs in
 * blocks of KC. */
static void FM_CAT(narrow_layer_, SFX)(const fm_layer *layer, const REAL *x, size_t ldx,
                                       size_t rows, REAL *out, size_t ldo, int reg_act,
                                       REAL slope) {
    const REAL *w = (const REAL *)layer->packed_weights;
    const REAL *bias = (const REAL *)layer->bias;
    const int n_in = layer->n_in, n_out = layer->n_out;
    _Alignas(FM_ALIGN) REAL xt[KC * VL];
    const V vslope = V_SET1(slope);
    for (size_t i = 0; i < rows; i += VL) {
        const int valid = rows - i < VL ? (int)(rows - i) : VL;
        for (int j0 = 0; j0 < n_out; j0 += FM_NARROW) {
            const int nj = n_out - j0 < FM_NARROW ? n_out - j0 : FM_NARROW;
            V acc[FM_NARROW];
            for (int j = 0; j < FM_NARROW; j++) acc[j] = V_ZERO();
            for (int kb = 0; kb < n_in; kb += KC) {
                const int kc = n_in - kb < KC ? n_in - kb : KC;
                FM_CAT(narrow_pack_, SFX)(x + i * ldx + kb, ldx, valid, kc, xt);
                FM_CAT(narrow_chunk_rows_, SFX)(nj, xt, kc, w + (size_t)kb * NR + j0, acc);
            }
            FM_CAT(narrow_bias_act_, SFX)(acc, nj, bias + j0, reg_act, vslope);
            FM_CAT(narrow_store_, SFX)(acc, nj, valid, out + i * ldo + j0, ldo);
        }
    }
}

/* Layers of at most 4 outputs: narrow_chunk_ would keep only one chain of FMAs per output
 * going (4 cycles an FMA on these cores: a 256->1 layer ran at a quarter of numpy's gemv,
 * AMD Zen 3). Here `groups` groups of VL rows go through each block of inputs together,
 * groups x n_out chains (8, or 6 for 3 outputs); each group's rows are packed in a slot of
 * KC / groups inputs of xt. Same sums in the same order as narrow_chunk_, same bits. */
FM_INLINE void FM_CAT(narrow_groups_chunk_, SFX)(const int groups, const int nj,
                                                 const REAL *FM_RESTRICT xt, int kc, int slot,
                                                 const REAL *FM_RESTRICT w, V *FM_RESTRICT acc) {
    V a[8];
    for (int t = 0; t < groups * nj; t++) a[t] = acc[t];
    for (int k = 0; k < kc; k++) {
        V wk[4];
        for (int j = 0; j < nj; j++) wk[j] = V_SET1(w[(size_t)k * NR + j]);
        for (int g = 0; g < groups; g++) {
            const V xk = V_LOAD(xt + ((size_t)g * slot + k) * VL);
            for (int j = 0; j < nj; j++) a[g * nj + j] = V_FMA(xk, wk[j], a[g * nj + j]);
        }
    }
    for (int t = 0; t < groups * nj; t++) acc[t] = a[t];
}

/* Groups of rows for a layer of n_out <= 4 outputs: 8 chains of FMAs, 6 for 3 outputs. */
static int FM_CAT(narrow_groups_, SFX)(int n_out) { return n_out == 1 ? 8 : n_out == 2 ? 4 : 2; }

/* Every group full but the last: fewer rows go through narrow_layer_ (one group). */
static void FM_CAT(narrow_few_layer_, SFX)(const fm_layer *layer, const REAL *x, size_t ldx,
                                           size_t rows, REAL *out, size_t ldo, int reg_act,
                                           REAL slope) {
    const REAL *w = (const REAL *)layer->packed_weights;
    const REAL *bias = (const REAL *)layer->bias;
    const int n_in = layer->n_in, nj = layer->n_out;
    const int groups = FM_CAT(narrow_groups_, SFX)(nj), slot = KC / groups;
    _Alignas(FM_ALIGN) REAL xt[KC * VL];
    const V vslope = V_SET1(slope);
    for (size_t i = 0; i < rows; i += (size_t)groups * VL) {
        V acc[8];
        for (int t = 0; t < 8; t++) acc[t] = V_ZERO();
        for (int kb = 0; kb < n_in; kb += slot) {
            const int kc = n_in - kb < slot ? n_in - kb : slot;
            for (int g = 0; g < groups; g++) { /* groups past the rows repeat the last row */
                const size_t r0 = i + (size_t)g * VL < rows ? i + (size_t)g * VL : rows - 1;
                const int valid = rows - r0 < VL ? (int)(rows - r0) : VL;
                FM_CAT(narrow_pack_, SFX)(x + r0 * ldx + kb, ldx, valid, kc,
                                          xt + (size_t)g * slot * VL);
            }
            const REAL *wb = w + (size_t)kb * NR;
            switch (nj) { /* constants, so that the sums live in registers */
            case 1: FM_CAT(narrow_groups_chunk_, SFX)(8, 1, xt, kc, slot, wb, acc); break;
            case 2: FM_CAT(narrow_groups_chunk_, SFX)(4, 2, xt, kc, slot, wb, acc); break;
            case 3: FM_CAT(narrow_groups_chunk_, SFX)(2, 3, xt, kc, slot, wb, acc); break;
            default: FM_CAT(narrow_groups_chunk_, SFX)(2, 4, xt, kc, slot, wb, acc);
            }
        }
        for (int g = 0; g < groups && i + (size_t)g * VL < rows; g++) {
            V *z = acc + g * nj;
            FM_CAT(narrow_bias_act_, SFX)(z, nj, bias, reg_act, vslope);
            const size_t r0 = i + (size_t)g * VL;
            FM_CAT(narrow_store_, SFX)(z, nj, rows - r0 < VL ? (int)(rows - r0) : VL,
                                       out + r0 * ldo, ldo);
        }
    }
}

/* How many rows of this layer one vector holds for tiny_layer_ (row r's output j in lane
 * r * ldo + j, its inputs ldx apart in one load): VL / max(ldx, ldo), 0 below 2. */
static int FM_CAT(tiny_rows_, SFX)(const fm_layer *layer, size_t ldx, size_t ldo) {
    const size_t widest = ldx > ldo ? ldx : ldo;
    if ((size_t)layer->n_in > ldx || (size_t)layer->n_out > ldo || widest > VL / 2) return 0;
    return (int)(VL / widest);
}

/* A layer of at most VL / 2 inputs and outputs (3->4, 4->2), `per` rows at a time: one
 * masked load of their inputs, for each input one permute that takes each lane's input k
 * to it and one FMA with the weights laid out as the lanes are, one masked store. The sums
 * are narrow_chunk_'s, term by term, and so are the bits. 3-4-2 sigmoid over 16384 rows,
 * one thread (Sapphire Rapids, float32), against narrow_layer_'s gathers and scalar stores:
 * 112 -> 60 us; the AVX2 path runs 1.9x fewer instructions (callgrind). */
static void FM_CAT(tiny_layer_, SFX)(const fm_layer *layer, const REAL *x, size_t ldx,
                                     size_t rows, REAL *out, size_t ldo, int reg_act,
                                     REAL slope, int per) {
    const REAL *w = (const REAL *)layer->packed_weights;
    const REAL *bias = (const REAL *)layer->bias;
    const int n_in = layer->n_in, n_out = layer->n_out;
    /* Lane r * ldo + j holds row r's output j for j < n_out; the other lanes compute
     * zeros and are never stored. */
    _Alignas(FM_ALIGN) REAL lanes[VL] = {0};
    _Alignas(FM_ALIGN) int from[VL] = {0};
    V weights[VL / 2];
    VPERM spread[VL / 2];
    for (int k = 0; k < n_in; k++) {
        for (int r = 0; r < per; r++)
            for (int j = 0; j < n_out; j++) {
                lanes[r * (int)ldo + j] = w[(size_t)k * NR + j];
                from[r * (int)ldo + j] = r * (int)ldx + k;
            }
        weights[k] = V_LOAD(lanes);
        spread[k] = V_PERM_INDEX(from);
    }
    unsigned stored = 0;
    for (int r = 0; r < per; r++)
        for (int j = 0; j < n_out; j++) {
            lanes[r * (int)ldo + j] = bias[j];
            stored |= 1u << (r * (int)ldo + j);
        }
    const V vbias = V_LOAD(lanes), vslope = V_SET1(slope);
    for (size_t i = 0; i < rows; i += (size_t)per) {
        const int valid = rows - i < (size_t)per ? (int)(rows - i) : per;
        const V xs = V_MLOAD(x + i * ldx, V_MASK((valid - 1) * (int)ldx + n_in));
        V acc = V_ZERO();
        for (int k = 0; k < n_in; k++) acc = V_FMA(V_PERMUTE(xs, spread[k]), weights[k], acc);
        V z = V_ADD(acc, vbias);
        if (reg_act == REG_RELU) z = V_RELU(z);
        else if (reg_act == REG_LEAKY) z = V_LEAKY(z, vslope);
        const unsigned rows_kept = valid == per ? stored : stored & ((1u << (valid * ldo)) - 1u);
        V_MSTORE(out + i * ldo, V_MASK_BITS(rows_kept), z);
    }
}
#endif

/* Copies rows x kc of x into blocks of FM_MR rows, each stored k-major
 * (block[k * FM_MR + r]), so the micro-kernel reads one sequential stream
 * instead of FM_MR rows whose stride may alias in the L1 cache. */
static void FM_CAT(pack_rows_, SFX)(const REAL *FM_RESTRICT x, size_t ldx, size_t rows, int kc,
                                    REAL *FM_RESTRICT packed) {
    for (size_t i = 0; i < rows; i += FM_MR) {
        const size_t mr = rows - i < FM_MR ? rows - i : FM_MR;
        REAL *block = packed + i * (size_t)kc;
        for (size_t r = 0; r < mr; r++)
            for (int k = 0; k < kc; k++) block[(size_t)k * FM_MR + r] = x[(i + r) * ldx + k];
    }
}

/* Where the second and third micro-tiles over a block of weights (kc inputs of a panel: 2
 * cache lines an input) ask for the next block's lines, one line an input: its first half,
 * then its second. NULL for the others, and after the last block. The first micro-tile
 * over a block finds it in L2 then, instead of stalling on memory while the others compute
 * from cache with the memory idle. Measured on Sapphire Rapids, float32, 1024-4096-1024
 * (weights from memory each call): 32 rows 1.24x on one thread, 1.28x on two, 1024 rows
 * 1.11x and 1.06x; float64 32 rows 1.19x; 784-512-256-10 at 32 rows 1.16x. */
static const char *FM_CAT(next_block_lines_, SFX)(const REAL *next_block, size_t micro_tile,
                                                   int kc) {
    if (!next_block || micro_tile < 1 || micro_tile > 2) return NULL;
    return (const char *)next_block + (micro_tile - 1) * (size_t)kc * FM_ALIGN;
}

/* Column panels [first_panel, end_panel) over `rows` rows, in blocks of the layer's k_block
 * inputs: each panel's block of weights stays in cache while the rows stream past it in
 * micro-tiles, which carry their sums between blocks through the output (exactly). */
static void FM_CAT(panels_, SFX)(const fm_layer *layer, const REAL *x, size_t ldx, size_t rows,
                                 REAL *out, size_t ldo, int first_panel, int end_panel,
                                 REAL *apack, int reg_act, REAL slope) {
    const int n_in = layer->n_in, n_out = layer->n_out;
    const size_t panel_stride = (size_t)n_in * NR;
    const REAL *w = (const REAL *)layer->packed_weights;
    const REAL *bias = (const REAL *)layer->bias;
    /* Rows a multiple of 4 KiB apart fall into the same L1 sets as that block of weights:
     * those are copied into k-major blocks of FM_MR rows (scratch rows never are: forward.c
     * pads them). Others are read in place: on Zen 4 (AVX2) copying them cost 5-12% of a
     * layer of 64 to 784 inputs (82 against 88 GFLOP/s at 256 x 256, 1024 rows). */
    const int packed = apack && rows > FM_MR && end_panel - first_panel > 1 &&
                       ldx * sizeof(REAL) % 4096 == 0;
    const int k_block = layer->k_block > 0 ? layer->k_block : KC;
    for (int kb = 0; kb < n_in; kb += k_block) {
        const int kc = n_in - kb < k_block ? n_in - kb : k_block;
        const int accumulate = kb > 0, last = kb + kc == n_in;
        if (packed) FM_CAT(pack_rows_, SFX)(x + kb, ldx, rows, kc, apack);
        for (int p = first_panel; p < end_panel; p++) {
            const REAL *wp = w + p * panel_stride + (size_t)kb * NR;
            /* the next panel's block, or the first panel's next block (which may have fewer
             * inputs: its last lines asked for can lie beyond it, and a prefetch never faults) */
            const REAL *next = p + 1 < end_panel ? wp + panel_stride
                               : !last ? w + first_panel * panel_stride + (size_t)(kb + kc) * NR
                                       : NULL;
            /* The panel's micro-tile columns one after the other, each over all the rows
             * while its part of the block stays in L1; the first asks for the next block. */
            for (int j = p * NR; j < n_out && j < (p + 1) * NR; j += MC) {
                const int n_valid = n_out - j < MC ? n_out - j : MC;
                const int first_part = j == p * NR;
                for (size_t i = 0; i < rows; i += FM_MR) {
                    const int mr = rows - i < FM_MR ? (int)(rows - i) : FM_MR;
                    const REAL *xi = packed ? apack + i * (size_t)kc : x + i * ldx + kb;
#if !defined(FM_SCALAR_KERNEL)
                    if (MC < NR && 2 * mr <= FM_MR) { /* the whole panel, with the first part */
                        const int panel_valid = n_out - p * NR < NR ? n_out - p * NR : NR;
                        if (first_part)
                            FM_CAT(micro_tail_, SFX)(mr, xi, packed ? 1 : ldx, packed ? FM_MR : 1,
                                                     wp, kc, out + i * ldo + p * NR, ldo,
                                                     panel_valid, accumulate,
                                                     last ? bias + p * NR : NULL, reg_act, slope);
                        continue;
                    }
#endif
                    FM_CAT(micro_rows_, SFX)(
                        mr, xi, packed ? 1 : ldx, packed ? FM_MR : 1, wp + (j - p * NR), kc,
                        out + i * ldo + j, ldo, n_valid, accumulate, last ? bias + j : NULL,
                        reg_act, slope,
                        first_part ? FM_CAT(next_block_lines_, SFX)(next, i / FM_MR, kc) : NULL);
                }
            }
        }
    }
}

/* Columns [first_panel * NR, end_panel * NR) of the layer (clipped to n_out),
 * so that threads can share one layer by columns. apack, when not NULL, holds
 * fm_pack_area_elems(rows, FM_MR, k) elements for packing x, k the layer's k_block (FM_KC
 * when that is 0) or its inputs, whichever is fewer. */
void FM_SYM(FM_CAT(fm_dense_cols_, SFX))(const fm_layer *layer, const REAL *x, size_t ldx,
                                          size_t rows, REAL *out, size_t ldo,
                                          int apply_activation, int first_panel, int end_panel,
                                          REAL *apack) {
    const int n_out = layer->n_out;
    const int kind = layer->activation.kind;
    int reg_act = REG_NONE, after = 0;
    REAL slope = 0;
    if (apply_activation) {
        if (kind == FM_RELU) reg_act = REG_RELU;
        else if (kind == FM_LEAKY_RELU) reg_act = REG_LEAKY, slope = (REAL)layer->activation.p0;
        else after = kind != FM_IDENTITY;
    }
#if !defined(FM_SCALAR_KERNEL) && FM_NARROW > 0
    if (fm_dense_is_narrow(layer, FM_NARROW, NR, rows, first_panel, end_panel)) {
        const int per = FM_CAT(tiny_rows_, SFX)(layer, ldx, ldo);
        const size_t grouped_rows = (size_t)FM_CAT(narrow_groups_, SFX)(layer->n_out) * VL;
        if (per >= 2)
            FM_CAT(tiny_layer_, SFX)(layer, x, ldx, rows, out, ldo, reg_act, slope, per);
        else if (layer->n_out <= 4 && rows >= grouped_rows)
            FM_CAT(narrow_few_layer_, SFX)(layer, x, ldx, rows, out, ldo, reg_act, slope);
        else
            FM_CAT(narrow_layer_, SFX)(layer, x, ldx, rows, out, ldo, reg_act, slope);
    } else
#endif
#ifndef FM_SCALAR_KERNEL
    /* One row: the weights stream through once, panel after panel over all the
     * inputs (no blocking: nothing is reused from L1 anyway). */
    if (rows == 1)
        FM_CAT(gemv_block_, SFX)(x, (const REAL *)layer->packed_weights, (size_t)layer->n_in * NR,
                                 layer->n_in, n_out, first_panel, end_panel, out, 0,
                                 (const REAL *)layer->bias, reg_act, slope);
    else
#endif
        FM_CAT(panels_, SFX)(layer, x, ldx, rows, out, ldo, first_panel, end_panel, apack, reg_act,
                             slope);
    if (after) {
        /* Softmax and log-softmax need whole rows: the caller runs them once all columns are. */
        const int first_col = first_panel * NR;
        const int end_col = end_panel * NR < n_out ? end_panel * NR : n_out;
        fm_activation act = layer->activation; /* per-feature parameters from first_col on */
        if (act.vec) act.vec = (const REAL *)act.vec + first_col;
        if (!fm_activation_needs_whole_rows(kind) || (first_panel == 0 && end_col == n_out))
            FM_SYM(FM_CAT(fm_activate_, SFX))(act, out + first_col, rows,
                                              (size_t)(end_col - first_col), ldo);
    }
}

void FM_SYM(FM_CAT(fm_dense_, SFX))(const fm_layer *layer, const REAL *x, size_t ldx,
                                     size_t rows, REAL *out, size_t ldo, int apply_activation) {
    FM_SYM(FM_CAT(fm_dense_cols_, SFX))(layer, x, ldx, rows, out, ldo, apply_activation, 0,
                                        (layer->n_out + NR - 1) / NR, NULL);
}

#undef NR
#undef KC
#undef MC
#undef MV
#undef FM_NARROW_TRANSPOSES
#undef FM_NARROW_GATHER_INPUTS
