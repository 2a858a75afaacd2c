# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, embedsignature=True
"""The bridge between fastmlp's Python API and its C kernels (csrc/).

CompiledNetwork owns the packed weights and runs the forward pass with the GIL
released. It trusts its caller (fastmlp.network validates everything first),
except on the fast path of ``forward``, which takes only what it can prove
right from the buffer itself and hands everything else to the Python slow path.
"""
from cpython.object cimport PyObject
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy

import numpy as np

ctypedef fused real:
    float
    double

cdef object _ndarray = np.ndarray
cdef object _empty = np.empty
cdef object _float32 = np.dtype(np.float32)
cdef object _float64 = np.dtype(np.float64)


def select_kernel(name):
    """Choose the kernel variant once, at import ("auto" or a name from kernel_names())."""
    rc = fm_select_kernel(name.encode("ascii"))
    if rc == -1:
        raise ValueError(f"unknown kernel {name!r}; valid: auto, {', '.join(kernel_names())}")
    if rc == -2:
        raise ValueError(f"kernel {name!r} is not supported on this CPU; supported: "
                         f"{', '.join(supported_kernels())}")


def kernel_names():
    return tuple(fm_kernel_name(k).decode() for k in range(FM_N_KERNELS))


def supported_kernels():
    return tuple(fm_kernel_name(k).decode() for k in range(FM_N_KERNELS) if fm_kernel_supported(k))


def active_kernel():
    return fm_kernel_name(fm_active_kernel()).decode()


def default_threads():
    return fm_default_threads()


def have_openmp():
    return bool(fm_have_openmp())


cdef int _pack_layer(fm_layer *layer, const real[:, ::1] w, const real[::1] b) except -1:
    cdef int n_in = <int>w.shape[0], n_out = <int>w.shape[1]
    cdef size_t n_packed
    if real is float:
        n_packed = fm_packed_size_f32(n_in, n_out)
    else:
        n_packed = fm_packed_size_f64(n_in, n_out)
    cdef real *packed = <real *>fm_aligned_alloc(n_packed * sizeof(real))
    cdef real *bias = <real *>fm_aligned_alloc(n_out * sizeof(real))
    if packed == NULL or bias == NULL:
        fm_aligned_free(packed)
        fm_aligned_free(bias)
        raise MemoryError("not enough memory to pack the weights")
    if real is float:
        fm_pack_f32(&w[0, 0], n_in, n_out, packed)
    else:
        fm_pack_f64(&w[0, 0], n_in, n_out, packed)
    cdef int j
    for j in range(n_out):
        bias[j] = b[j]
    layer.n_in = n_in
    layer.n_out = n_out
    layer.packed_weights = packed
    layer.bias = bias
    return 0


cdef extern from *:
    """
    /* The leading fields of numpy's PyArrayObject: public, and ABI-stable since
       numpy 1.7 (numpy's own inline accessors compiled into every extension read
       them), declared here so the fast path needs neither numpy headers nor the
       buffer protocol's format strings. */
    typedef struct {
        PyObject_HEAD
        char *data;
        int nd;
        Py_ssize_t *dimensions;
        Py_ssize_t *strides;
        PyObject *base;
        PyObject *descr;
        int flags;
    } fm_ndarray;
    """
    ctypedef struct fm_ndarray:
        char *data
        int nd
        Py_ssize_t *dimensions
        PyObject *descr
        int flags

# numpy's array flags
cdef enum:
    C_CONTIGUOUS = 0x0001
    ALIGNED = 0x0100
    WRITEABLE = 0x0400

# Below this many multiply-adds the GIL is kept: releasing it costs more than the work.
cdef enum:
    GIL_RELEASE_MIN_MACS = 4096


cdef inline fm_ndarray *_plain_array(object a, object descr, int flags) noexcept:
    """a as a numpy array of exactly dtype descr with these flags, else NULL."""
    if type(a) is not _ndarray:
        return NULL
    cdef fm_ndarray *array = <fm_ndarray *>a
    if array.descr != <PyObject *>descr or (array.flags & flags) != flags:
        return NULL
    return array


cdef class CompiledNetwork:
    """Packed layers and the compiled forward pass; subclassed by fastmlp.Network."""

    def __cinit__(self, *args, **kwargs):
        self.layers = NULL
        self.n_layers = 0

    def __dealloc__(self):
        cdef int l
        if self.layers != NULL:
            for l in range(self.n_layers):
                fm_aligned_free(<void *>self.layers[l].packed_weights)
                fm_aligned_free(<void *>self.layers[l].bias)
                fm_aligned_free(<void *>self.layers[l].activation.vec)
            free(self.layers)

    def _build(self, list weights, list biases, list activations, bint is_double, int threads):
        """Pack validated layers: C-contiguous weights and 1-D biases in the network's
        dtype, activations as (code, p0, p1) or (code, p0, p1, per-feature values)."""
        if self.layers != NULL:
            raise RuntimeError("network already built")
        cdef int n = len(weights), l
        self.layers = <fm_layer *>calloc(n, sizeof(fm_layer))
        if self.layers == NULL:
            raise MemoryError()
        self.n_layers = n
        for l in range(n):
            if is_double:
                _pack_layer[double](&self.layers[l], weights[l], biases[l])
            else:
                _pack_layer[float](&self.layers[l], weights[l], biases[l])
            code, p0, p1 = activations[l][:3]
            self.layers[l].activation.kind = code
            self.layers[l].activation.p0 = p0
            self.layers[l].activation.p1 = p1
            self.layers[l].activation.vec = NULL
            if len(activations[l]) > 3:
                self.layers[l].activation.vec = _feature_values(activations[l][3], is_double,
                                                                self.layers[l].n_out)
        self.is_double = is_double
        self.n_inputs = self.layers[0].n_in
        self.n_outputs = self.layers[n - 1].n_out
        self.threads = threads
        self.dtype = _float64 if is_double else _float32
        self._itemsize = 8 if is_double else 4
        self.macs_per_row = 0
        for l in range(n):
            self.macs_per_row += <Py_ssize_t>self.layers[l].n_in * self.layers[l].n_out

    cdef int forward_f32(self, const float *x, size_t rows, float *out) noexcept nogil:
        if self.is_double:
            return -2
        return fm_forward_f32(self.layers, self.n_layers, x, rows, out, self.threads)

    cdef int forward_f64(self, const double *x, size_t rows, double *out) noexcept nogil:
        if not self.is_double:
            return -2
        return fm_forward_f64(self.layers, self.n_layers, x, rows, out, self.threads)

    def forward(self, x, out=None, *, threads=None):
        """forward(x, out=None, *, threads=None)

        The network's output for x: shape (N,) gives (M,), (batch, N) gives (batch, M).
        out, if given, must be a C-contiguous writeable array of exactly that shape and
        the network's dtype; it is filled and returned. threads: how many threads this
        call may use (default: the network's setting, else all cores).
        """
        # The fast path: a plain, aligned, C-contiguous array in the network's dtype
        # (and such an out). Anything else, including every error, takes the slow path.
        cdef int nthreads = self.threads
        if threads is not None:
            if type(threads) is not int or threads < 1:
                return self._forward_slow(x, out, threads)
            nthreads = threads
        cdef fm_ndarray *xa = _plain_array(x, self.dtype, C_CONTIGUOUS | ALIGNED)
        if xa == NULL or xa.nd < 1 or xa.nd > 2 or xa.dimensions[xa.nd - 1] != self.n_inputs:
            return self._forward_slow(x, out, threads)
        cdef Py_ssize_t rows = xa.dimensions[0] if xa.nd == 2 else 1
        cdef fm_ndarray *oa
        if out is None:
            if xa.nd == 2:
                out = _empty((rows, self.n_outputs), self.dtype)
            else:
                out = _empty(self.n_outputs, self.dtype)
            oa = <fm_ndarray *>out
        else:
            oa = _plain_array(out, self.dtype, C_CONTIGUOUS | ALIGNED | WRITEABLE)
            if (oa == NULL or oa.nd != xa.nd or oa.dimensions[oa.nd - 1] != self.n_outputs
                    or (oa.nd == 2 and oa.dimensions[0] != rows)
                    or (oa.data < xa.data + rows * self.n_inputs * self._itemsize
                        and xa.data < oa.data + rows * self.n_outputs * self._itemsize)):
                return self._forward_slow(x, out, threads)
        cdef int rc
        if rows * self.macs_per_row < GIL_RELEASE_MIN_MACS:
            rc = self._run(xa.data, rows, oa.data, 1)
        else:
            with nogil:
                rc = self._run(xa.data, rows, oa.data, nthreads)
        if rc != 0:
            raise MemoryError("not enough memory for the forward pass's scratch tiles")
        return out

    cdef inline int _run(self, const char *x, size_t rows, char *out, int threads) noexcept nogil:
        if self.is_double:
            return fm_forward_f64(self.layers, self.n_layers, <const double *>x, rows,
                                  <double *>out, threads)
        return fm_forward_f32(self.layers, self.n_layers, <const float *>x, rows,
                              <float *>out, threads)

    __call__ = forward

    def _forward_slow(self, x, out, threads):
        raise NotImplementedError  # provided by fastmlp.Network

    def _forward_into(self, const real[:, ::1] x, real[:, ::1] out, int threads):
        """Checked entry for already converted 2-D arrays (the slow path's last step)."""
        cdef int rc
        if x.shape[0] == 0:
            return
        with nogil:
            if real is float:
                rc = fm_forward_f32(self.layers, self.n_layers, &x[0, 0], x.shape[0],
                                    &out[0, 0], threads)
            else:
                rc = fm_forward_f64(self.layers, self.n_layers, &x[0, 0], x.shape[0],
                                    &out[0, 0], threads)
        if rc != 0:
            raise MemoryError("not enough memory for the forward pass's scratch tiles")

    def _layer(self, int index, const real[:, ::1] x, real[:, ::1] out, bint activate):
        """One layer: out = f(x W + b), or z = x W + b alone when activate is false."""
        if x.shape[0] == 0:
            return
        cdef const fm_layer *layer = &self.layers[index]
        with nogil:
            if real is float:
                fm_dense_f32(layer, &x[0, 0], x.shape[1], x.shape[0], &out[0, 0],
                             out.shape[1], activate)
            else:
                fm_dense_f64(layer, &x[0, 0], x.shape[1], x.shape[0], &out[0, 0],
                             out.shape[1], activate)

    def _activate(self, int index, real[:, ::1] z):
        """Layer index's activation, in place."""
        if z.shape[0] == 0:
            return
        cdef fm_activation act = self.layers[index].activation
        with nogil:
            if real is float:
                fm_activate_f32(act, &z[0, 0], z.shape[0], z.shape[1], z.shape[1])
            else:
                fm_activate_f64(act, &z[0, 0], z.shape[0], z.shape[1], z.shape[1])


cdef extern from "fastmlp.h":
    const char *fm_activation_name(int kind)


def activation_codes():
    """The C core's activation codes: {name: code}, the one table fastmlp._activations reads."""
    return {fm_activation_name(k).decode(): k for k in range(FM_N_ACTIVATIONS)}


cdef void *_feature_values(values, bint is_double, int n_out) except NULL:
    """A copy of n_out per-feature activation parameters in the network's dtype (aligned
    memory, freed with the layer)."""
    cdef const unsigned char[::1] raw = np.ascontiguousarray(
        values, _float64 if is_double else _float32).reshape(n_out).view(np.uint8)
    cdef void *copy = fm_aligned_alloc(raw.shape[0])
    if copy == NULL:
        raise MemoryError("not enough memory for the activation's per-feature values")
    memcpy(copy, &raw[0], raw.shape[0])
    return copy
