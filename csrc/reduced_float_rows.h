/* bfloat16 rows as floats holding bfloat16 values, padded with a zero to pairs: what the
 * generic and AVX2 bfloat16 kernels read (one broadcast float per input). Part of
 * dense_reduced.c's micro-kernel interface, for reduced_generic.h and reduced_avx2.h. */
static size_t rk_bf16_row_bytes(int n_in) { return ((size_t)n_in + 1) / 2 * 2 * sizeof(float); }

static void rk_bf16_prepare_row(const float *x, int n_in, void *dst) {
    float *d = dst;
    for (int k = 0; k < n_in; k++) d[k] = round_bf16(x[k]);
    if (n_in % 2) d[n_in] = 0;
}
