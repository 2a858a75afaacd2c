"""The public Network class: validation and friendly errors in front of the compiled core.

A Network is built from a list of layers (fastmlp.layers), or from the classic
(weights, biases, activations) of a chain of dense layers, which becomes a list of Dense
layers after the same checks as before.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ._assemble import Assembler, check_finite, collect_arrays, resolve_dtype
from ._core import CompiledNetwork, as_real_array, check_threads
from ._quantize import REDUCED, canonical_precision
from .layers import Dense, Layer, Residual

_numeric_array = as_real_array


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
        check_finite(w, f"weights of layer {l}", dtype)


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
        check_finite(b, f"bias of layer {l}", dtype)
        checked.append(b.reshape(n_out))
    return checked


def _dense_layers(weights, biases, activations, dtype) -> List[Dense]:
    """The classic arguments, checked with messages naming the layer, as Dense layers."""
    weights = _validate_weights(_as_sequence(weights, "weights"))
    dtype = resolve_dtype(dtype, weights)
    _check_weights_finite(weights, dtype)
    biases = _validate_biases(biases, weights, dtype)
    specs = _activation_specs(activations, len(weights))
    return [Dense(w, b, spec) for w, b, spec in zip(weights, biases, specs)], dtype


def _activation_specs(activations, n_layers):
    single = isinstance(activations, str) or (
        isinstance(activations, tuple) and len(activations) == 2
        and isinstance(activations[0], str) and isinstance(activations[1], dict))
    specs = [activations] if single else _as_sequence(activations, "activations")
    if len(specs) == 1:
        specs = specs * n_layers
    if len(specs) != n_layers:
        raise ValueError(f"got {len(specs)} activations for {n_layers} layers; "
                         "give one for every layer, or one for all")
    return specs


def _as_array(weights: Any) -> np.ndarray:
    if isinstance(weights, np.ndarray):
        return weights
    values = np.asarray(weights)  # the float32 values of reduced-precision weights
    values.setflags(write=False)
    return values


def _is_layer_list(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(
        isinstance(v, Layer) for v in value)


def _dense_of(layers) -> List[Dense]:
    """The Dense layers, in order, Residual blocks included."""
    found = []
    for layer in layers:
        if isinstance(layer, Dense):
            found.append(layer)
        elif isinstance(layer, Residual):
            found += _dense_of(layer.layers)
    return found


def _trace_names(layers) -> List[Any]:
    """The layer each core step after a residual begin stands for (a Residual for its add)."""
    names = []
    for layer in layers:
        if isinstance(layer, Residual):
            names += [None] + _trace_names(layer.layers) + [layer]
        else:
            names.append(layer)
    return names


class Network(CompiledNetwork):
    """A fully connected network, run by the compiled core.

    Network(layers, dtype=None, threads=None)
    Network(weights, biases, activations, dtype=None, threads=None)

    layers: a list of fastmlp.layers objects (Dense, Affine, LayerNorm, Activation,
    Residual). Or the classic form: weights, one (N, M) array per layer (N inputs, M
    outputs); biases: None or one entry per layer (None, or M values as (M,), (M, 1) or
    (1, M)); activations: one name for all layers or one per layer, each a name or (name,
    params). dtype: float32 or float64 (None: float32 when every array given is float32);
    threads: the default number of threads a call may use (None: all cores); precision:
    None (the dtype's), "bfloat16" ("bf16") or "int8" to store every Dense layer's weights
    so (inputs and outputs then float32; see ``quantize``); n_inputs: the input's width,
    needed only when the first layer does not tell it (an Activation, a Residual, an
    Affine of numbers).
    """

    # Forced plan choices (fastmlp._plan.options), for tests; zeros: the core plans.
    _plan_options: Tuple[int, int, int, int] = (0, 0, 0, 0)

    def __init__(self, weights: Any, biases: Any = None, activations: Any = None,
                 dtype: Any = None, threads: Optional[int] = None,
                 precision: Optional[str] = None, n_inputs: Optional[int] = None) -> None:
        requested_dtype = dtype
        if getattr(self, "_layers", None) is not None:
            # The compiled layers cannot be replaced; changing only the Python side would
            # describe one network and compute another.
            raise RuntimeError("a Network cannot be initialised twice; create a new one")
        if _is_layer_list(weights):
            if biases is not None or activations is not None:
                raise TypeError("a Network made of layers takes no biases or activations "
                                "arguments (they belong to the Dense layers)")
            layers = list(weights)
            dtype = resolve_dtype(dtype, collect_arrays(layers))
        else:
            if activations is None:
                raise TypeError("Network(weights, biases, activations) needs activations (one "
                                "name for all layers or one per layer), or pass a list of "
                                "fastmlp.layers objects")
            layers, dtype = _dense_layers(weights, biases, activations, dtype)
        threads = check_threads(threads)
        precision = dtype.name if precision is None else canonical_precision(precision)
        if precision in REDUCED:
            if requested_dtype is not None and dtype != np.float32:
                raise ValueError(f"{precision} networks compute in float32; dtype "
                                 f"{dtype.name} is not possible with them")
            dtype = np.dtype(np.float32)
        elif np.dtype(precision) != dtype:
            raise ValueError(f"precision {precision} contradicts dtype {dtype.name}")
        self._precision = precision
        assembler = Assembler(dtype, precision)
        if n_inputs is not None:
            if isinstance(n_inputs, bool) or not isinstance(n_inputs, (int, np.integer)) \
                    or n_inputs < 1:
                raise ValueError(f"n_inputs must be a positive integer, got {n_inputs!r}")
            assembler.width = int(n_inputs)
        self._layers = assembler.layers(layers)
        self._dense = tuple(_dense_of(self._layers))
        self._build(assembler.steps, dtype == np.float64, threads, self._plan_options)

    # -- description ---------------------------------------------------------------
    @property
    def layers(self) -> Tuple[Layer, ...]:
        """The layers, with read-only arrays in the network's dtype."""
        return self._layers

    @property
    def precision(self) -> str:
        """How the Dense layers store their weights: "float32", "float64", "bfloat16" or
        "int8" (the last two compute in float32)."""
        return self._precision

    @property
    def shapes(self) -> List[Tuple[int, int]]:
        """(inputs, outputs) of each Dense layer."""
        return [d.weights.shape for d in self._dense]

    @property
    def weights(self) -> Tuple[np.ndarray, ...]:
        """The weights of each Dense layer (N inputs x M outputs), as the network uses them
        (float32 values of reduced-precision weights)."""
        return tuple(_as_array(d.weights) for d in self._dense)

    @property
    def biases(self) -> Tuple[np.ndarray, ...]:
        return tuple(d.bias for d in self._dense)

    @property
    def activations(self) -> Tuple[str, ...]:
        """The activation name of each Dense layer."""
        return tuple(d.activation[0] for d in self._dense)

    @property
    def activation_params(self) -> Tuple[dict, ...]:
        return tuple(dict(d.activation[1]) for d in self._dense)

    @property
    def is_dense_chain(self) -> bool:
        """True when the network is only Dense layers (the classic form)."""
        return len(self._dense) == len(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def __repr__(self) -> str:
        if self.is_dense_chain:
            widths = " -> ".join(str(n) for n in [self.n_inputs] + [m for _, m in self.shapes])
            acts = ", ".join(
                name + (f"({', '.join(f'{k}={v}' for k, v in p.items())})" if p else "")
                for name, p in zip(self.activations, self.activation_params))
            return (f"Network({widths}, activations=[{acts}], dtype={self.dtype.name}"
                    f"{self._precision_text()})")
        inner = ", ".join(repr(layer) for layer in self._layers)
        return (f"Network({self.n_inputs} -> {self.n_outputs}: [{inner}], "
                f"dtype={self.dtype.name}{self._precision_text()})")

    def _precision_text(self) -> str:
        return f", precision={self._precision}" if self._precision in REDUCED else ""

    def __reduce__(self):
        threads = self.threads or None
        return (Network, (list(self._layers), None, None, self.dtype.name, threads,
                          self._precision, self.n_inputs))

    def quantize(self, precision: str) -> "Network":
        """A new Network whose Dense weights are stored in `precision`: "bfloat16" (alias
        "bf16") or "int8" (symmetric, one scale per output column). Inputs and outputs are
        float32; a float64 network is quantized from its float64 weights. Each layer's
        inputs are rounded to bfloat16, or quantized to int8 with each row's own scale,
        so a row's result never depends on the other rows of the batch."""
        precision = canonical_precision(precision)
        if precision not in REDUCED:
            raise ValueError(f"quantize takes bfloat16 or int8, got {precision}; for float32 "
                             "or float64 use astype")
        return Network(list(self._layers), dtype="float32", threads=self.threads or None,
                       precision=precision, n_inputs=self.n_inputs)

    def astype(self, dtype: Any) -> "Network":
        """The same layers computing in another dtype (float32 or float64); reduced weights
        become their float values."""
        return Network(list(self._layers), dtype=dtype, threads=self.threads or None,
                       n_inputs=self.n_inputs)

    def save(self, path) -> None:
        """Save to fastmlp's own model file (.npz, or .safetensors with that extra)."""
        from . import io
        io.save(self, path)

    def plan(self, batch: int = 1, threads: Optional[int] = None) -> Dict[str, Any]:
        """How a call with `batch` rows on `threads` threads (None: this network's default)
        runs: the kernel variant, the threads and how they share the work ("rows": tiles of
        rows over the threads, "columns": each dense layer's columns, "none": one thread),
        the rows per tile, the tiles, the scratch memory beyond input and output (and the
        scratch a tile aims at: half of one core's L2, read from the CPU), and per
        step how each Dense layer runs ("panels", "narrow", "one row", "reduced
        precision") and, for panels, how many inputs it sums per block. No choice changes
        any row's result."""
        from . import _plan  # on demand: import fastmlp stays light

        return _plan.describe(self, batch, threads, _trace_names(self._layers))

    def _with_plan(self, tile_rows: int = 0, split: str = "auto",
                   dense: str = "auto", k_block: int = 0) -> "Network":
        """The same network with plan choices forced (for tests comparing plans): rows per
        tile (0: planned), split "auto", "rows" or "columns", dense "auto", "panels" or
        "narrow" (narrow applies to layers of at most one panel of outputs), inputs per
        block of the panels (0: planned)."""
        from . import _plan

        forced = Network.__new__(Network)
        forced._plan_options = _plan.options(tile_rows, split, dense, k_block)
        forced.__init__(list(self._layers), dtype=self.dtype, threads=self.threads or None,
                        precision=self._precision, n_inputs=self.n_inputs)
        return forced

    # -- compute -------------------------------------------------------------------
    def trace(self, x: Any) -> List[Tuple[np.ndarray, np.ndarray]]:
        """Each layer's output, in order: (z, a) per Dense layer (z = x W + b before the
        activation, a after it); for every other layer (a, a). A Residual contributes its
        inner layers, then its sum x + f(x)."""
        x = as_real_array(x, "input")
        one_sample = x.ndim == 1
        if x.ndim not in (1, 2) or x.shape[-1] != self.n_inputs:
            self.forward(x)  # raises the error the forward pass gives
        batch = np.ascontiguousarray(x.reshape(-1, self.n_inputs), dtype=self.dtype)
        steps = []
        for index, layer in enumerate(_trace_names(self._layers)):
            if layer is None:
                continue  # the start of a residual block outputs nothing new
            a = self._trace_step(index, False, batch)
            z = self._trace_step(index, True, batch) if isinstance(layer, Dense) else a
            steps.append((z[0], a[0]) if one_sample else (z, a))
        return steps
