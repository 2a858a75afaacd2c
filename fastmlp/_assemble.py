"""Checks a list of layers (fastmlp.layers) and turns it into the compiled core's steps.

Every problem is a ValueError or TypeError naming the layer by its position ("layer 2",
"layer 3.1" for the second layer inside the Residual at position 3) and saying what is
wrong; nothing the caller passed is modified (the network keeps read-only copies).
"""

from __future__ import annotations

import math
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from . import _activations
from ._core import as_real_array
from ._quantize import MAX_INT8_INPUTS, REDUCED, QuantizedWeights
from .layers import Activation, Affine, Dense, Layer, LayerNorm, Residual

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Activation parameters that may hold one value per feature instead of one number.
_PER_FEATURE = {("prelu", "slope")}

Step = Tuple[Any, ...]


def resolve_dtype(dtype: Any, arrays: Sequence[np.ndarray]) -> np.dtype:
    """float32 or float64; None: float32 when every array given is float32."""
    if dtype is None:
        floats32 = [a.dtype == np.float32 for a in arrays]
        return np.dtype(np.float32 if floats32 and all(floats32) else np.float64)
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dtype not in _FLOAT_DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def check_finite(array: np.ndarray, what: str, dtype: np.dtype) -> None:
    """array must hold finite values once cast to dtype (1e300 is finite, but not in float32)."""
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} contains NaN or infinity")
    with np.errstate(over="ignore"):
        if not np.all(np.isfinite(array.astype(dtype))):
            largest = float(np.max(np.abs(array)))
            raise ValueError(f"{what} holds {largest:g}, which overflows {dtype.name} "
                             f"(largest finite: {float(np.finfo(dtype).max):g})")


def read_only(array: Any, dtype: np.dtype) -> np.ndarray:
    copy = np.array(array, dtype=dtype, order="C", copy=True)
    copy.setflags(write=False)
    return copy


def check_params_fit(name: str, params: dict, dtype: np.dtype, where: str) -> None:
    """Activation parameters must stay finite in the network's dtype (a slope of 1e300 is
    inf in float32, and inf * 0 would turn zeros into NaN)."""
    with np.errstate(over="ignore"):
        for key, value in params.items():
            if np.ndim(value) == 0 and np.isfinite(value) and not np.isfinite(dtype.type(value)):
                raise ValueError(f"{where}: {name} parameter {key!r} = {value:g} overflows "
                                 f"{dtype.name}")


class Assembler:
    """Walks the layers once: widths, checks, the network's copies and the core's steps."""

    def __init__(self, dtype: np.dtype, precision: Optional[str] = None) -> None:
        self.dtype = dtype
        # bfloat16 / int8: every Dense layer's weights in that precision (float32 networks)
        self.reduced = precision if precision in REDUCED else None
        self.width: Optional[int] = None
        self.steps: List[Step] = []

    def layers(self, layers: Sequence[Any], prefix: str = "") -> Tuple[Layer, ...]:
        copies = []
        for i, layer in enumerate(layers):
            where = f"layer {prefix}{i}"
            if type(layer) not in (Dense, Affine, LayerNorm, Activation, Residual):
                raise TypeError(f"{where} is a {type(layer).__name__}, not a fastmlp layer "
                                "(Dense, Affine, LayerNorm, Activation or Residual)")
            convert = {Dense: self._dense, Affine: self._affine, LayerNorm: self._layernorm,
                       Activation: self._activation_layer, Residual: self._residual}
            copies.append(convert[type(layer)](layer, where))
        return tuple(copies)

    # -- one method per kind --------------------------------------------------------------

    def _dense(self, layer: Dense, where: str) -> Dense:
        quantized = layer.weights if isinstance(layer.weights, QuantizedWeights) else None
        if quantized is not None and quantized.precision != self.reduced:
            quantized = None  # dequantized, then kept in this network's precision
        w = (quantized.dequantize() if quantized is not None else
             as_real_array(layer.weights, f"{where}: weights"))
        if w.ndim != 2:
            raise ValueError(f"{where}: weights must be 2-D (inputs x outputs), got shape {w.shape}")
        n_in, n_out = w.shape
        if 0 in w.shape:
            raise ValueError(f"{where}: weights have shape {w.shape}; a dense layer needs at "
                             "least one input and one output")
        self._expect_width(n_in, where, f"Dense with weights of shape {w.shape}")
        check_finite(w, f"{where}: weights", self.dtype)
        b = None
        if layer.bias is not None:
            b = as_real_array(layer.bias, f"{where}: bias")
            if b.shape not in ((n_out,), (n_out, 1), (1, n_out)):
                raise ValueError(f"{where}: bias has shape {b.shape}; the layer has {n_out} "
                                 f"outputs, so expected ({n_out},)")
            check_finite(b, f"{where}: bias", self.dtype)
            b = b.reshape(n_out)
        bias = read_only(np.zeros(n_out) if b is None else b, self.dtype)
        spec, code, vec = self._activation(layer.activation, n_out, where)
        self.width = n_out
        if self.reduced:
            if quantized is None:
                quantized = self._quantize(w, where)
            values, scales = quantized.values, quantized.scales
            precision = 1 if self.reduced == "bfloat16" else 2
            self.steps.append(("dense_reduced", precision, values, scales, bias, code, vec))
            return Dense(quantized, bias, spec)
        weights = read_only(w, self.dtype)
        self.steps.append(("dense", weights, bias, code, vec))
        return Dense(weights, bias, spec)

    def _quantize(self, w: np.ndarray, where: str) -> QuantizedWeights:
        """The layer's weights (float64 where they came so) in the network's precision."""
        if self.reduced == "int8" and w.shape[0] > MAX_INT8_INPUTS:
            raise ValueError(f"{where}: int8 layers take at most {MAX_INT8_INPUTS:,} inputs "
                             f"(their int32 sums would overflow), this one has {w.shape[0]:,}")
        quantized = QuantizedWeights.quantize(self.reduced, w)
        with np.errstate(over="ignore", invalid="ignore"):
            if not np.all(np.isfinite(quantized.dequantize())):
                raise ValueError(f"{where}: weights of {float(np.max(np.abs(w))):g} overflow "
                                 f"{self.reduced}")
        return quantized

    def _affine(self, layer: Affine, where: str) -> Affine:
        scale, shift = (self._per_feature(v, where, what)
                        for v, what in ((layer.scale, "scale"), (layer.shift, "shift")))
        width = self._width_of(where, scale, shift)
        scale, shift = (None if v is None else read_only(np.broadcast_to(v, width), self.dtype)
                        for v in (scale, shift))
        self.steps.append(("affine", width, scale, shift))
        return Affine(scale, shift)

    def _layernorm(self, layer: LayerNorm, where: str) -> LayerNorm:
        weight, bias = (self._per_feature(v, where, what, vector=True)
                        for v, what in ((layer.weight, "weight"), (layer.bias, "bias")))
        if layer.width is not None:
            if isinstance(layer.width, bool) or not isinstance(layer.width, (int, np.integer)) \
                    or layer.width < 1:
                raise ValueError(f"{where}: width must be a positive integer, got {layer.width!r}")
            self._expect_width(int(layer.width), where, f"LayerNorm(width={layer.width})")
        width = self._width_of(where, weight, bias)
        eps = layer.eps
        if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)) \
                or not math.isfinite(eps) or eps < 0:
            raise ValueError(f"{where}: eps must be a finite number >= 0, got {eps!r}")
        weight, bias = (None if v is None else read_only(v, self.dtype) for v in (weight, bias))
        self.steps.append(("layernorm", width, weight, bias, float(eps)))
        return LayerNorm(weight, bias, float(eps), width)

    def _activation_layer(self, layer: Activation, where: str) -> Activation:
        if self.width is None:
            raise ValueError(f"{where}: an Activation first needs a layer that sets the width "
                             "(a Dense, or an Affine / LayerNorm with per-feature values)")
        spec, code, vec = self._activation(layer.activation, self.width, where)
        self.steps.append(("activation", self.width, code, vec))
        return Activation(spec)

    def _residual(self, layer: Residual, where: str) -> Residual:
        inner = layer.layers
        if not isinstance(inner, (list, tuple)) or not inner:
            raise ValueError(f"{where}: a Residual needs a non-empty list of layers")
        if self.width is None:
            raise ValueError(f"{where}: a Residual first needs a layer that sets the width")
        width = self.width
        self.steps.append(("begin", width))
        copies = self.layers(inner, prefix=f"{where[len('layer '):]}.")
        if self.width != width:
            raise ValueError(f"{where}: its layers turn {width} features into {self.width}, "
                             f"so x + f(x) cannot be formed")
        self.steps.append(("end",))
        return Residual(copies)

    # -- helpers -------------------------------------------------------------------------

    def _expect_width(self, width: int, where: str, what: str) -> None:
        if self.width is not None and width != self.width:
            raise ValueError(f"{where} ({what}) takes {width} features but the layer before "
                             f"it gives {self.width}")
        self.width = width

    def _per_feature(self, value: Any, where: str, what: str, vector: bool = False):
        if value is None:
            return None
        array = as_real_array(value, f"{where}: {what}")
        if array.ndim > 1 or (vector and array.ndim == 0):
            kind = "a vector" if vector else "a number or a vector"
            raise ValueError(f"{where}: {what} must be {kind} with one value per feature, "
                             f"got shape {array.shape}")
        if array.ndim == 1 and array.size == 0:
            raise ValueError(f"{where}: {what} is empty")
        check_finite(array, f"{where}: {what}", self.dtype)
        return array

    def _width_of(self, where: str, *values: Optional[np.ndarray]) -> int:
        for value in values:
            if value is not None and value.ndim == 1:
                self._expect_width(len(value), where, f"{len(value)} per-feature values")
        if self.width is None:
            raise ValueError(f"{where}: cannot tell how many features it has: give per-feature "
                             "vectors, a width, or put it after a Dense layer")
        return self.width

    def _activation(self, spec: Any, width: int, where: str):
        """(canonical spec, code triple, per-feature vector or None) of an activation."""
        vec = None
        if isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[1], dict):
            name, params = spec
            for key, value in list(params.items()):
                if np.ndim(value) > 0 and isinstance(name, str) and \
                        (_activations.canonical_name(name), key) in _PER_FEATURE:
                    vec = self._per_feature(value, where, f"{name} {key}", vector=True)
                    if len(vec) != width:
                        raise ValueError(f"{where}: {name} {key} has {len(vec)} values for "
                                         f"{width} features")
                    params = {**params, key: 0.0}
            spec = (name, params)
        try:
            name, params, code = _activations.resolve(spec)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{where}: {exc}") from None
        check_params_fit(name, params, self.dtype, f"{where}: activation")
        if vec is not None:
            vec = read_only(vec, self.dtype)
            params = {**params, "slope": vec}
        return (name, params), code, vec


def collect_arrays(layers: Sequence[Any]) -> List[np.ndarray]:
    """The arrays among the layers' values, for choosing the default dtype."""
    found: List[np.ndarray] = []
    for layer in layers:
        if isinstance(layer, Residual) and isinstance(layer.layers, (list, tuple)):
            found += collect_arrays(layer.layers)
        elif isinstance(layer, Layer):
            for key in layer.__slots__:
                value = getattr(layer, key)
                if isinstance(value, np.ndarray):
                    found.append(value)
    return found
