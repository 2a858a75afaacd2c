# cython: language_level=3
"""fastmlp's C-level API for other Cython extensions, version FM_C_API_VERSION.

    from fastmlp._core cimport CompiledNetwork, check_c_api, forward_f32
    check_c_api()                       # once, at import (raises ImportError if incompatible)
    cdef CompiledNetwork net = a_fastmlp_network
    with nogil:
        rc = forward_f32(net, x, rows, out, 0)

The network is opaque: extensions reach it only through the functions below, which are
module-level (not methods) so that adding one never changes a vtable, and the object's
single field is a pointer whose target extensions never see. x is a C-contiguous
rows x n_inputs buffer and out rows x n_outputs, in the network's dtype (float32 when
``is_double(net)`` is false, also for reduced-precision networks); threads <= 0 means the
network's default. Every call returns one of:

    FM_OK (0)               done
    FM_ERR_NO_MEMORY (-1)   scratch memory ran out; out is undefined
    FM_ERR_DTYPE (-2)       forward_f32 on a float64 network, or forward_f64 on a float32 one
    FM_ERR_ARGUMENT (-3)    a NULL network
    FM_ERR_STATE (-4)       a network that is not built
"""

cdef extern from "fastmlp.h" nogil:
    ctypedef struct fm_network:
        pass
    enum:
        FM_OK
        FM_ERR_NO_MEMORY
        FM_ERR_DTYPE
        FM_ERR_ARGUMENT
        FM_ERR_STATE
        FM_C_API_VERSION


cdef class CompiledNetwork:
    cdef fm_network *_net


cdef int c_api_version() noexcept nogil
cdef int n_inputs(CompiledNetwork net) noexcept nogil
cdef int n_outputs(CompiledNetwork net) noexcept nogil
cdef bint is_double(CompiledNetwork net) noexcept nogil
cdef int forward_f32(CompiledNetwork net, const float *x, size_t rows, float *out,
                     int threads) noexcept nogil
cdef int forward_f64(CompiledNetwork net, const double *x, size_t rows, double *out,
                     int threads) noexcept nogil


cdef inline int check_c_api() except -1:
    """The installed fastmlp speaks the C API this extension was compiled against."""
    if c_api_version() != FM_C_API_VERSION:
        raise ImportError(f"this extension was built against fastmlp's C API version "
                          f"{FM_C_API_VERSION}, but the installed fastmlp provides version "
                          f"{c_api_version()}; rebuild the extension")
    return 0
