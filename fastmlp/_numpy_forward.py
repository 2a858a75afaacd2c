"""The plain-numpy forward pass that `fastmlp demo`, `fastmlp bench` and the benchmark harness
race fastmlp against: ``x @ W + b`` and the activation, per layer, in the input's dtype.

This is a competitor, written the obvious way; the float64 truth results are checked against
is tests/reference.py.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence, Tuple

import numpy as np


def _erf(z: np.ndarray) -> np.ndarray:
    try:
        from scipy.special import erf
    except ImportError:
        return np.vectorize(math.erf, otypes=[z.dtype])(z)
    return erf(z).astype(z.dtype, copy=False)


def activation(name: str, p: Mapping[str, float], z: np.ndarray) -> np.ndarray:
    """A new array: activation `name` with parameters `p` (all of them) applied to z."""
    with np.errstate(over="ignore"):
        if name == "identity":
            return z
        if name == "relu":
            return np.maximum(z, 0)
        if name == "tanh":
            return np.tanh(z)
        if name == "sigmoid":
            return 1 / (1 + np.exp(-z))
        if name == "softmax":
            e = np.exp(z - z.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
        if name == "leaky_relu":
            return np.where(z > 0, z, z * z.dtype.type(p["negative_slope"]))
        if name == "elu":
            return np.where(z > 0, z, z.dtype.type(p["alpha"]) * np.expm1(z))
        if name == "gelu":
            return 0.5 * z * (1 + _erf(z / z.dtype.type(math.sqrt(2.0))))
        if name == "gelu_tanh":
            c = z.dtype.type(math.sqrt(2.0 / math.pi))
            return 0.5 * z * (1 + np.tanh(c * (z + z.dtype.type(0.044715) * z ** 3)))
        if name == "silu":
            return z / (1 + np.exp(-z))
        if name == "softplus":
            beta, thr = z.dtype.type(p["beta"]), p["threshold"]
            return np.where(beta * z > thr, z, np.logaddexp(0, beta * z) / beta)
    raise ValueError(f"the plain-numpy forward pass has no activation {name!r}")


Layer = Tuple[np.ndarray, np.ndarray, str, Mapping[str, float]]


def layers_of(net: Any) -> Sequence[Layer]:
    """(weights, bias, activation name, parameters) of each layer of a fastmlp.Network."""
    if not net.is_dense_chain:
        kinds = sorted({type(layer).__name__ for layer in net.layers} - {"Dense"})
        raise ValueError(f"the plain-numpy forward pass covers chains of Dense layers only; "
                         f"this network has {', '.join(kinds)} layers")
    return list(zip(net.weights, net.biases, net.activations, net.activation_params))


def forward(layers: Sequence[Layer], x: np.ndarray) -> np.ndarray:
    for w, b, name, p in layers:
        x = activation(name, p, x @ w + b)
    return x
