/* One dense micro-kernel: mr rows (a constant where it is inlined) by MICRO_NV vectors of
 * columns of a packed panel, over kc inputs; rows rs apart, their inputs ks apart; sums
 * carried in c between blocks (accumulate), + bias, the in-register activation and the
 * store on the last block. Every output's sum runs in input order (0, then x[k] * w[k] +
 * acc, fused), whatever the copy, so every copy gives the same bits.
 * Included by dense_impl.h, after vec.h, with REAL, SFX, NR, MICRO_NAME and MICRO_NV
 * defined; it undefines the last two. */

FM_INLINE void MICRO_NAME(const int mr, const REAL *FM_RESTRICT x, size_t rs, size_t ks,
                          const REAL *FM_RESTRICT w, int kc, REAL *FM_RESTRICT c, size_t ldc,
                          int n_valid, int accumulate, const REAL *FM_RESTRICT bias,
                          int reg_act, REAL slope, const char *prefetch) {
    enum { NV = MICRO_NV };
    const int full = n_valid == NV * VL;
    VMASK mask[NV];
    for (int v = 0; v < NV; v++) {
        int n = n_valid - v * VL;
        mask[v] = V_MASK(n < 0 ? 0 : (n > VL ? VL : n));
    }
    /* A partial panel's vectors past n_valid hold padding: never loaded, biased or stored. */
    const int live = full ? NV : (n_valid + VL - 1) / VL;
    V acc[FM_MR][NV];
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < NV; v++)
            acc[r][v] = !accumulate || v >= live ? V_ZERO()
                        : full                   ? V_LOADU(c + r * ldc + v * VL)
                                                 : V_MLOAD(c + r * ldc + v * VL, mask[v]);
    /* Two copies of the loop, so that the micro-tiles that prefetch nothing (most) test
     * nothing either. */
#define FM_MICRO_STEP(k)                                                                   \
    do {                                                                                   \
        V wk[NV];                                                                          \
        for (int v = 0; v < NV; v++) wk[v] = V_LOAD(w + (size_t)(k) * NR + v * VL);        \
        for (int r = 0; r < mr; r++) {                                                     \
            const V xr = V_SET1(x[r * rs + (k) * ks]);                                     \
            for (int v = 0; v < NV; v++) acc[r][v] = V_FMA(xr, wk[v], acc[r][v]);          \
        }                                                                                  \
    } while (0)
    if (prefetch)
        for (int k = 0; k < kc; k++) {
            FM_PREFETCH_L2(prefetch + (size_t)k * FM_ALIGN);
            FM_MICRO_STEP(k);
        }
    else
        for (int k = 0; k < kc; k++) FM_MICRO_STEP(k);
#undef FM_MICRO_STEP
    if (bias) {
        const V vslope = V_SET1(slope);
        for (int v = 0; v < live; v++) {
            const V b = full ? V_LOADU(bias + v * VL) : V_MLOAD(bias + v * VL, mask[v]);
            for (int r = 0; r < mr; r++) {
                V z = V_ADD(acc[r][v], b);
                if (reg_act == REG_RELU) z = V_RELU(z);
                else if (reg_act == REG_LEAKY) z = V_LEAKY(z, vslope);
                acc[r][v] = z;
            }
        }
    }
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < live; v++) {
            if (full) V_STOREU(c + r * ldc + v * VL, acc[r][v]);
            else V_MSTORE(c + r * ldc + v * VL, mask[v], acc[r][v]);
        }
}

#undef MICRO_NAME
#undef MICRO_NV
