# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, embedsignature=True
"""The bridge between fastmlp's Python API and its C core (csrc/).

CompiledNetwork holds an fm_network (the C core's opaque, owning handle) and runs the
forward pass with the GIL released. It is built only by fastmlp.network, which validates
the layers first; ``forward`` validates its own arguments: a fast path takes what it can
prove right from the buffers themselves, and a checked path converts everything else.
"""
cimport cython
from cpython.object cimport PyObject

import numpy as np

# numpy's C API, for the one call on the hot path it makes much cheaper: allocating the
# output (np.empty through Python costs more than a small network's whole pass).
cdef extern from "numpy/arrayobject.h":
    ctypedef Py_ssize_t npy_intp
    enum: NPY_FLOAT, NPY_DOUBLE
    object PyArray_SimpleNew(int nd, npy_intp *dims, int typenum)
    int _import_array() except -1

_import_array()

cdef object _ndarray = np.ndarray
cdef object _empty = np.empty
cdef object _float32 = np.dtype(np.float32)
cdef object _float64 = np.dtype(np.float64)

cdef extern from "fastmlp.h" nogil:
    ctypedef struct fm_activation:
        int kind
        double p0, p1
        const void *vec

    enum: FM_N_ACTIVATIONS

    const char *fm_kernel_name(int kernel)
    int fm_kernel_supported(int kernel)
    int fm_active_kernel()
    int fm_select_kernel(const char *name)
    unsigned fm_kernel_missing_features(int kernel)
    int fm_emulated_isa()
    enum: FM_N_KERNELS
    int fm_default_threads()
    int fm_default_threads_source()
    void fm_set_thread_limit(int n)

    fm_network *fm_network_new(int is_double)
    void fm_network_free(fm_network *net)
    int fm_network_dense(fm_network *net, int n_in, int n_out, const void *w, const void *bias,
                         fm_activation act)
    int fm_network_affine(fm_network *net, int width, const void *scale, const void *shift)
    int fm_network_layernorm(fm_network *net, int width, const void *scale, const void *shift,
                             double eps)
    int fm_network_activation(fm_network *net, int width, fm_activation act)
    int fm_network_dense_reduced(fm_network *net, int precision, int n_in, int n_out,
                                 const void *w, const float *scales, const float *bias,
                                 fm_activation act)
    int fm_network_residual_begin(fm_network *net, int width)
    int fm_network_residual_end(fm_network *net)
    int fm_network_finish(fm_network *net)
    int fm_network_n_inputs(const fm_network *net)
    int fm_network_n_outputs(const fm_network *net)
    int fm_network_is_double(const fm_network *net)
    void fm_network_set_threads(fm_network *net, int threads)
    int fm_network_threads(const fm_network *net)
    double fm_network_macs_per_row(const fm_network *net)
    int fm_network_forward_f32(const fm_network *net, const float *x, size_t rows, float *out,
                               int threads)
    int fm_network_forward_f64(const fm_network *net, const double *x, size_t rows,
                               double *out, int threads)
    int fm_network_trace_f32(const fm_network *net, int step, int pre_activation,
                             const float *x, size_t rows, float *out)
    int fm_network_trace_f64(const fm_network *net, int step, int pre_activation,
                             const double *x, size_t rows, double *out)
    int fm_network_n_steps(const fm_network *net)
    int fm_network_step_width(const fm_network *net, int step)

    ctypedef struct fm_plan_options:
        int tile_rows, split, dense_method, k_block
    ctypedef struct fm_plan:
        int threads, split_columns
        size_t tile_rows, n_tiles, scratch_bytes, tile_bytes
    int fm_network_set_plan_options(fm_network *net, const fm_plan_options *options)
    int fm_network_plan(const fm_network *net, size_t rows, int threads, fm_plan *plan)
    int fm_network_step_method(const fm_network *net, size_t rows, int threads, int step)
    int fm_network_step_k_block(const fm_network *net, int step)


cdef extern from "cpu.h" nogil:
    const char *fm_cpu_feature_name(unsigned bit)


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


def kernel_missing(name):
    """What this machine lacks to run the kernel variant `name`: CPU feature names (an
    empty tuple when it can run it; ("not built for this architecture",) when absent)."""
    cdef int k
    cdef unsigned missing, bit
    for k in range(FM_N_KERNELS):
        if fm_kernel_name(k).decode() == name:
            missing = fm_kernel_missing_features(k)
            if missing == <unsigned>~0u:
                return ("not built for this architecture",)
            names = []
            for bit in range(32):
                if missing & (1u << bit) and fm_cpu_feature_name(1u << bit) != NULL:
                    names.append(fm_cpu_feature_name(1u << bit).decode())
            return tuple(names)
    raise ValueError(f"unknown kernel {name!r}; valid: {', '.join(kernel_names())}")


def emulated_isa():
    """True in a test build whose AVX-512, AVX-VNNI and AMX instructions are emulated (slow)."""
    return bool(fm_emulated_isa())


def active_kernel():
    return fm_kernel_name(fm_active_kernel()).decode()


def default_threads():
    return fm_default_threads()


def default_threads_source():
    """Where default_threads() comes from: "threadpoolctl" (a limit set at run time),
    "OMP_NUM_THREADS" or "cpus" (the CPUs this process may use)."""
    return ("cpus", "OMP_NUM_THREADS", "threadpoolctl")[fm_default_threads_source()]


def set_thread_limit(int n):
    """Limits default_threads() to n for every caller (n <= 0: no limit)."""
    fm_set_thread_limit(n)


# numpy's array flags
cdef enum:
    C_CONTIGUOUS = 0x0001
    ALIGNED = 0x0100
    WRITEABLE = 0x0400

cdef enum:
    # Below this many multiply-adds the GIL is kept: releasing it costs more than the work.
    GIL_RELEASE_MIN_MACS = 4096
    # A cap on any thread count handed to C (the pool has far fewer slots): no machine has
    # more cores, and huge integers never overflow C's int.
    MAX_THREADS = 1 << 16


# -- the C-level API (see _core.pxd) -----------------------------------------------------

cdef int c_api_version() noexcept nogil:
    return FM_C_API_VERSION


cdef int n_inputs(CompiledNetwork net) noexcept nogil:
    return fm_network_n_inputs(net._net) if net._net != NULL else 0


cdef int n_outputs(CompiledNetwork net) noexcept nogil:
    return fm_network_n_outputs(net._net) if net._net != NULL else 0


cdef bint is_double(CompiledNetwork net) noexcept nogil:
    return net._net != NULL and fm_network_is_double(net._net)


cdef int forward_f32(CompiledNetwork net, const float *x, size_t rows, float *out,
                     int threads) noexcept nogil:
    return fm_network_forward_f32(net._net, x, rows, out, threads)


cdef int forward_f64(CompiledNetwork net, const double *x, size_t rows, double *out,
                     int threads) noexcept nogil:
    return fm_network_forward_f64(net._net, x, rows, out, threads)


def c_api():
    """The C API version this build provides (FM_C_API_VERSION)."""
    return c_api_version()


# -- argument checks shared with fastmlp.network ----------------------------------------

def as_real_array(value, what):
    """value as a numpy array of real numbers; ValueError / TypeError naming `what`."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{what} is not a rectangular array of numbers: {error}") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{what} must hold real numbers, got dtype {array.dtype}")
    return array


def check_threads(threads):
    """A validated thread count: 0 for None (the default), capped at MAX_THREADS."""
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    return min(int(threads), MAX_THREADS)


cdef const void *_data(object array):
    """The data of a C-contiguous array the Python layer made in the network's dtype."""
    if array is None:
        return NULL
    return <const void *><size_t>array.__array_interface__["data"][0]


cdef fm_activation _activation(tuple code, object vec):
    cdef fm_activation act
    act.kind = code[0]
    act.p0 = code[1]
    act.p1 = code[2]
    act.vec = _data(vec)
    return act


cdef inline fm_ndarray *_plain_array(object a, object descr, int flags) noexcept:
    """a as a numpy array of exactly dtype descr with these flags, else NULL."""
    if type(a) is not _ndarray:
        return NULL
    cdef fm_ndarray *array = <fm_ndarray *>a
    if array.descr != <PyObject *>descr or (array.flags & flags) != flags:
        return NULL
    return array


cdef int _raise_for(int rc) except -1:
    if rc == FM_ERR_NO_MEMORY:
        raise MemoryError("not enough memory for the network or its scratch tiles")
    if rc != FM_OK:
        raise RuntimeError(f"fastmlp's C core refused the call (status {rc})")
    return 0


cdef class CompiledNetwork:
    """The compiled network: built by fastmlp.Network from validated layers."""

    def __cinit__(self, *args, **kwargs):
        self._net = NULL

    def __dealloc__(self):
        fm_network_free(self._net)

    def _build(self, list steps, bint is_double, int threads, tuple plan=(0, 0, 0, 0)):
        """Build from validated steps, each a tuple whose arrays are C-contiguous in the
        network's dtype: ("dense", w, b, code, vec), ("dense_reduced", precision (1
        bfloat16, 2 int8), uint16 bits / int8 values, float32 scales or None, b, code, vec),
        ("affine", width, scale, shift),
        ("layernorm", width, scale, shift, eps), ("activation", width, code, vec),
        ("begin", width), ("end",); code is (kind, p0, p1), vec None or an array.
        plan: forced choices (tile rows, FM_SPLIT_*, FM_DENSE_*, inputs per block of the
        dense layers), zeros for planned."""
        if self._net != NULL:
            raise RuntimeError("a Network cannot be initialised twice; create a new one")
        cdef fm_plan_options options
        options.tile_rows, options.split, options.dense_method, options.k_block = plan
        cdef fm_network *net = fm_network_new(is_double)
        if net == NULL:
            raise MemoryError("not enough memory for the network")
        try:
            for step in steps:
                _raise_for(_add_step(net, step))
            _raise_for(fm_network_set_plan_options(net, &options))
            _raise_for(fm_network_finish(net))
        except BaseException:
            fm_network_free(net)
            raise
        fm_network_set_threads(net, threads)
        self._net = net

    @property
    def n_inputs(self):
        return n_inputs(self)

    @property
    def n_outputs(self):
        return n_outputs(self)

    @property
    def is_double(self):
        return is_double(self)

    @property
    def dtype(self):
        return _float64 if is_double(self) else _float32

    @property
    def threads(self):
        """The default thread count of this network's calls (0: all cores)."""
        return fm_network_threads(self._net) if self._net != NULL else 0

    @property
    def macs_per_row(self):
        return int(fm_network_macs_per_row(self._net)) if self._net != NULL else 0

    def forward(self, x, out=None, *, threads=None):
        """forward(x, out=None, *, threads=None)

        The network's output for x: shape (N,) gives (M,), (batch, N) gives (batch, M).
        out, if given, must be a C-contiguous writeable array of exactly that shape and
        the network's dtype; it is filled and returned. threads: how many threads this
        call may use (default: the network's setting, else all cores).
        """
        # The fast path: a plain, aligned, C-contiguous array in the network's dtype
        # (and such an out). Anything else, including every error, takes the checked path.
        if self._net == NULL:
            raise RuntimeError("this network was never built")
        cdef int nthreads = 0
        if threads is not None:
            if type(threads) is not int or threads < 1:
                return _forward_checked(self, x, out, threads)
            nthreads = threads if threads < MAX_THREADS else MAX_THREADS
        cdef bint double = fm_network_is_double(self._net)
        cdef object dtype = _float64 if double else _float32
        cdef Py_ssize_t n_in = fm_network_n_inputs(self._net)
        cdef Py_ssize_t n_out = fm_network_n_outputs(self._net)
        cdef fm_ndarray *xa = _plain_array(x, dtype, C_CONTIGUOUS | ALIGNED)
        if xa == NULL or xa.nd < 1 or xa.nd > 2 or xa.dimensions[xa.nd - 1] != n_in:
            return _forward_checked(self, x, out, threads)
        cdef Py_ssize_t rows = xa.dimensions[0] if xa.nd == 2 else 1
        cdef Py_ssize_t itemsize = 8 if double else 4
        cdef fm_ndarray *oa
        cdef npy_intp dims[2]
        if out is None:
            dims[0] = rows
            dims[1] = n_out
            out = PyArray_SimpleNew(xa.nd, &dims[2 - xa.nd], NPY_DOUBLE if double else NPY_FLOAT)
            oa = <fm_ndarray *>out
        else:
            oa = _plain_array(out, dtype, C_CONTIGUOUS | ALIGNED | WRITEABLE)
            if (oa == NULL or oa.nd != xa.nd or oa.dimensions[oa.nd - 1] != n_out
                    or (oa.nd == 2 and oa.dimensions[0] != rows)
                    or (oa.data < xa.data + rows * n_in * itemsize
                        and xa.data < oa.data + rows * n_out * itemsize)):
                return _forward_checked(self, x, out, threads)
        _run(self._net, xa.data, rows, oa.data, nthreads)
        return out

    __call__ = forward

    def _plan(self, size_t rows, int threads):
        """(threads, split_columns, tile_rows, n_tiles, scratch_bytes, tile_bytes, methods)
        of a call of `rows` rows on `threads` threads (0: the default); methods: (FM_DENSE_*
        code, output width, inputs per block) per step, code and block -1 for steps that
        are not dense layers."""
        cdef fm_plan plan
        _raise_for(fm_network_plan(self._net, rows, threads, &plan))
        methods = []
        for step in range(fm_network_n_steps(self._net)):
            method = fm_network_step_method(self._net, rows, threads, step)
            k_block = fm_network_step_k_block(self._net, step)
            if method == FM_ERR_ARGUMENT:
                method = k_block = -1  # not a dense layer
            else:
                _raise_for(min(method, 0))
                _raise_for(min(k_block, 0))
            methods.append((method, fm_network_step_width(self._net, step), k_block))
        return (plan.threads, bool(plan.split_columns), plan.tile_rows, plan.n_tiles,
                plan.scratch_bytes, plan.tile_bytes, tuple(methods))

    def _trace_step(self, int step, bint pre_activation, x):
        """What step `step` outputs for the 2-D batch x (x W + b for a dense step with
        pre_activation); x C-contiguous in the network's dtype."""
        cdef int width = fm_network_step_width(self._net, step)
        _raise_for(min(width, 0))
        out = _empty((x.shape[0], width), self.dtype)
        if x.shape[0] == 0:
            return out
        cdef const void *xp = _data(x)
        cdef void *op = <void *>_data(out)
        cdef size_t rows = x.shape[0]
        cdef int rc
        with nogil:
            if fm_network_is_double(self._net):
                rc = fm_network_trace_f64(self._net, step, pre_activation, <const double *>xp,
                                          rows, <double *>op)
            else:
                rc = fm_network_trace_f32(self._net, step, pre_activation, <const float *>xp,
                                          rows, <float *>op)
        _raise_for(rc)
        return out


cdef int _add_step(fm_network *net, tuple step) except? -100:
    kind = step[0]
    if kind == "dense":
        w, b, code, vec = step[1:]
        return fm_network_dense(net, w.shape[0], w.shape[1], _data(w), _data(b),
                                _activation(code, vec))
    if kind == "dense_reduced":
        precision, w, scales, b, code, vec = step[1:]
        return fm_network_dense_reduced(net, precision, w.shape[0], w.shape[1], _data(w),
                                        <const float *>_data(scales), <const float *>_data(b),
                                        _activation(code, vec))
    if kind == "affine":
        return fm_network_affine(net, step[1], _data(step[2]), _data(step[3]))
    if kind == "layernorm":
        return fm_network_layernorm(net, step[1], _data(step[2]), _data(step[3]), step[4])
    if kind == "activation":
        return fm_network_activation(net, step[1], _activation(step[2], step[3]))
    if kind == "begin":
        return fm_network_residual_begin(net, step[1])
    if kind == "end":
        return fm_network_residual_end(net)
    raise ValueError(f"unknown step kind {kind!r}")


cdef int _run(fm_network *net, const char *x, size_t rows, char *out, int threads) except -1:
    """The compiled pass; the GIL is released when the work is worth it."""
    cdef int rc
    cdef bint double = fm_network_is_double(net)
    if rows * fm_network_macs_per_row(net) < GIL_RELEASE_MIN_MACS:
        threads = 1
        if double:
            rc = fm_network_forward_f64(net, <const double *>x, rows, <double *>out, threads)
        else:
            rc = fm_network_forward_f32(net, <const float *>x, rows, <float *>out, threads)
    else:
        with nogil:
            if double:
                rc = fm_network_forward_f64(net, <const double *>x, rows, <double *>out,
                                            threads)
            else:
                rc = fm_network_forward_f32(net, <const float *>x, rows, <float *>out, threads)
    return _raise_for(rc)


@cython.wraparound(True)
@cython.boundscheck(True)
cdef object _forward_checked(CompiledNetwork self, x, out, threads):
    """Every call the fast path does not take: any array-like input, strides, dtype or
    byte order, and every error, with a message saying what is wrong."""
    cdef int nthreads = check_threads(threads)
    cdef int n_in = n_inputs(self), n_out = n_outputs(self)
    dtype = self.dtype
    x = as_real_array(x, "input")
    if x.ndim not in (1, 2):
        raise ValueError(f"input must be 1-D (one sample of {n_in} values) or 2-D "
                         f"(batch x {n_in}), got shape {x.shape}")
    if x.shape[-1] != n_in:
        raise ValueError(f"input has {x.shape[-1]} values per sample but the network takes "
                         f"{n_in}")
    x = np.ascontiguousarray(x, dtype=dtype)
    shape = x.shape[:-1] + (n_out,)
    if out is None:
        out = _empty(shape, dtype)
    else:
        _check_out(out, shape, dtype)
        if np.may_share_memory(x, out):
            x = x.copy()  # the kernel would read rows it has already overwritten
    cdef Py_ssize_t rows = x.shape[0] if x.ndim == 2 else 1
    if rows:
        _run(self._net, <const char *>_data(x), rows, <char *>_data(out), nthreads)
    return out


cdef _check_out(out, shape, dtype):
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape}; this call's result has shape {shape}")
    if out.dtype != dtype:
        raise ValueError(f"out has dtype {out.dtype}; the network computes in {dtype}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError("out is read-only")


cdef extern from "fastmlp.h":
    const char *fm_activation_name(int kind)
    enum: FM_N_ACTIVATIONS


def activation_codes():
    """The C core's activation codes: {name: code}, the one table fastmlp._activations reads."""
    return dict((fm_activation_name(k).decode(), k) for k in range(FM_N_ACTIVATIONS))
