"""Activation names, their parameters, and the codes the C core knows them by."""
import math
from typing import Any, Dict, Tuple

import numpy as np

from . import _core

# Canonical name -> default parameters, in the order the core takes them as p0, p1.
_DEFAULTS: Dict[str, Dict[str, float]] = {
    "identity": {},
    "relu": {},
    "tanh": {},
    "sigmoid": {},
    "softmax": {},
    "leaky_relu": {"negative_slope": 0.01},
    "elu": {"alpha": 1.0},
    "gelu": {},
    "gelu_tanh": {},
    "silu": {},
    "softplus": {"beta": 1.0, "threshold": math.inf},
    "selu": {},
    "celu": {"alpha": 1.0},
    "mish": {},
    "hardswish": {},
    "hardsigmoid": {"alpha": 1.0 / 6.0, "beta": 0.5},
    "relu6": {},
    "hardtanh": {"min_val": -1.0, "max_val": 1.0},
    "prelu": {"slope": 0.25},
    "softsign": {},
    "log_softmax": {},
}
_ALIASES = {"linear": "identity", "logistic": "sigmoid", "swish": "silu", "clip": "hardtanh",
            "hard_sigmoid": "hardsigmoid", "hard_swish": "hardswish"}
# Parameters that may be infinite; every other one must be finite.
_MAY_BE_INFINITE = {("softplus", "threshold"), ("hardtanh", "min_val"), ("hardtanh", "max_val")}

# The codes come from the compiled core, the one place they are defined (csrc/fastmlp.h).
_CODES = _core.activation_codes()
if set(_CODES) != set(_DEFAULTS):
    raise ImportError("fastmlp's compiled core and its Python code name different activations "
                      f"({sorted(set(_CODES) ^ set(_DEFAULTS))}); rebuild the package")

ACTIVATION_DEFAULTS = {name: dict(defaults) for name, defaults in _DEFAULTS.items()}


def activation_names() -> Tuple[str, ...]:
    """The canonical activation names (aliases: linear, logistic, swish, clip, hard_sigmoid,
    hard_swish)."""
    return tuple(_DEFAULTS)


def canonical_name(name: str) -> str:
    """The canonical spelling of an activation name (aliases resolved), known or not."""
    key = name.strip().lower()
    return _ALIASES.get(key, key)


def _valid_names() -> str:
    return ", ".join(sorted(list(_DEFAULTS) + list(_ALIASES)))


def _check_parameter(name: str, key: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} parameter {key!r} must be a number, got {value!r}")
    if not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy scalars
        except (TypeError, ValueError):
            raise TypeError(f"{name} parameter {key!r} must be a number, got {value!r}") from None
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and (name, key) not in _MAY_BE_INFINITE):
        raise ValueError(f"{name} parameter {key!r} must be finite, got {value}")
    return value


def _check_together(name: str, params: Dict[str, float]) -> None:
    """The constraints that involve the values, beyond each being a (finite) number."""
    if name == "softplus" and params["beta"] <= 0:
        raise ValueError(f"softplus parameter 'beta' must be positive, got {params['beta']}")
    if name == "celu" and params["alpha"] == 0:
        raise ValueError("celu parameter 'alpha' must not be 0 (it divides z)")
    if name == "hardtanh" and params["min_val"] > params["max_val"]:
        raise ValueError(f"hardtanh needs min_val <= max_val, got min_val={params['min_val']} "
                         f"and max_val={params['max_val']}")


def resolve(spec: Any) -> Tuple[str, Dict[str, float], Tuple[int, float, float]]:
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
    key = canonical_name(name)
    if key not in _DEFAULTS:
        raise ValueError(f"unknown activation {name!r}; valid names: {_valid_names()}")
    defaults = _DEFAULTS[key]
    unknown = set(params) - set(defaults)
    if unknown:
        valid = ", ".join(defaults) or "none"
        raise ValueError(f"{key} has no parameter {sorted(unknown)[0]!r}; its parameters: {valid}")
    full = {k: _check_parameter(key, k, params.get(k, v)) for k, v in defaults.items()}
    _check_together(key, full)
    values = list(full.values()) + [0.0, 0.0]
    return key, full, (_CODES[key], values[0], values[1])
