"""fastmlp/_activations.py: names, aliases, parameters and the codes handed to the core."""
import math
import os
import re

import numpy as np
import pytest

import fastmlp
from fastmlp import _activations

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_names_are_the_table_in_core_order():
    assert fastmlp.activation_names() == (
        "identity", "relu", "tanh", "sigmoid", "softmax", "leaky_relu", "elu", "gelu",
        "gelu_tanh", "silu", "softplus", "selu", "celu", "mish", "hardswish", "hardsigmoid",
        "relu6", "hardtanh", "prelu", "softsign", "log_softmax")
    codes = [_activations.resolve(name)[2][0] for name in fastmlp.activation_names()]
    assert codes == list(range(len(codes))), f"codes are not 0..N-1 in order: {codes}"


def test_codes_match_the_c_header():
    header = os.path.join(ROOT, "csrc", "fastmlp.h")
    if not os.path.isfile(header):
        pytest.skip("csrc/ is in the repository, not in the installed package")
    text = open(header).read()
    block = re.search(r"typedef enum \{(.*?)\} fm_activation_kind;", text, re.S).group(1)
    names = re.findall(r"FM_([A-Z0-9_]+)", re.sub(r"/\*.*?\*/", "", block))
    # The enum counts from 0 in order (FM_IDENTITY = 0, then one more each).
    assert names[:-1] == [n.upper() for n in fastmlp.activation_names()], names
    assert names[-1] == "N_ACTIVATIONS"


@pytest.mark.parametrize("alias, name", [("linear", "identity"), ("logistic", "sigmoid"),
                                         ("swish", "silu"), ("  ReLU ", "relu")])
def test_aliases_and_spelling(alias, name):
    assert _activations.resolve(alias)[0] == name


def test_defaults_fill_every_parameter_in_core_order():
    name, params, codes = _activations.resolve("softplus")
    assert (name, params) == ("softplus", {"beta": 1.0, "threshold": math.inf})
    assert codes == (10, 1.0, math.inf)
    assert _activations.resolve(("softplus", {"threshold": 20}))[2] == (10, 1.0, 20.0)
    assert _activations.resolve(("leaky_relu", None))[2] == (5, 0.01, 0.0)
    assert _activations.resolve(("elu", {"alpha": np.float32(0.5)}))[1] == {"alpha": 0.5}


def test_public_defaults_are_a_copy():
    fastmlp.ACTIVATION_DEFAULTS["elu"]["alpha"] = 99.0
    try:
        assert _activations.resolve("elu")[1] == {"alpha": 1.0}
    finally:
        fastmlp.ACTIVATION_DEFAULTS["elu"]["alpha"] = 1.0


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown activation 'swiglu'; valid names: ") as info:
        _activations.resolve("swiglu")
    for name in fastmlp.activation_names() + ("linear", "logistic", "swish"):
        assert name in str(info.value), f"{name} missing from {info.value}"


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(ValueError, match="elu has no parameter 'beta'; its parameters: alpha"):
        _activations.resolve(("elu", {"beta": 1.0}))
    with pytest.raises(ValueError, match="relu has no parameter 'alpha'; its parameters: none"):
        _activations.resolve(("relu", {"alpha": 1.0}))


@pytest.mark.parametrize("spec, error, message", [
    (("elu", {"alpha": "big"}), TypeError, "elu parameter 'alpha' must be a number"),
    (("elu", {"alpha": True}), TypeError, "must be a number, got True"),
    (("elu", {"alpha": math.nan}), ValueError, "must be finite"),
    (("leaky_relu", {"negative_slope": math.inf}), ValueError, "must be finite"),
    (("softplus", {"beta": 0}), ValueError, "'beta' must be positive"),
    (("softplus", {"beta": -1}), ValueError, "'beta' must be positive"),
    (("elu", [1.0]), TypeError, "activation parameters must be a dict"),
    (3, TypeError, "an activation is a name or a \\(name, params\\) pair"),
    (("elu", {}, {}), TypeError, "an activation is a name or"),
])
def test_bad_parameters_are_named(spec, error, message):
    with pytest.raises(error, match=message):
        _activations.resolve(spec)


def test_the_caller_s_params_are_not_modified():
    params = {"alpha": 2}
    _activations.resolve(("elu", params))
    assert params == {"alpha": 2} and type(params["alpha"]) is int
