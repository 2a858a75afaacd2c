"""The kinds of layer a Network is made of, for ``fastmlp.Network([...])``.

    from fastmlp.layers import Affine, Dense, LayerNorm, Activation, Residual

    net = fastmlp.Network([
        Affine(scale=1 / std, shift=-mean / std),      # x * scale + shift, per feature
        Dense(w1, b1, "relu"),                         # f(x W + b)
        Residual([LayerNorm(64), Dense(w2, b2, "gelu"), Dense(w3, b3)]),   # x + f(x)
        Activation("relu"),
        Dense(w4, b4, "softmax"),
    ])

The objects only hold what they were given; the Network checks them (shapes that chain,
widths, activation names and parameters) with messages naming the layer, and keeps its own
read-only copies in its dtype (``net.layers``). Every layer works on each row alone, so a row
gets the same bits whatever the batch.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence, Tuple, Union

import numpy as np

#: An activation: a name, or (name, parameters).
ActivationSpec = Union[str, Tuple[str, Mapping[str, Any]]]


class Layer:
    """Base class of the layer kinds."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and all(
            _same(getattr(self, k), getattr(other, k)) for k in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # holds arrays: compared by value, unhashable

    def __reduce__(self):
        return (type(self), tuple(getattr(self, k) for k in self.__slots__))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if a is None or b is None or isinstance(a, str) or isinstance(b, str):
        return a == b
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


def _shape(value: Any) -> str:
    return "None" if value is None else str(np.shape(value))


class Dense(Layer):
    """``activation(x @ weights + bias)``: weights (inputs, outputs), bias (outputs,) or None."""

    __slots__ = ("weights", "bias", "activation")

    def __init__(self, weights: Any, bias: Any = None,
                 activation: ActivationSpec = "identity") -> None:
        self.weights = weights
        self.bias = bias
        self.activation = activation

    def __repr__(self) -> str:
        n_in, n_out = (np.shape(self.weights) + (None, None))[:2]
        return f"Dense({n_in} -> {n_out}, {_activation_text(self.activation)})"


class Affine(Layer):
    """``x * scale + shift`` per feature (elementwise, no matrix): each a number or a vector
    with one value per feature; None means 1 (scale) or 0 (shift)."""

    __slots__ = ("scale", "shift")

    def __init__(self, scale: Any = None, shift: Any = None) -> None:
        self.scale = scale
        self.shift = shift

    def __repr__(self) -> str:
        return f"Affine(scale {_shape(self.scale)}, shift {_shape(self.shift)})"


class LayerNorm(Layer):
    """Normalises each row over its features: ``(x - mean) / sqrt(var + eps) * weight + bias``
    with the biased variance, as ``torch.nn.LayerNorm`` over the last dimension does.
    weight / bias: one value per feature, or None (1 / 0); width: the number of features,
    needed only when both are None and no earlier layer tells."""

    __slots__ = ("weight", "bias", "eps", "width")

    def __init__(self, weight: Any = None, bias: Any = None, eps: float = 1e-5,
                 width: Union[int, None] = None) -> None:
        self.weight = weight
        self.bias = bias
        self.eps = eps
        self.width = width

    def __repr__(self) -> str:
        width = self.width if self.width is not None else ""
        return f"LayerNorm({width}{', ' if width != '' else ''}eps={self.eps})"


class Activation(Layer):
    """An activation on its own (a name, or (name, parameters)), e.g. after a LayerNorm, an
    Affine or a Residual."""

    __slots__ = ("activation",)

    def __init__(self, activation: ActivationSpec) -> None:
        self.activation = activation

    def __repr__(self) -> str:
        return f"Activation({_activation_text(self.activation)})"


class Residual(Layer):
    """``x + f(x)``, f being the given layers in order; f keeps the width of its input."""

    __slots__ = ("layers",)

    def __init__(self, layers: Sequence[Layer]) -> None:
        self.layers = tuple(layers) if isinstance(layers, (list, tuple)) else layers

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers) if isinstance(
            self.layers, tuple) else repr(self.layers)
        return f"Residual([{inner}])"


def _activation_text(spec: Any) -> str:
    if isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[1], Mapping):
        name, params = spec
        if not params:
            return str(name)
        values = ", ".join(f"{k}={_param_text(v)}" for k, v in params.items())
        return f"{name}({values})"
    return str(spec)


def _param_text(value: Any) -> str:
    return f"<{np.size(value)} values>" if np.ndim(value) else f"{value:g}" if isinstance(
        value, float) else str(value)


__all__ = ["Layer", "Dense", "Affine", "LayerNorm", "Activation", "Residual", "ActivationSpec"]
