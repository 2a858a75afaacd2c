"""The public Network class: validation and friendly errors in front of the compiled core."""
import numpy as np

from . import _activations
from ._core import CompiledNetwork

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _numeric_array(value, what):
    """value as an array of real numbers, or a TypeError naming what it is."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{what} is not a rectangular array of numbers: {error}") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{what} must hold real numbers, got dtype {array.dtype}")
    return array


def _check_finite(array, what, dtype):
    """array must hold finite values once cast to dtype (1e300 is finite, but not in float32)."""
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} contains NaN or infinity")
    with np.errstate(over="ignore"):
        if not np.all(np.isfinite(array.astype(dtype))):
            largest = float(np.max(np.abs(array)))
            raise ValueError(f"{what} holds {largest:g}, which overflows {dtype.name} "
                             f"(largest finite: {float(np.finfo(dtype).max):g})")


def _resolve_dtype(dtype, weights):
    if dtype is None:
        return np.dtype(np.float32) if all(w.dtype == np.float32 for w in weights) else np.dtype(np.float64)
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dtype not in _FLOAT_DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


# No machine has more cores than this; larger requests are capped (the pool uses at most
# the cores there are anyway), so huge integers never overflow the C int they become.
_MAX_THREADS = 1 << 16


def _check_threads(threads):
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    return min(int(threads), _MAX_THREADS)


def _as_sequence(value, what):
    if isinstance(value, np.ndarray) or not isinstance(value, (list, tuple)):
        raise TypeError(f"{what} must be a list or tuple with one entry per layer, "
                        f"got {type(value).__name__}")
    return list(value)


def _validate_weights(weights):
    weights = [_numeric_array(w, f"weights of layer {l}") for l, w in enumerate(weights)]
    if not weights:
        raise ValueError("a network needs at least one layer; weights is empty")
    for l, w in enumerate(weights):
        if w.ndim != 2:
            raise ValueError(f"weights of layer {l} must be 2-D (inputs x outputs), "
                             f"got shape {w.shape}")
        if 0 in w.shape:
            raise ValueError(f"weights of layer {l} have shape {w.shape}; "
                             "every layer needs at least one input and one output")
        if l and w.shape[0] != weights[l - 1].shape[1]:
            raise ValueError(f"layer {l} has {w.shape[0]} inputs (weights of shape {w.shape}) "
                             f"but layer {l - 1} has {weights[l - 1].shape[1]} outputs "
                             f"(weights of shape {weights[l - 1].shape})")
    return weights


def _check_weights_finite(weights, dtype):
    for l, w in enumerate(weights):
        _check_finite(w, f"weights of layer {l}", dtype)


def _validate_biases(biases, weights, dtype):
    if biases is None:
        biases = [None] * len(weights)
    biases = _as_sequence(biases, "biases")
    if len(biases) != len(weights):
        raise ValueError(f"got {len(biases)} biases for {len(weights)} layers")
    checked = []
    for l, (b, w) in enumerate(zip(biases, weights)):
        n_out = w.shape[1]
        if b is None:
            checked.append(np.zeros(n_out))
            continue
        b = _numeric_array(b, f"bias of layer {l}")
        if b.shape not in ((n_out,), (n_out, 1), (1, n_out)):
            raise ValueError(f"bias of layer {l} has shape {b.shape}; layer {l} has {n_out} "
                             f"outputs, so expected ({n_out},), ({n_out}, 1) or (1, {n_out})")
        _check_finite(b, f"bias of layer {l}", dtype)
        checked.append(b.reshape(n_out))
    return checked


def _validate_activations(activations, n_layers):
    single = isinstance(activations, str) or (
        isinstance(activations, tuple) and len(activations) == 2
        and isinstance(activations[0], str) and isinstance(activations[1], dict))
    specs = [activations] if single else _as_sequence(activations, "activations")
    if len(specs) == 1:
        specs = specs * n_layers
    if len(specs) != n_layers:
        raise ValueError(f"got {len(specs)} activations for {n_layers} layers; "
                         "give one for every layer, or one for all")
    return [_activations.resolve(spec) for spec in specs]


def _check_params_fit(resolved, dtype):
    """Activation parameters must stay finite in the network's dtype (a slope of 1e300 is
    inf in float32, and inf * 0 would turn zeros into NaN)."""
    with np.errstate(over="ignore"):
        for l, (name, params, _) in enumerate(resolved):
            for key, value in params.items():
                if np.isfinite(value) and not np.isfinite(dtype.type(value)):
                    raise ValueError(f"activation of layer {l}: {name} parameter {key!r} = "
                                     f"{value:g} overflows {dtype.name}")


def _read_only_copy(array, dtype):
    copy = np.array(array, dtype=dtype, order="C", copy=True)
    copy.setflags(write=False)
    return copy


class Network(CompiledNetwork):
    """A fully connected network, run by the compiled core.

    Network(weights, biases, activations, dtype=None, threads=None)

    weights: one (N, M) array per layer (N inputs, M outputs); biases: None or one
    entry per layer (None, or M values as (M,), (M, 1) or (1, M)); activations: one
    name for all layers or one per layer, each a name or (name, params); dtype:
    float32 or float64 (None: float32 when every weight is float32); threads: the
    default number of threads a call may use (None: all cores).
    """

    def __init__(self, weights, biases, activations, dtype=None, threads=None):
        if getattr(self, "_weights", None) is not None:
            # The compiled layers cannot be replaced; changing only the Python side would
            # describe one network and compute another.
            raise RuntimeError("a Network cannot be initialised twice; create a new one")
        weights = _validate_weights(_as_sequence(weights, "weights"))
        dtype = _resolve_dtype(dtype, weights)
        _check_weights_finite(weights, dtype)
        biases = _validate_biases(biases, weights, dtype)
        resolved = _validate_activations(activations, len(weights))
        _check_params_fit(resolved, dtype)
        threads = _check_threads(threads)
        self._weights = tuple(_read_only_copy(w, dtype) for w in weights)
        self._biases = tuple(_read_only_copy(b, dtype) for b in biases)
        self._activations = tuple(name for name, _, _ in resolved)
        self._activation_params = tuple(params for _, params, _ in resolved)
        self._build(list(self._weights), list(self._biases), [codes for _, _, codes in resolved],
                    dtype == np.float64, threads)

    # -- description ---------------------------------------------------------------
    @property
    def shapes(self):
        return [w.shape for w in self._weights]

    @property
    def weights(self):
        return self._weights

    @property
    def biases(self):
        return self._biases

    @property
    def activations(self):
        return self._activations

    @property
    def activation_params(self):
        return tuple(dict(p) for p in self._activation_params)

    def __len__(self):
        return len(self._weights)

    def __repr__(self):
        widths = " -> ".join(str(n) for n in [self.n_inputs] + [m for _, m in self.shapes])
        acts = ", ".join(name + (f"({', '.join(f'{k}={v}' for k, v in p.items())})" if p else "")
                         for name, p in zip(self._activations, self._activation_params))
        return f"Network({widths}, activations=[{acts}], dtype={self.dtype.name})"

    def __reduce__(self):
        specs = list(zip(self._activations, self._activation_params))
        threads = self.threads or None
        return (Network, (list(self._weights), list(self._biases), specs, self.dtype.name, threads))

    def save(self, path):
        """Save to fastmlp's own model file (.npz, or .safetensors with that extra)."""
        from . import io
        io.save(self, path)

    # -- compute -------------------------------------------------------------------
    def _prepare_input(self, x):
        x = _numeric_array(x, "input")
        if x.ndim not in (1, 2):
            raise ValueError(f"input must be 1-D (one sample of {self.n_inputs} values) or 2-D "
                             f"(batch x {self.n_inputs}), got shape {x.shape}")
        if x.shape[-1] != self.n_inputs:
            raise ValueError(f"input has {x.shape[-1]} values per sample but the network takes "
                             f"{self.n_inputs} (layer 0 weights of shape {self.shapes[0]})")
        return np.ascontiguousarray(x, dtype=self.dtype)

    def _check_out(self, out, shape):
        if not isinstance(out, np.ndarray):
            raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
        if out.shape != shape:
            raise ValueError(f"out has shape {out.shape}; this call's result has shape {shape}")
        if out.dtype != self.dtype:
            raise ValueError(f"out has dtype {out.dtype}; the network computes in {self.dtype}")
        if not out.flags.c_contiguous:
            raise ValueError("out must be C-contiguous")
        if not out.flags.writeable:
            raise ValueError("out is read-only")

    def _forward_slow(self, x, out, threads):
        """Every call that is not already contiguous, in the network's dtype, with a valid out."""
        nthreads = _check_threads(threads) if threads is not None else self.threads
        x = self._prepare_input(x)
        shape = x.shape[:-1] + (self.n_outputs,)
        if out is None:
            out = np.empty(shape, dtype=self.dtype)
        else:
            self._check_out(out, shape)
            if np.may_share_memory(x, out):
                x = x.copy()  # the kernel would read rows it has already overwritten
        self._forward_into(x.reshape(-1, self.n_inputs), out.reshape(-1, self.n_outputs), nthreads)
        return out

    def trace(self, x):
        """Every layer's aggregation and activation: a list of (z, a), one pair per layer."""
        x = self._prepare_input(x)
        one_sample = x.ndim == 1
        a = x.reshape(-1, self.n_inputs)
        steps = []
        for index, (_, n_out) in enumerate(self.shapes):
            z = np.empty((a.shape[0], n_out), dtype=self.dtype)
            self._layer(index, a, z, False)
            a = z.copy()
            self._activate(index, a)
            steps.append((z[0] if one_sample else z, a[0] if one_sample else a))
        return steps
