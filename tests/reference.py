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
