"""Activation names, their parameters, and the codes the C core knows them by."""
import math

import numpy as np

# Canonical name -> (code in csrc/fastmlp.h, default parameters in the order the
# core takes them as p0, p1).
_TABLE = {
    "identity": (0, {}),
    "relu": (1, {}),
    "tanh": (2, {}),
    "sigmoid": (3, {}),
    "softmax": (4, {}),
    "leaky_relu": (5, {"negative_slope": 0.01}),
    "elu": (6, {"alpha": 1.0}),
    "gelu": (7, {}),
    "gelu_tanh": (8, {}),
    "silu": (9, {}),
    "softplus": (10, {"beta": 1.0, "threshold": math.inf}),
}
_ALIASES = {"linear": "identity", "logistic": "sigmoid", "swish": "silu"}

ACTIVATION_DEFAULTS = {name: dict(defaults) for name, (_, defaults) in _TABLE.items()}


def activation_names():
    """The canonical activation names (aliases: linear, logistic, swish)."""
    return tuple(_TABLE)


def canonical_name(name):
    """The canonical spelling of an activation name (aliases resolved), known or not."""
    key = name.strip().lower()
    return _ALIASES.get(key, key)


def _valid_names():
    return ", ".join(sorted(list(_TABLE) + list(_ALIASES)))


def _check_parameter(name, key, value):
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} parameter {key!r} must be a number, got {value!r}")
    if not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy scalars
        except (TypeError, ValueError):
            raise TypeError(f"{name} parameter {key!r} must be a number, got {value!r}") from None
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and key != "threshold"):
        raise ValueError(f"{name} parameter {key!r} must be finite, got {value}")
    if key == "beta" and value <= 0:
        raise ValueError(f"softplus parameter 'beta' must be positive, got {value}")
    return value


def resolve(spec):
    """A spec (a name, or (name, params)) -> (canonical name, full params dict, code triple)."""
    if isinstance(spec, str):
        name, params = spec, {}
    elif isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[0], str):
        name, params = spec
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise TypeError(f"activation parameters must be a dict, got {params!r}")
    else:
        raise TypeError(f"an activation is a name or a (name, params) pair, got {spec!r}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _TABLE:
        raise ValueError(f"unknown activation {name!r}; valid names: {_valid_names()}")
    code, defaults = _TABLE[key]
    unknown = set(params) - set(defaults)
    if unknown:
        valid = ", ".join(defaults) or "none"
        raise ValueError(f"{key} has no parameter {sorted(unknown)[0]!r}; its parameters: {valid}")
    full = {k: _check_parameter(key, k, params.get(k, v)) for k, v in defaults.items()}
    values = list(full.values()) + [0.0, 0.0]
    return key, full, (code, values[0], values[1])
