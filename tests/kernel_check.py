"""Checks one kernel variant (forced with FASTMLP_KERNEL) against the float64 reference.

Run as a script in a child process by test_kernels.py; prints the variant and 'ok'.
Widths avoid multiples of every vector width; batches sit around the micro-tile,
tile and thread boundaries.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import fastmlp  # noqa: E402
from conftest import random_layers  # noqa: E402
from reference import forward, tolerance  # noqa: E402

WIDTHS = [(1, 1), (3, 17, 2), (17, 33, 1), (33, 257, 3), (257, 300, 31), (5, 600, 40, 9)]
BATCHES = [1, 2, 3, 5, 7, 8, 9, 16, 23, 24, 25, 47, 48, 49, 100, 511, 512, 513, 1025]
ACTIVATIONS = ["relu", "tanh", "sigmoid", "softmax", ("leaky_relu", {"negative_slope": 0.3}),
               "elu", "gelu", "gelu_tanh", "silu", "softplus", "identity", "selu",
               ("celu", {"alpha": 0.5}), "mish", "hardswish", "hardsigmoid", "relu6",
               ("hardtanh", {"min_val": -0.5, "max_val": 2.0}), ("prelu", {"slope": -0.5}),
               "softsign", "log_softmax"]


def main():
    expected = os.environ.get("FASTMLP_KERNEL", "auto")
    active = fastmlp.build_info()["kernel"]
    assert expected in ("auto", active), (expected, active)
    rng = np.random.default_rng(2024)
    for dtype in (np.float32, np.float64):
        rtol, atol = tolerance(dtype)
        for i, widths in enumerate(WIDTHS):
            weights, biases = random_layers(rng, list(widths), dtype)
            specs = [ACTIVATIONS[(i + l) % len(ACTIVATIONS)] for l in range(len(widths) - 1)]
            names = [s if isinstance(s, str) else s[0] for s in specs]
            params = [{} if isinstance(s, str) else s[1] for s in specs]
            net = fastmlp.Network(weights, biases, specs)
            x = rng.uniform(-2, 2, (max(BATCHES), widths[0])).astype(dtype)
            want = forward(weights, biases, names, x, params)
            whole = net(x, threads=2)
            for batch in BATCHES:
                for threads in (1, 2):
                    got = net(x[:batch], threads=threads)
                    np.testing.assert_allclose(got, want[:batch], rtol=rtol,
                                               atol=atol * (1 + np.abs(want).max()),
                                               err_msg=f"{active} {dtype.__name__} {widths} {batch}")
                    # The same row gives the same bits in any batch, at any thread count.
                    assert np.array_equal(got, whole[:batch]), (active, widths, batch, threads)
            for row in (0, 7, 500, 1024):
                assert np.array_equal(net(x[row]), whole[row]), (active, widths, row)
    check_short_runs(rng, active)
    check_plans(rng, active)
    check_tiny_layers(rng, active)
    print(active, "ok")


def check_short_runs(rng, active):
    """Every activation over runs of fewer values than a vector holds (one row of a narrow
    layer, computed in a padded copy) gives the bits the same row gets in a long run."""
    for dtype in (np.float32, np.float64):
        for spec in ACTIVATIONS:
            for widths in [(3, 4, 2), (2, 7, 15), (6, 1, 3)]:
                weights, biases = random_layers(rng, list(widths), dtype)
                net = fastmlp.Network(weights, biases, [spec, spec])
                x = rng.uniform(-30, 30, (200, widths[0])).astype(dtype)
                x[3] = [np.inf, -np.inf, np.nan, 1e30, -1e30, 0][:widths[0]]
                whole = net(x, threads=1)
                for row in (0, 3, 77, 199):
                    assert np.array_equal(net(x[row:row + 1]), whole[row:row + 1],
                                          equal_nan=True), (active, spec, widths, row)


# Forced plans: every dense method, tile height and split gives the planned network's bits.
PLANS = [dict(dense="panels"), dict(dense="narrow"), dict(tile_rows=24, split="rows"),
         dict(tile_rows=48, split="columns", dense="narrow"), dict(split="columns"),
         dict(dense="panels", k_block=5), dict(tile_rows=24, k_block=16)]
PLAN_ACTIVATIONS = ["relu", ("leaky_relu", {"negative_slope": 0.3}), "sigmoid", "softmax",
                    "identity"]


def check_plans(rng, active):
    """The narrow-layer kernel at widths 1..17 (and one panel, 32), every forced plan (blocks
    of inputs included)."""
    for dtype in (np.float32, np.float64):
        rtol, atol = tolerance(dtype)
        for n_out in list(range(1, 18)) + [32]:
            n_in = 1 + (n_out * 7) % 40
            widths = [n_in, n_out, 3]
            weights, biases = random_layers(rng, widths, dtype)
            specs = [PLAN_ACTIVATIONS[n_out % len(PLAN_ACTIVATIONS)], "identity"]
            names = [s if isinstance(s, str) else s[0] for s in specs]
            params = [{} if isinstance(s, str) else s[1] for s in specs]
            net = fastmlp.Network(weights, biases, specs)
            x = rng.uniform(-2, 2, (130, n_in)).astype(dtype)
            want = forward(weights, biases, names, x, params)
            planned = net(x, threads=1)
            np.testing.assert_allclose(planned, want, rtol=rtol,
                                       atol=atol * (1 + np.abs(want).max()),
                                       err_msg=f"{active} {dtype.__name__} {widths}")
            for options in PLANS:
                forced = net._with_plan(**options)
                if options.get("dense") == "narrow":  # one panel: 128 bytes of outputs
                    narrow = active != "generic" and n_out * np.dtype(dtype).itemsize <= 128
                    method = forced.plan(25)["steps"][0]["method"]
                    assert method == ("narrow" if narrow else "panels"), (active, widths, method)
                for batch in (1, 2, 9, 25, 130):
                    for threads in (1, 2):
                        got = forced(x[:batch], threads=threads)
                        assert np.array_equal(got, planned[:batch]), (
                            active, dtype.__name__, widths, options, batch, threads)


# Layers of at most half a vector of inputs and outputs, several rows to a vector: every
# vector width's case (2 for AVX2 float64 up to 8 for AVX-512 float32) and one past it.
TINY_WIDTHS = [(3, 4, 2), (2, 2, 1), (1, 2, 2), (2, 1, 3), (4, 3, 4), (8, 5, 8), (7, 8, 3),
               (5, 6, 9, 1)]


def check_tiny_layers(rng, active):
    """The narrow kernel's several-rows-a-vector path: bit for bit what the panels give, at
    every batch (so every tail of a group of rows), thread count, and for rows holding NaN
    and inf; within the reference's tolerance."""
    for dtype in (np.float32, np.float64):
        rtol, atol = tolerance(dtype)
        for i, widths in enumerate(TINY_WIDTHS):
            weights, biases = random_layers(rng, list(widths), dtype)
            specs = [PLAN_ACTIVATIONS[(i + l) % len(PLAN_ACTIVATIONS)]
                     for l in range(len(widths) - 1)]
            specs[-1] = "identity" if i % 2 else specs[-1]
            names = [s if isinstance(s, str) else s[0] for s in specs]
            params = [{} if isinstance(s, str) else s[1] for s in specs]
            net = fastmlp.Network(weights, biases, specs)
            panels = net._with_plan(dense="panels")
            x = rng.uniform(-3, 3, (1000, widths[0])).astype(dtype)
            want = forward(weights, biases, names, x, params)
            whole = net(x, threads=1)
            np.testing.assert_allclose(whole, want, rtol=rtol, atol=atol * (1 + np.abs(want).max()),
                                       err_msg=f"{active} {dtype.__name__} {widths}")
            assert np.array_equal(whole, panels(x, threads=1)), (active, dtype, widths)
            for batch in list(range(1, 18)) + [130, 999]:
                for threads in (1, 2):
                    assert np.array_equal(net(x[-batch:], threads=threads), whole[-batch:]), (
                        active, dtype.__name__, widths, batch, threads)
            wide = np.zeros((40, widths[0] + 3), dtype)
            wide[:, :widths[0]] = x[:40]
            assert np.array_equal(net(wide[:, :widths[0]]), whole[:40]), (active, widths)
            odd = x[:9].copy()
            odd[2, 0], odd[5, -1], odd[7, 0] = np.nan, np.inf, -np.inf
            assert np.array_equal(net(odd), panels(odd), equal_nan=True), (active, widths)


if __name__ == "__main__":
    main()
