"""Property-based checks against the numpy float64 reference, and stability at extremes."""
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fastmlp
from conftest import random_layers
from reference import activate, forward, tolerance

ACTIVATIONS = [
    ("identity", {}), ("relu", {}), ("tanh", {}), ("sigmoid", {}), ("softmax", {}),
    ("leaky_relu", {"negative_slope": 0.1}), ("leaky_relu", {}), ("elu", {"alpha": 0.7}),
    ("gelu", {}), ("gelu_tanh", {}), ("silu", {}), ("softplus", {}),
    ("softplus", {"beta": 2.0, "threshold": 20.0}),
]


def check(net, weights, biases, specs, x):
    dtype = net.dtype
    want = forward(weights, biases, [n for n, _ in specs], x.astype(np.float64),
                   [p for _, p in specs])
    got = net(x)
    assert got.dtype == dtype and got.shape == want.shape
    rtol, atol = tolerance(dtype)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * (1 + np.abs(want).max(initial=0)))


@settings(max_examples=150, deadline=None)
@given(
    widths=st.lists(st.integers(1, 70), min_size=2, max_size=5),
    batch=st.integers(0, 70),
    data=st.data(),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_matches_reference(widths, batch, data, dtype, seed):
    specs = [data.draw(st.sampled_from(ACTIVATIONS)) for _ in widths[1:]]
    rng = np.random.default_rng(seed)
    weights, biases = random_layers(rng, widths, dtype)
    net = fastmlp.Network(weights, biases, specs)
    x = rng.uniform(-2, 2, (batch, widths[0])).astype(dtype)
    check(net, weights, biases, specs, x)
    if batch:
        check(net, weights, biases, specs, x[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,params", ACTIVATIONS)
def test_activations_stable_at_extremes(name, params, dtype):
    big = 3e38 if dtype == np.float32 else 1e300
    z = np.array([-big, -1e4, -1000, -100, -30, -1, -1e-8, 0, 1e-8, 1, 30, 100, 1000, 1e4, big],
                 dtype=dtype)
    net = fastmlp.Network([np.eye(z.size, dtype=dtype)], None, (name, params))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = net(z[None, :])[0]
    assert np.all(np.isfinite(got)), (name, got)
    # The exact value rounded to dtype; below dtype's normal range only an absolute bound holds.
    want = activate(name, z.astype(np.float64)[None, :], params)[0].astype(dtype)
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(got, want, rtol=rtol, atol=np.finfo(dtype).tiny)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_rows_sum_to_one_for_huge_logits(dtype):
    net = fastmlp.Network([np.eye(4, dtype=dtype)], None, "softmax")
    out = net(np.array([[1e4, 1e4 - 1, -1e4, 0], [-5e3, -5e3, -5e3, -5e3]], dtype=dtype))
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(out[1], 0.25)
    assert out[0, 0] > out[0, 1] > 0 and out[0, 2] == 0


def test_gelu_matches_erf_definition():
    z = np.linspace(-6, 6, 101)
    net = fastmlp.Network([np.eye(z.size)], None, "gelu")
    want = [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in z]
    np.testing.assert_allclose(net(z), want, rtol=1e-12, atol=1e-15)
