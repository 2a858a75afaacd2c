"""Every kernel variant this CPU can run, forced by FASTMLP_KERNEL, against the reference;
and the same bits for a row whatever the batch, its position in it and the thread count."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastmlp
from conftest import random_layers, skip_unless_runnable

HERE = os.path.dirname(__file__)


def run_forced(kernel):
    env = dict(os.environ, FASTMLP_KERNEL=kernel)
    return subprocess.run([sys.executable, os.path.join(HERE, "kernel_check.py")], env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("kernel", fastmlp.build_info()["kernels_built"])
def test_forced_variant_matches_reference(kernel):
    skip_unless_runnable(kernel)
    result = run_forced(kernel)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == f"{kernel} ok"


def test_unknown_or_unsupported_variant_fails_clearly():
    result = run_forced("sse9")
    assert result.returncode != 0
    assert "unknown kernel 'sse9'; valid: auto, generic" in result.stderr


def test_build_info():
    info = fastmlp.build_info()
    assert info["kernel"] in info["kernels_supported"]
    assert "generic" in info["kernels_supported"]
    assert info["default_threads"] >= 1
    assert info["emulated_isa"] in (True, False)  # True only in .ci/sanitize's EMULATE=1 build


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("widths", [[784, 512, 256, 10], [64, 128, 128, 10], [3, 4, 2]])
def test_row_bits_independent_of_batch_position_and_threads(dtype, widths):
    rng = np.random.default_rng(5)
    weights, biases = random_layers(rng, widths, dtype)
    net = fastmlp.Network(weights, biases, ["relu"] * (len(widths) - 2) + ["identity"])
    x = rng.standard_normal((3000, widths[0])).astype(dtype)
    whole = net(x, threads=2)
    assert np.array_equal(whole, net(x, threads=1))
    for start, stop in [(0, 1), (1, 2), (5, 37), (1000, 1032), (2999, 3000), (17, 2900)]:
        assert np.array_equal(net(x[start:stop]), whole[start:stop]), (start, stop)
        assert np.array_equal(net(x[start]), whole[start])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("last", ["softmax", "tanh", "relu"])
def test_small_batches_split_by_columns(dtype, last):
    """Batches smaller than a tile share each layer's columns between threads; a softmax
    over a layer split that way still sees the whole row."""
    from reference import forward, tolerance

    rng = np.random.default_rng(6)
    widths = [300, 700, 333]
    weights, biases = random_layers(rng, widths, dtype)
    net = fastmlp.Network(weights, biases, ["gelu", last])
    x = rng.standard_normal((40, widths[0])).astype(dtype)
    want = forward(weights, biases, ["gelu", last], x)
    whole = net(x, threads=1)
    rtol, atol = tolerance(dtype)
    np.testing.assert_allclose(whole, want, rtol=rtol, atol=atol)
    for rows in (1, 2, 3, 9, 40):
        assert np.array_equal(net(x[:rows], threads=2), whole[:rows]), rows
    assert np.array_equal(net(x[3], threads=2), whole[3])


def test_what_a_variant_needs_is_named():
    assert fastmlp._core.kernel_missing("generic") == ()
    for kernel in fastmlp.build_info()["kernels_built"]:
        missing = fastmlp._core.kernel_missing(kernel)
        assert (missing == ()) == (kernel in fastmlp.build_info()["kernels_supported"]), kernel
    with pytest.raises(ValueError, match="unknown kernel 'sse9'"):
        fastmlp._core.kernel_missing("sse9")
