# cython: language_level=3
"""The C core's API, cimportable by other Cython extensions.

    from fastmlp._core cimport CompiledNetwork
    net.forward_f32(x, rows, out)   # nogil, no Python objects touched

x is a C-contiguous rows x n_inputs buffer, out rows x n_outputs, in the
network's dtype (check ``net.is_double``); the call returns 0, or -1 when
scratch memory ran out.
"""

cdef extern from "fastmlp.h" nogil:
    ctypedef struct fm_activation:
        int kind
        double p0, p1
        const void *vec

    ctypedef struct fm_layer:
        int n_in, n_out
        const void *packed_weights
        const void *bias
        fm_activation activation

    enum: FM_N_ACTIVATIONS

    void *fm_aligned_alloc(size_t nbytes)
    void fm_aligned_free(void *p)
    size_t fm_packed_size_f32(int n_in, int n_out)
    size_t fm_packed_size_f64(int n_in, int n_out)
    void fm_pack_f32(const float *w, int n_in, int n_out, float *dst)
    void fm_pack_f64(const double *w, int n_in, int n_out, double *dst)

    const char *fm_kernel_name(int kernel)
    int fm_kernel_supported(int kernel)
    int fm_active_kernel()
    int fm_select_kernel(const char *name)
    enum: FM_N_KERNELS

    void fm_dense_f32(const fm_layer *layer, const float *x, size_t ldx, size_t rows,
                      float *out, size_t ldo, int apply_activation)
    void fm_dense_f64(const fm_layer *layer, const double *x, size_t ldx, size_t rows,
                      double *out, size_t ldo, int apply_activation)
    void fm_activate_f32(fm_activation act, float *z, size_t rows, size_t cols, size_t ld)
    void fm_activate_f64(fm_activation act, double *z, size_t rows, size_t cols, size_t ld)
    int fm_forward_f32(const fm_layer *layers, int n_layers, const float *x, size_t rows,
                       float *out, int threads)
    int fm_forward_f64(const fm_layer *layers, int n_layers, const double *x, size_t rows,
                       double *out, int threads)
    int fm_default_threads()
    int fm_have_openmp()


cdef class CompiledNetwork:
    cdef fm_layer *layers
    cdef int n_layers
    cdef readonly bint is_double
    cdef readonly int n_inputs
    cdef readonly int n_outputs
    cdef readonly int threads
    cdef readonly Py_ssize_t macs_per_row
    cdef readonly object dtype
    cdef Py_ssize_t _itemsize

    cdef int _run(self, const char *x, size_t rows, char *out, int threads) noexcept nogil

    cdef int forward_f32(self, const float *x, size_t rows, float *out) noexcept nogil
    cdef int forward_f64(self, const double *x, size_t rows, double *out) noexcept nogil
