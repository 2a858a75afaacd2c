"""A plain numpy float64 forward pass: the reference every result is checked against."""
import math

import numpy as np

_erfc = np.vectorize(math.erfc, otypes=[float])


def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _softplus(z, beta, threshold):
    bz = beta * z
    soft = (np.maximum(bz, 0) + np.log1p(np.exp(-np.abs(bz)))) / beta
    return np.where(bz > threshold, z, soft)


# PyTorch's SELU constants (torch.nn.SELU's documentation).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _log_softmax(z):
    """(z - max) - log(sum e^(z - max)) per row, the sum's terms of the maximum (each 1) added
    back by log1p so that log(1 + tiny) keeps its digits."""
    d = z - z.max(axis=-1, keepdims=True)
    below = np.where(d < 0, np.exp(d), np.where(d == 0, 0.0, d))  # d is NaN otherwise
    n_max = (d == 0).sum(axis=-1, keepdims=True)
    return d - np.log1p(below.sum(axis=-1, keepdims=True) + (n_max - 1))


def activate(name, z, params=None):
    params = params or {}
    with np.errstate(over="ignore", invalid="ignore"):
        if name == "identity":
            return z
        if name == "relu":
            return np.where(z < 0, 0.0, z)
        if name == "tanh":
            return np.tanh(z)
        if name == "sigmoid":
            return _sigmoid(z)
        if name == "softmax":
            e = np.exp(z - z.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
        if name == "leaky_relu":
            return np.where(z > 0, z, params.get("negative_slope", 0.01) * z)
        if name == "elu":
            return np.where(z > 0, z, params.get("alpha", 1.0) * np.expm1(np.minimum(z, 0)))
        if name == "gelu":
            return 0.5 * z * _erfc(-z / math.sqrt(2))
        if name == "gelu_tanh":
            u = math.sqrt(2 / math.pi) * (z + 0.044715 * z**3)
            return z * _sigmoid(2 * u)
        if name == "silu":
            return z * _sigmoid(z)
        if name == "softplus":
            return _softplus(z, params.get("beta", 1.0), params.get("threshold", math.inf))
        if name == "selu":  # scale (max(0, z) + min(0, alpha (e^z - 1)))
            return SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0)))
        if name == "celu":  # max(0, z) + min(0, alpha (e^(z/alpha) - 1))
            alpha = params.get("alpha", 1.0)
            return np.maximum(z, 0) + np.minimum(0, alpha * np.expm1(z / alpha))
        if name == "mish":  # z tanh(softplus(z))
            return z * np.tanh(_softplus(z, 1.0, math.inf))
        if name == "hardswish":  # z relu6(z + 3) / 6
            return z * np.clip(z + 3, 0, 6) / 6
        if name == "hardsigmoid":  # max(0, min(1, alpha z + beta))
            return np.clip(params.get("alpha", 1 / 6) * z + params.get("beta", 0.5), 0, 1)
        if name == "relu6":
            return np.clip(z, 0, 6)
        if name == "hardtanh":
            return np.clip(z, params.get("min_val", -1.0), params.get("max_val", 1.0))
        if name == "prelu":  # slope: a number or one per feature (the last axis)
            return np.where(z > 0, z, np.asarray(params.get("slope", 0.25)) * z)
        if name == "softsign":
            return z / (1 + np.abs(z))
        if name == "log_softmax":
            return _log_softmax(z)
    raise ValueError(name)


def forward(weights, biases, activations, x, params=None):
    """float64 forward pass; activations and params are per-layer lists."""
    params = params or [{}] * len(weights)
    a = np.asarray(x, dtype=np.float64)
    for w, b, name, p in zip(weights, biases, activations, params):
        z = a @ np.asarray(w, dtype=np.float64) + np.asarray(b, dtype=np.float64).reshape(-1)
        a = activate(name, z, p)
    return a


def tolerance(dtype):
    """(rtol, atol-scale) for comparing a result in dtype with the float64 reference."""
    return (1e-12, 1e-12) if np.dtype(dtype) == np.float64 else (1e-5, 1e-5)


def assert_close(got, want, dtype, scale=1.0):
    rtol, atol = tolerance(dtype)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale)


def forward_layers(layers, x):
    """float64 forward pass of a list of fastmlp.layers objects (Dense, Affine, LayerNorm,
    Activation, Residual), written from their definitions."""
    from fastmlp.layers import Activation, Affine, Dense, LayerNorm, Residual

    a = np.asarray(x, dtype=np.float64)
    for layer in layers:
        f64 = lambda v: None if v is None else np.asarray(v, dtype=np.float64)  # noqa: E731
        if isinstance(layer, Dense):
            z = a @ f64(layer.weights) + (0 if layer.bias is None else f64(layer.bias))
            name, params = _spec(layer.activation)
            a = activate(name, z, params)
        elif isinstance(layer, Affine):
            a = a * (1 if layer.scale is None else f64(layer.scale)) + (
                0 if layer.shift is None else f64(layer.shift))
        elif isinstance(layer, LayerNorm):
            with np.errstate(invalid="ignore"):
                mean = a.mean(axis=-1, keepdims=True)
                var = ((a - mean) ** 2).mean(axis=-1, keepdims=True)
                a = (a - mean) / np.sqrt(var + layer.eps)
            if layer.weight is not None:
                a = a * f64(layer.weight)
            if layer.bias is not None:
                a = a + f64(layer.bias)
        elif isinstance(layer, Activation):
            name, params = _spec(layer.activation)
            a = activate(name, a, params)
        elif isinstance(layer, Residual):
            a = a + forward_layers(layer.layers, a)
        else:
            raise TypeError(layer)
    return a


def _spec(spec):
    return (spec, {}) if isinstance(spec, str) else (spec[0], dict(spec[1]))
