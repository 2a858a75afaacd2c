"""Network.plan(): how a call runs, and forced plans (Network._with_plan) that give the same
bits as the planned one; every kernel variant is checked the same way in kernel_check.py."""
import numpy as np
import pytest

import fastmlp
from conftest import random_layers
from fastmlp.layers import Dense, LayerNorm, Residual
from reference import forward, tolerance


def chain(rng, widths, activations, dtype=np.float32):
    weights, biases = random_layers(rng, widths, dtype)
    return fastmlp.Network(weights, biases, activations), weights, biases


def test_plan_names_the_kernel_the_threads_and_each_dense_method(rng):
    net, _, _ = chain(rng, [784, 512, 256, 10], ["relu", "relu", "identity"])
    one = net.plan(1, threads=1)
    assert one["kernel"] == fastmlp.build_info()["kernel"]
    assert (one["batch"], one["threads"], one["split"], one["tile_rows"], one["tiles"]) == \
        (1, 1, "none", 1, 1)
    assert [s["method"] for s in one["steps"]] == ["one row"] * 3
    assert one["steps"][0]["step"] == "Dense 784->512 relu"
    big = net.plan(16384, threads=2)
    assert big["threads"] == 2 and big["split"] == "rows"
    assert big["tile_rows"] % 24 == 0 and big["tiles"] == -(-16384 // big["tile_rows"])
    # Scratch is bounded whatever the batch: one tile's buffers per thread.
    assert big["scratch_bytes"] == net.plan(1 << 20, threads=2)["scratch_bytes"]
    assert big["scratch_bytes"] < 4 << 20
    narrow = "panels" if fastmlp.build_info()["kernel"] == "generic" else "narrow"
    assert [s["method"] for s in big["steps"]] == ["panels", "panels", narrow]


def test_buffers_too_wide_for_l2_get_tall_tiles_and_stay_bounded(rng):
    """Wide intermediates stream through L3 whatever the height: the plan then takes tall
    tiles (288 rows), so each block of weights fetched serves more rows, within a bound
    set by the widths alone."""
    weights, _ = random_layers(rng, [64, 4096, 8], np.float32)
    wide = fastmlp.Network(weights, None, ["relu", "identity"])
    narrow, _, _ = chain(rng, [64, 256, 8], ["relu", "identity"])
    assert wide.plan(16384, threads=1)["tile_rows"] == 288
    assert narrow.plan(16384, threads=1)["tile_rows"] != 288
    two = wide.plan(1024, threads=2)  # two tall tiles per thread, not four short ones
    # 256 rows each, rounded up to whole micro-tiles of the kernel (8 rows on AVX-512, 6 on
    # AVX2, 2 on the portable kernel)
    assert two["tiles"] == 4 and 256 <= two["tile_rows"] < 256 + 8
    bound = wide.plan(16384, threads=1)["scratch_bytes"]
    assert wide.plan(1 << 20, threads=1)["scratch_bytes"] == bound < 288 * 4160 * 4 * 3


def test_small_batches_of_a_big_network_share_columns(rng):
    net, _, _ = chain(rng, [784, 512, 256, 10], ["relu", "relu", "identity"])
    plan = net.plan(8, threads=2)
    assert plan["split"] == "columns" and plan["tiles"] == 1


def test_plan_of_other_steps_and_reduced_precision(rng):
    weights, biases = random_layers(rng, [6, 6, 6], np.float32)
    net = fastmlp.Network([LayerNorm(width=6), Residual([Dense(weights[0], biases[0], "relu")]),
                           Dense(weights[1], biases[1])])
    steps = net.plan(64)["steps"]
    assert [s["step"] for s in steps] == ["LayerNorm (6 features)", "residual block begins",
                                          "Dense 6->6 relu", "Residual (6 features)",
                                          "Dense 6->6 identity"]
    assert "method" not in steps[0] and "method" in steps[2]
    reduced = net.quantize("int8").plan(64)["steps"]
    assert reduced[2]["method"] == reduced[4]["method"] == "reduced precision"


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_reduced_precision_tiles_hold_whole_groups_and_their_prepared_rows(rng, precision):
    """A quantized network's tiles are whole groups of 32 rows (AMX's two tiles of 16; every
    variant's group divides it), and its scratch, the rows each layer prepares included,
    stays within the tile's target (the float network's tiles are sized by their buffers)."""
    net, _, _ = chain(rng, [784, 512, 256, 10], ["relu", "relu", "identity"])
    reduced = net.quantize(precision)
    for batch, threads in [(16384, 1), (16384, 2), (1000, 2), (333, 1)]:
        plan = reduced.plan(batch, threads=threads)
        if plan["tiles"] > 1:
            assert plan["tile_rows"] % 32 == 0, plan
        per_thread = plan["scratch_bytes"] / plan["threads"]
        assert per_thread <= plan["tile_target_bytes"], plan
    assert reduced.plan(16384, threads=1)["tile_rows"] < net.plan(16384, threads=1)["tile_rows"]


@pytest.mark.parametrize("bad, message", [
    (dict(split="diagonal"), "valid: auto, rows, columns"),
    (dict(dense="wide"), "valid: auto, panels, narrow"),
    (dict(tile_rows=-1), "tile_rows must be a non-negative integer"),
    (dict(k_block=-5), "k_block must be a non-negative integer"),
    (dict(k_block=2.0), "k_block must be a non-negative integer"),
])
def test_unknown_plan_choices_are_refused(rng, bad, message):
    net, _, _ = chain(rng, [3, 4, 2], ["sigmoid", "identity"])
    with pytest.raises(ValueError, match=message):
        net._with_plan(**bad)


@pytest.mark.parametrize("batch", [0, -1, 2.5, True])
def test_plan_of_a_bad_batch_is_refused(rng, batch):
    net, _, _ = chain(rng, [3, 4, 2], ["sigmoid", "identity"])
    with pytest.raises(ValueError, match="batch must be a positive integer"):
        net.plan(batch)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("widths, activations", [
    ([3, 4, 2], ["sigmoid", "identity"]),
    ([40, 17, 9, 1], ["relu", ("leaky_relu", {"negative_slope": 0.2}), "identity"]),
    ([64, 128, 128, 10], ["relu", "relu", "softmax"]),
])
def test_every_forced_plan_gives_the_planned_bits(rng, dtype, widths, activations):
    net, weights, biases = chain(rng, widths, activations, dtype)
    x = rng.uniform(-2, 2, (300, widths[0])).astype(dtype)
    planned = net(x, threads=1)
    names = [a if isinstance(a, str) else a[0] for a in activations]
    params = [{} if isinstance(a, str) else a[1] for a in activations]
    want = forward(weights, biases, names, x, params)
    rtol, atol = tolerance(dtype)
    np.testing.assert_allclose(planned, want, rtol=rtol, atol=atol * (1 + np.abs(want).max()))
    for tile_rows in (0, 24, 72):
        for split in ("auto", "rows", "columns"):
            for dense in ("auto", "panels", "narrow"):
                forced = net._with_plan(tile_rows, split, dense)
                for batch in (1, 2, 25, 300):
                    for threads in (1, 2):
                        got = forced(x[:batch], threads=threads)
                        assert np.array_equal(got, planned[:batch]), \
                            (tile_rows, split, dense, batch, threads)


# Inputs 4 KiB apart (1024 floats, 512 doubles) are packed per block; others are read in
# place: both, in blocks of every size, sum each output in the same order.
@pytest.mark.parametrize("dtype, widths", [
    (np.float32, [1024, 40, 3]), (np.float32, [300, 70, 5]),
    (np.float64, [512, 40, 3]), (np.float64, [100, 33, 2]),
])
def test_every_forced_block_of_inputs_gives_the_planned_bits(rng, dtype, widths):
    net, weights, biases = chain(rng, widths, ["tanh", "identity"], dtype)
    x = rng.uniform(-2, 2, (200, widths[0])).astype(dtype)
    planned = net(x, threads=1)
    want = forward(weights, biases, ["tanh", "identity"], x)
    rtol, atol = tolerance(dtype)
    np.testing.assert_allclose(planned, want, rtol=rtol, atol=atol * (1 + np.abs(want).max()))
    for k_block in (1, 7, 64, 100, 256, 5000):
        for tile_rows in (0, 24):
            forced = net._with_plan(tile_rows, k_block=k_block)
            assert forced.plan(200)["steps"][0]["inputs_per_block"] == min(k_block, widths[0])
            for batch in (2, 25, 200):
                for threads in (1, 2):
                    got = forced(x[:batch], threads=threads)
                    assert np.array_equal(got, planned[:batch]), (k_block, tile_rows, batch)


def test_the_plan_shows_the_inputs_per_block(rng):
    net, _, _ = chain(rng, [784, 512, 256, 10], ["relu", "relu", "identity"])
    steps = net.plan(1000, threads=1)["steps"]
    assert all(0 < s["inputs_per_block"] <= n for s, n in zip(steps[:2], (784, 512)))
    assert "inputs_per_block" not in net.plan(1, threads=1)["steps"][0]  # one row: all inputs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocks_of_inputs_keep_the_rows_block_in_l2(rng, dtype):
    """A block of inputs of the tallest tile's rows stays in L2 (twice the tile's target),
    a quarter of that for float64 (a panel reads four times the bytes of rows per
    multiply-add), so that the panels do not each read the rows again from L3; but a block
    has at least 4 KiB of a row (1024 float32 inputs, 512 float64), or all of them, so that
    its fixed costs stay small."""
    net, _, _ = chain(rng, [1024, 4096, 1024], ["relu", "identity"], dtype)
    plan = net.plan(1 << 16, threads=1)
    elem = np.dtype(dtype).itemsize
    fewest = 4096 // elem
    for step, n_in in zip(plan["steps"], (1024, 4096)):
        k = step["inputs_per_block"]
        in_l2 = k * plan["tile_rows"] * elem * elem / 4 <= 2 * plan["tile_target_bytes"]
        assert k == n_in or in_l2 or k == fewest
        assert k >= fewest
    if dtype == np.float64:  # whatever the L2: the target is at most 1 MiB
        assert plan["steps"][1]["inputs_per_block"] < 4096


def test_forced_tile_rows_show_in_the_plan(rng):
    net, _, _ = chain(rng, [40, 17, 9, 1], ["relu", "relu", "identity"])
    plan = net._with_plan(tile_rows=30).plan(1000, threads=1)
    assert plan["tile_rows"] == 48 and plan["tiles"] == 21  # rounded up to 24s
    assert net._with_plan(split="columns").plan(1000, threads=2)["split"] == "columns"
    assert net._with_plan(split="rows").plan(30, threads=2)["split"] == "rows"
