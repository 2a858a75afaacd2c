"""What a model file says: a network as metadata (JSON) plus named arrays, and back.

Version 1 (a chain of dense layers; written whenever a network is one, so older fastmlp
versions read it): ``{"format": "fastmlp", "version": 1, "dtype": ..., "layers":
[{"activation": name, "params": {...}}, ...]}`` with arrays ``w0, b0, w1, b1, ...``.

Version 2 (any list of layers; ``"inputs"`` the input width, ``"precision"`` bfloat16 or
int8 for reduced weights): ``"layers"`` holds one entry per layer with its ``"kind"``:

- ``{"kind": "dense", "activation": name, "params": {...}}``, arrays ``P.weights``, ``P.bias``
- ``{"kind": "affine", "scale": bool, "shift": bool}``, arrays ``P.scale`` / ``P.shift``
- ``{"kind": "layernorm", "eps": x, "width": n, "weight": bool, "bias": bool}``,
  arrays ``P.weight`` / ``P.bias``
- ``{"kind": "activation", "activation": name, "params": {...}}``
- ``{"kind": "residual", "layers": [...]}``

where ``P`` is the layer's path (``l0``, ``l3.1`` for the second layer inside the Residual
at position 3). A per-feature activation parameter (PReLU's slopes) is the string
``"array"`` in ``params`` and the array ``P.<name>``. Infinite numbers are the strings
``"inf"`` / ``"-inf"`` (strict JSON has none). Every failure raises :class:`Invalid`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

from ._quantize import REDUCED, QuantizedWeights

FORMAT = "fastmlp"
VERSION = 2
DTYPES = ("float32", "float64")
_ARRAY = "array"  # marks a parameter stored as an array


class Invalid(ValueError):
    """A file that is not a valid fastmlp model; the message says why."""


# -- writing --------------------------------------------------------------------------------

def describe(net) -> Tuple[dict, Dict[str, np.ndarray]]:
    """The metadata and arrays that stand for ``net`` (version 1 when it allows)."""
    from .layers import Dense

    vector_params = any(np.ndim(v) for layer in net.layers if isinstance(layer, Dense)
                        for v in layer.activation[1].values())
    dtype = np.dtype(net.dtype).name
    reduced = net.precision in REDUCED
    if net.is_dense_chain and not vector_params and not reduced:
        arrays = {}
        for i, layer in enumerate(net.layers):
            arrays[f"w{i}"], arrays[f"b{i}"] = layer.weights, layer.bias
        layers = [{"activation": layer.activation[0], "params": _numbers(layer.activation[1])}
                  for layer in net.layers]
        return {"format": FORMAT, "version": 1, "dtype": dtype, "layers": layers}, arrays
    arrays = {}
    layers = [_describe(layer, f"l{i}", arrays) for i, layer in enumerate(net.layers)]
    metadata = {"format": FORMAT, "version": 2, "dtype": dtype, "inputs": net.n_inputs,
                "layers": layers}
    if reduced:
        metadata["precision"] = net.precision
    return metadata, arrays


def _describe(layer, path: str, arrays: dict) -> dict:
    from .layers import Activation, Affine, Dense, LayerNorm, Residual

    def store(name, value):
        if value is not None:
            arrays[f"{path}.{name}"] = np.ascontiguousarray(value)
        return value is not None

    def activation(spec):
        name, params = spec
        out = {}
        for key, value in params.items():
            out[key] = _ARRAY if np.ndim(value) and store(key, value) else _number(value)
        return {"activation": name, "params": out}

    if isinstance(layer, Dense):
        if isinstance(layer.weights, QuantizedWeights):
            store("weights", layer.weights.values)
            store("scales", layer.weights.scales)
        else:
            store("weights", layer.weights)
        store("bias", layer.bias)
        return {"kind": "dense", **activation(layer.activation)}
    if isinstance(layer, Affine):
        return {"kind": "affine", "scale": store("scale", layer.scale),
                "shift": store("shift", layer.shift)}
    if isinstance(layer, LayerNorm):
        return {"kind": "layernorm", "eps": layer.eps, "width": layer.width,
                "weight": store("weight", layer.weight), "bias": store("bias", layer.bias)}
    if isinstance(layer, Activation):
        return {"kind": "activation", **activation(layer.activation)}
    if isinstance(layer, Residual):
        return {"kind": "residual", "layers": [
            _describe(inner, f"{path}.{i}", arrays) for i, inner in enumerate(layer.layers)]}
    raise TypeError(f"cannot describe {layer!r}")


def _number(value: Any) -> Any:
    value = float(value) if isinstance(value, (np.floating, np.integer)) else value
    return value if not isinstance(value, float) or math.isfinite(value) else str(value)


def _numbers(params: dict) -> dict:
    return {k: _number(v) for k, v in params.items()}


# -- reading --------------------------------------------------------------------------------

def check_header(metadata: dict) -> Tuple[int, str, list]:
    """(version, dtype, layers) of metadata whose format, version and dtype are valid."""
    if metadata.get("format") != FORMAT:
        raise Invalid(f"format is {metadata.get('format')!r}, expected {FORMAT!r}")
    version = metadata.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise Invalid(f"bad format version {version!r}")
    if version > VERSION:
        raise Invalid(f"format version {version} was written by a newer fastmlp; "
                      f"this one reads versions up to {VERSION}")
    dtype = metadata.get("dtype")
    if dtype not in DTYPES:
        raise Invalid(f"dtype is {dtype!r}, expected one of {', '.join(DTYPES)}")
    layers = metadata.get("layers")
    if not isinstance(layers, list) or not layers:
        raise Invalid("'layers' is missing or empty")
    precision = metadata.get("precision", dtype)
    if precision != dtype and (precision not in REDUCED or dtype != "float32" or version < 2):
        raise Invalid(f"precision {precision!r} is not one of bfloat16, int8 (with dtype "
                      f"float32) or the dtype")
    return version, dtype, layers


def inputs_of(metadata: dict) -> Any:
    """The declared input width (version 2), or None."""
    n = metadata.get("inputs")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise Invalid(f"'inputs' must be a positive integer, got {n!r}")
    return n


def precision_of(metadata: dict) -> str:
    """The network's precision (its dtype, bfloat16 or int8), of checked metadata."""
    return metadata.get("precision", metadata["dtype"])


def check_arrays(metadata: dict, arrays: Dict[str, Any]) -> None:
    """The arrays (real ones, or headers with .dtype / .shape / .ndim) are exactly those the
    metadata names, each of the file's dtype, with shapes that fit together; checked before
    any data is read, so a file cannot make fastmlp read or inflate what it cannot use."""
    version, dtype, layers = check_header(metadata)
    walk = _Walk(np.dtype(dtype), lambda name: arrays.get(name), precision=precision_of(metadata))
    if version == 1:
        walk.chain_v1(layers)
    else:
        walk.layers(layers, "l", inputs_of(metadata))
    expected = walk.names
    if set(arrays) != expected:
        missing, extra = sorted(expected - set(arrays)), sorted(set(arrays) - expected)
        raise Invalid("the arrays do not match the layers: "
                      + (f"missing {', '.join(missing)}" if missing else "")
                      + ("; " if missing and extra else "")
                      + (f"unexpected {', '.join(extra)}" if extra else ""))


def layers_of(metadata: dict, arrays: Dict[str, np.ndarray]) -> Tuple[list, str]:
    """The layer objects and dtype of a file whose arrays passed :func:`check_arrays`."""
    version, dtype, layers = check_header(metadata)
    walk = _Walk(np.dtype(dtype), arrays.__getitem__, build=True,
                 precision=precision_of(metadata))
    if version == 1:
        return walk.chain_v1(layers), dtype
    return walk.layers(layers, "l", inputs_of(metadata))[0], dtype


class _Walk:
    """Goes through the layer descriptions once: checks names, dtypes and shapes of the
    arrays (with ``get``) and, with ``build``, makes the layer objects."""

    def __init__(self, dtype: np.dtype, get: Callable[[str], Any], build: bool = False,
                 precision: str = ""):
        self.dtype, self.get, self.build = dtype, get, build
        self.reduced = precision if precision in REDUCED else None
        self.names: set = set()

    def array(self, name: str, ndim: int, where: str, dtype: Any = None) -> Any:
        self.names.add(name)
        value = self.get(name)
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        if value is None:
            raise Invalid(f"{where}: the array {name} is missing")
        if value.dtype != dtype or value.ndim != ndim:
            raise Invalid(f"array {name} is {value.ndim}-D {value.dtype}, expected {ndim}-D "
                          f"{dtype}")
        return value

    def weights(self, path: str, where: str) -> Any:
        """A dense layer's weights: in the dtype, or bfloat16 bits / int8 with scales."""
        if self.reduced is None:
            return self.array(f"{path}.weights", 2, where)
        kind = np.uint16 if self.reduced == "bfloat16" else np.int8
        values = self.array(f"{path}.weights", 2, where, kind)
        scales = None
        if self.reduced == "int8":
            scales = self.array(f"{path}.scales", 1, where, np.float32)
            if tuple(scales.shape) != (values.shape[1],):
                raise Invalid(f"{where}: {values.shape[1]} columns need as many scales, the "
                              f"file has {scales.shape[0]}")
        if not self.build:
            return values
        try:
            return QuantizedWeights(self.reduced, values, scales)
        except ValueError as exc:
            raise Invalid(f"{where}: {exc}") from None

    def chain_v1(self, layers: list) -> list:
        from .layers import Dense

        built, width = [], None
        for i, desc in enumerate(layers):
            where = f"layer {i}"
            w = self.array(f"w{i}", 2, where)
            b = self.array(f"b{i}", 1, where)
            n_in, n_out = w.shape
            if width is not None and n_in != width:
                raise Invalid(f"layer {i} has {n_in} inputs (w{i} of shape {tuple(w.shape)}) "
                              f"but layer {i - 1} has {width} outputs")
            if tuple(b.shape) != (n_out,):
                raise Invalid(f"bias of layer {i} has shape {tuple(b.shape)}; layer {i} has "
                              f"{n_out} outputs, so expected ({n_out},)")
            width = n_out
            spec = self.activation(desc, f"l{i}", where, v1=True)
            if self.build:
                built.append(Dense(w, b, spec))
        return built

    def layers(self, layers: Any, path: str, width: Any) -> Tuple[list, Any]:
        if not isinstance(layers, list) or not layers:
            raise Invalid(f"{path}: expected a non-empty list of layers")
        built = []
        for i, desc in enumerate(layers):
            layer, width = self.layer(desc, f"{path}{i}", width)
            built.append(layer)
        return built, width

    def layer(self, desc: Any, path: str, width: Any) -> Tuple[Any, Any]:
        from .layers import Activation, Affine, Dense, LayerNorm, Residual

        where = f"layer {path[1:]}"
        kind = desc.get("kind") if isinstance(desc, dict) else None
        if kind == "dense":
            w = self.weights(path, where)
            b = self.array(f"{path}.bias", 1, where)
            n_in, n_out = w.shape
            self.width_is(width, n_in, where)
            if tuple(b.shape) != (n_out,):
                raise Invalid(f"{where}: bias has shape {tuple(b.shape)}, expected ({n_out},)")
            spec = self.activation(desc, path, where, width=n_out)
            return (Dense(w, b, spec) if self.build else None), n_out
        if kind in ("affine", "layernorm"):
            keys = ("scale", "shift") if kind == "affine" else ("weight", "bias")
            values = []
            for key in keys:
                flag = desc.get(key)
                if not isinstance(flag, bool):
                    raise Invalid(f"{where}: {key!r} must be true or false")
                values.append(self.array(f"{path}.{key}", 1, where) if flag else None)
            for value in values:
                if value is not None:
                    width = self.width_is(width, value.shape[0], where)
            if kind == "affine":
                return (Affine(*values) if self.build else None), width
            eps, n = desc.get("eps"), desc.get("width")
            if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
                raise Invalid(f"{where}: eps must be a number >= 0, got {eps!r}")
            if n is not None:
                if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                    raise Invalid(f"{where}: width must be a positive integer, got {n!r}")
                width = self.width_is(width, n, where)
            return (LayerNorm(*values, eps=eps, width=n) if self.build else None), width
        if kind == "activation":
            spec = self.activation(desc, path, where, width=width)
            return (Activation(spec) if self.build else None), width
        if kind == "residual":
            inner, out = self.layers(desc.get("layers"), f"{path}.", width)
            return (Residual(inner) if self.build else None), out
        raise Invalid(f"{where}: unknown kind {kind!r}; expected dense, affine, layernorm, "
                      "activation or residual")

    @staticmethod
    def width_is(width: Any, n: int, where: str) -> int:
        if width is not None and n != width:
            raise Invalid(f"{where} takes {n} features but the layer before it gives {width}")
        return n

    def activation(self, desc: Any, path: str, where: str, v1: bool = False,
                   width: Any = None) -> Tuple[str, dict]:
        """(name, params) of a layer's description; "inf"-style strings become floats."""
        if not (isinstance(desc, dict) and isinstance(desc.get("activation"), str)
                and isinstance(desc.get("params", {}), dict)):
            raise Invalid(f"{where}: expected {{'activation': name, 'params': {{...}}}}")
        params: Dict[str, Any] = {}
        for key, value in desc.get("params", {}).items():
            if value == _ARRAY and not v1:
                params[key] = self.array(f"{path}.{key}", 1, where)
                if width is not None and params[key].shape[0] != width:
                    raise Invalid(f"{where}: {key} has {params[key].shape[0]} values for "
                                  f"{width} features")
                continue
            try:
                params[key] = float(value) if isinstance(value, str) else value
            except ValueError:
                raise Invalid(f"{where}: parameter {key!r} is not a number") from None
        return desc["activation"], params


__all__: List[str] = ["describe", "check_arrays", "layers_of", "Invalid", "VERSION"]
