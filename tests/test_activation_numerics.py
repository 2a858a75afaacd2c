"""The activations of issue 9 (selu ... log_softmax): the float64 reference against PyTorch,
the compiled core against the reference (hypothesis, extremes, inf and NaN), bit-identical
rows, per-feature PReLU slopes, parameter checks, and the codes' single source."""
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fastmlp
from fastmlp import _activations, _core
from fastmlp.layers import Activation, Affine
from conftest import random_layers
from reference import SELU_ALPHA, SELU_SCALE, activate, forward

# Parameters exactly representable in float32, so a float32 network computes with the same
# parameters as the float64 reference.
NEW = [
    ("selu", {}), ("celu", {}), ("celu", {"alpha": 0.5}), ("celu", {"alpha": -1.25}),
    ("mish", {}), ("hardswish", {}), ("hardsigmoid", {}),
    ("hardsigmoid", {"alpha": 0.25, "beta": 0.625}), ("relu6", {}), ("hardtanh", {}),
    ("hardtanh", {"min_val": -0.5, "max_val": 2.0}), ("hardtanh", {"min_val": -math.inf}),
    ("prelu", {}), ("prelu", {"slope": -1.5}), ("softsign", {}), ("log_softmax", {}),
]
DTYPES = [np.float32, np.float64]
# Max error measured against a long-double reference over wide grids (see the commit message),
# with a margin; float32 against the float64 reference rounded.
MAX_ULP_F32 = 6


def run(spec, z):
    """The activation through a one-layer identity network (the dense kernel's epilogue)."""
    z = np.asarray(z)
    net = fastmlp.Network([np.eye(z.shape[-1], dtype=z.dtype)], None, spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return net(z)


def alone(spec, z):
    """The activation as a step of its own, after an exact x * 1 + 0 (a dense layer would
    turn inf into NaN through inf * 0)."""
    net = fastmlp.Network([Affine(scale=np.ones(z.shape[-1])), Activation(spec)], dtype=z.dtype)
    return net(z)


def params_of(name, params):
    return {**fastmlp.ACTIVATION_DEFAULTS[name], **params}


def assert_matches_reference(got, z, name, params):
    want = activate(name, z.astype(np.float64), params_of(name, params))
    if got.dtype == np.float64:
        if name == "hardsigmoid":
            # alpha z + beta, fused or not: one rounding of alpha z apart, which the result
            # keeps whole where it cancels (near z = -beta / alpha); relative to it, unbounded
            alpha = params_of(name, params)["alpha"]
            with np.errstate(invalid="ignore", over="ignore"):
                atol = np.where(np.isfinite(z), 2.0 ** -52 * np.abs(alpha * z), 0)
                near = np.isclose(got, want, rtol=1e-12, atol=0, equal_nan=True)
                assert np.all(near | (np.abs(got - want) <= atol)), (name, z[~near], got[~near])
            return
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300, err_msg=name)
        return
    # float32: within MAX_ULP_F32 of the exact value rounded (subnormal spacing below).
    with np.errstate(over="ignore"):
        want32 = want.astype(np.float32)
    spacing = np.maximum(np.spacing(np.abs(want32)), np.finfo(np.float32).smallest_subnormal)
    finite = np.isfinite(want32)
    assert np.array_equal(got[~finite], want32[~finite], equal_nan=True), name
    ulps = np.abs(got[finite].astype(np.float64) - want[finite]) / spacing[finite]
    assert ulps.max(initial=0) <= MAX_ULP_F32, (name, params, ulps.max())


# -- the reference is the frameworks' definition -------------------------------------------

def test_reference_matches_pytorch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.uniform(-12, 12, (40, 50)).ravel(), [-700, -80, -3, 3, 80, 700]])
    z = np.concatenate([z, rng.uniform(-1e4, 1e4, 100)])
    t = torch.from_numpy(z)
    torch_of = {
        "selu": F.selu(t), "celu": F.celu(t), "mish": F.mish(t), "hardswish": F.hardswish(t),
        "hardsigmoid": F.hardsigmoid(t), "relu6": F.relu6(t), "hardtanh": F.hardtanh(t),
        "prelu": F.prelu(t, torch.tensor([0.25], dtype=torch.float64)),
        "softsign": F.softsign(t),
    }
    for name, want in torch_of.items():
        np.testing.assert_allclose(activate(name, z), want.numpy(), rtol=1e-13, atol=1e-300,
                                   err_msg=name)
    np.testing.assert_allclose(activate("celu", z, {"alpha": -0.7}),
                               F.celu(t, alpha=-0.7).numpy(), rtol=1e-13)
    np.testing.assert_allclose(activate("hardtanh", z, {"min_val": -2.0, "max_val": 0.5}),
                               F.hardtanh(t, -2.0, 0.5).numpy())
    rows = rng.standard_normal((30, 17)) * np.array([[1], [30], [1000]]).repeat(10, 0)
    # PyTorch's log(sum) loses the digits of log(1 + tiny) (absolute 1e-16) that ours keeps.
    np.testing.assert_allclose(activate("log_softmax", rows),
                               F.log_softmax(torch.from_numpy(rows), dim=-1).numpy(), rtol=1e-13,
                               atol=1e-15)
    slopes = rng.uniform(-1, 1, 17)
    np.testing.assert_allclose(
        activate("prelu", rows, {"slope": slopes}),
        F.prelu(torch.from_numpy(rows), torch.from_numpy(slopes)).numpy())


# -- the core against the reference -------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(spec=st.sampled_from(NEW), dtype=st.sampled_from(DTYPES), data=st.data())
def test_matches_reference(spec, dtype, data):
    width = data.draw(st.integers(1, 70), label="width")
    batch = data.draw(st.integers(1, 9), label="batch")
    scale = data.draw(st.sampled_from([1.0, 4.0, 30.0, 300.0]), label="scale")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    z = (np.random.default_rng(seed).uniform(-scale, scale, (batch, width))).astype(dtype)
    assert_matches_reference(run(spec, z), z, *spec)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,params", NEW)
def test_stable_at_extremes(name, params, dtype):
    big = 3e38 if dtype == np.float32 else 1e300
    z = np.array([-big, -1e4, -1000, -750, -710, -300, -100, -90, -30, -3, -1, -1e-8, 0,
                  1e-8, 1, 3, 30, 88, 100, 300, 710, 1000, 1e4, big], dtype=dtype)
    if name == "log_softmax":  # one row per value, beside a few others
        z = np.stack([z, np.full_like(z, 0.5), -z, z / 2], axis=1)
    else:
        z = z[None, :]
    got = run((name, params), z)
    want = activate(name, z.astype(np.float64), params_of(name, params))
    # Finite wherever the exact value is in range (no inf * 0, inf - inf or overflow inside);
    # beyond the range (prelu's -1.5 z, log_softmax's z - max in float32) it is +-inf.
    in_range = np.abs(want) <= np.finfo(dtype).max
    assert np.array_equal(np.isfinite(got), in_range), (name, got)
    assert_matches_reference(got, z, name, params)


# Values at +-inf: the limits, also where PyTorch's formula gives inf * 0 = NaN (mish,
# hardswish, softsign); NaN stays NaN.
LIMITS = {
    "selu": (-SELU_SCALE * SELU_ALPHA, math.inf),
    "celu": (-1.0, math.inf), "mish": (0.0, math.inf), "hardswish": (0.0, math.inf),
    "hardsigmoid": (0.0, 1.0), "relu6": (0.0, 6.0), "hardtanh": (-1.0, 1.0),
    "prelu": (-math.inf, math.inf), "softsign": (-1.0, 1.0),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(LIMITS))
def test_infinities_and_nan(name, dtype):
    x = np.array([[-np.inf], [np.inf], [np.nan]], dtype=dtype)
    net = fastmlp.Network([np.ones((1, 1), dtype=dtype)], None, name)  # z = x exactly
    got = net(x)[:, 0]
    np.testing.assert_allclose(got[:2], np.array(LIMITS[name], dtype=dtype), rtol=1e-7)
    assert np.isnan(got[2])


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_nan_and_inf_rows(dtype):
    """A NaN or a +inf makes the row NaN (as softmax, and PyTorch); -inf entries get -inf."""
    z = np.array([[0.0, np.nan, 1.0], [np.inf, 0.0, 1.0], [-np.inf, -np.inf, -np.inf],
                  [-np.inf, 0.0, 1.0]], dtype=dtype)
    z = alone("log_softmax", z)
    assert np.isnan(z[:3]).all()
    want = [-np.inf, *activate("log_softmax", np.array([[0.0, 1.0]]))[0]]
    np.testing.assert_allclose(z[3], want, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_keeps_digits_of_tiny_terms(dtype):
    z = np.array([[0.0, -30.0], [5.0, -60.0], [1.0, 1.0]], dtype=dtype)
    got = run("log_softmax", z)
    want = [[-math.log1p(math.exp(-30)), -30 - math.log1p(math.exp(-30))],
            [-math.log1p(math.exp(-65)), -65 - math.log1p(math.exp(-65))],
            [-math.log(2), -math.log(2)]]
    np.testing.assert_allclose(got, want, rtol=1e-12 if dtype == np.float64 else 1e-6)


def test_hardsigmoid_crossing_is_exact_for_pytorchs_form():
    """relu6(z + 3) / 6: 0 at -3 and (z + 3) / 6 just above, not alpha z + beta's rounding."""
    z = np.array([[-3.0, np.nextafter(-3.0, 0), -2.5, 3.0]])
    got = run("hardsigmoid", z)[0]
    np.testing.assert_allclose(got[:3], (z[0, :3] + 3) / 6, rtol=1e-15)
    assert got[0] == 0 and got[1] > 0 and got[3] == 1


# -- through networks: every row the same bits wherever it sits --------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spec", [("log_softmax", {}), ("prelu", {"slope": 0.1}),
                                  ("mish", {}), ("celu", {"alpha": 0.5})])
def test_rows_bit_identical_across_batches(dtype, spec):
    rng = np.random.default_rng(3)
    widths = [13, 300, 70]
    weights, biases = random_layers(rng, widths, dtype)
    net = fastmlp.Network(weights, biases, [spec, spec])
    x = rng.standard_normal((700, widths[0])).astype(dtype) * 3
    whole = net(x, threads=2)
    want = forward(weights, biases, [spec[0]] * 2, x, [params_of(*spec)] * 2)
    np.testing.assert_allclose(whole, want, rtol=1e-12 if dtype == np.float64 else 1e-4,
                               atol=1e-12 if dtype == np.float64 else 1e-5)
    assert np.array_equal(whole, net(x, threads=1))
    for start, stop in [(0, 1), (1, 2), (3, 10), (5, 37), (100, 133), (699, 700), (17, 650)]:
        for threads in (1, 2):
            assert np.array_equal(net(x[start:stop], threads=threads), whole[start:stop]), \
                (spec, start, stop, threads)
        assert np.array_equal(net(x[start]), whole[start])


# -- per-feature PReLU slopes (vec) in the core ----------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_out", [1, 7, 40, 70, 300])
def test_prelu_per_feature_slopes(dtype, n_out):
    """The kernels index the slopes by output feature, also where threads share a layer's
    columns (small batches) and dense_cols starts at a later column."""
    rng = np.random.default_rng(n_out)
    weights, biases = random_layers(rng, [9, n_out, 5], dtype)
    slopes = rng.uniform(-1, 1, n_out)
    net = fastmlp.Network(weights, biases, [("prelu", {"slope": slopes}), "identity"],
                          dtype=dtype)
    x = rng.standard_normal((300, 9)).astype(dtype) * 2
    want = forward(weights, biases, ["prelu", "identity"], x,
                   [{"slope": slopes.astype(dtype)}, {}])
    whole = net(x, threads=2)
    np.testing.assert_allclose(whole, want, rtol=1e-12 if dtype == np.float64 else 1e-4,
                               atol=1e-12 if dtype == np.float64 else 1e-5)
    for rows in (1, 2, 5, 30):
        for threads in (1, 2):
            assert np.array_equal(net(x[:rows], threads=threads), whole[:rows]), (rows, threads)


# -- the Python API ------------------------------------------------------------------------

def test_codes_come_from_the_core():
    codes = _core.activation_codes()
    assert codes == _activations._CODES
    assert sorted(codes.values()) == list(range(len(codes)))
    assert set(codes) == set(fastmlp.activation_names()) == set(fastmlp.ACTIVATION_DEFAULTS)
    # the order csrc/fastmlp.h fixes for the new codes
    new = ["selu", "celu", "mish", "hardswish", "hardsigmoid", "relu6", "hardtanh", "prelu",
           "softsign", "log_softmax"]
    assert [codes[n] for n in new] == list(range(11, 21))
    for name in codes:
        assert _activations.resolve(name)[2][0] == codes[name]


def test_aliases_and_defaults():
    assert _activations.resolve("clip")[:2] == ("hardtanh", {"min_val": -1.0, "max_val": 1.0})
    assert _activations.resolve("hard_sigmoid")[0] == "hardsigmoid"
    assert _activations.resolve("hard_swish")[0] == "hardswish"
    assert fastmlp.ACTIVATION_DEFAULTS["hardsigmoid"] == {"alpha": 1 / 6, "beta": 0.5}
    assert fastmlp.ACTIVATION_DEFAULTS["prelu"] == {"slope": 0.25}
    assert fastmlp.ACTIVATION_DEFAULTS["celu"] == {"alpha": 1.0}
    name, params, codes = _activations.resolve(("clip", {"min_val": -math.inf, "max_val": 6}))
    assert (name, params) == ("hardtanh", {"min_val": -math.inf, "max_val": 6.0})
    out = run(("clip", {"min_val": -math.inf, "max_val": 6}), np.array([[-1e300, 7.0, 2.0]]))
    assert out.tolist() == [[-1e300, 6.0, 2.0]]


@pytest.mark.parametrize("spec,error,message", [
    (("celu", {"alpha": 0}), ValueError, "celu parameter 'alpha' must not be 0"),
    (("celu", {"alpha": math.inf}), ValueError, "'alpha' must be finite"),
    (("hardtanh", {"min_val": 2.0}), ValueError, "min_val <= max_val, got min_val=2.0"),
    (("hardtanh", {"max_val": math.nan}), ValueError, "'max_val' must be finite, got nan"),
    (("hardsigmoid", {"beta": math.inf}), ValueError, "'beta' must be finite"),
    (("hardsigmoid", {"alpha": "a"}), TypeError, "'alpha' must be a number"),
    (("prelu", {"slope": np.ones(3)}), ValueError, "prelu slope has 3 values for 2 features"),
    (("prelu", {"negative_slope": 0.1}), ValueError, "prelu has no parameter 'negative_slope'"),
    (("selu", {"alpha": 1.0}), ValueError, "selu has no parameter 'alpha'; its parameters: none"),
])
def test_parameter_checks(spec, error, message):
    with pytest.raises(error) as info:
        fastmlp.Network([np.ones((2, 2))], None, spec)
    assert message in str(info.value)


def test_hardsigmoid_beta_may_be_any_sign():
    """'beta' is softplus's positive parameter too; hardsigmoid's may be negative or 0."""
    out = run(("hardsigmoid", {"alpha": 0.5, "beta": -0.25}), np.array([[0.0, 1.0, 4.0]]))
    assert out.tolist() == [[0.0, 0.25, 1.0]]
    out = run(("hardsigmoid", {"alpha": 0.0, "beta": 0.75}), np.array([[-5.0, 1e300]]))
    assert out.tolist() == [[0.75, 0.75]]
