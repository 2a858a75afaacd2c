"""Reduced precision: bfloat16 and int8 weights, each layer checked against the error
bound its arithmetic allows, bit-identical rows, on every kernel variant this machine runs;
int8 gives the same bits on every variant, bfloat16 on those summing one product at a time."""
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastmlp
from fastmlp._quantize import QuantizedWeights, from_bfloat16, to_bfloat16, to_int8
from fastmlp.layers import Dense, LayerNorm, Residual
from conftest import random_layers, skip_unless_runnable

HERE = os.path.dirname(__file__)
U_BF16 = 2.0 ** -8   # unit roundoff of bfloat16 (8 significant bits)
U_F32 = 2.0 ** -24


def gamma(n):
    return n * U_F32 / (1 - n * U_F32)


def bf16_bound(a, w, b):
    """|z - (a w + b)| for inputs and weights rounded to bfloat16 (each product then exact
    in float32, 2u + u^2 relative) and a float32 sum of n_in + 1 terms."""
    s = np.abs(a) @ np.abs(w) + np.abs(b)
    return (2 * U_BF16 + U_BF16 ** 2 + gamma(w.shape[0] + 1) * (1 + U_BF16) ** 2) * s


def int8_bound(a, w, b, w_scales):
    """|z - (a w + b)| for q_x s_x . q_w s_w: each input off by at most s_x / 2 plus the
    rounding of x * fl(1 / s_x) (two float32 roundings of a value of at most 127(1 + u):
    under 254 u (1 + u)^2 < 2^-16 in units of s_x), each weight by s_w / 2; then the
    scaling (in double, rounded to float) and the bias add: within 4 float32 roundings."""
    s_x = (np.max(np.abs(a), axis=1, keepdims=True) / 127).astype(np.float32).astype(float)
    e_x = s_x * (0.5 + 2.0 ** -16)
    e_w = w_scales.astype(float) / 2
    quantization = np.abs(a) @ np.ones_like(w) * e_w + e_x * np.abs(w).sum(axis=0) \
        + e_x * e_w * w.shape[0]
    terms = (np.abs(a) + e_x) @ (np.abs(w) + e_w) + np.abs(b)
    return quantization + gamma(4) * terms


def network(rng, widths, dtype=np.float64, last="identity"):
    weights, biases = random_layers(rng, widths, dtype)
    return fastmlp.Network(weights, biases, ["relu"] * (len(widths) - 2) + [last])


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
@pytest.mark.parametrize("widths", [[784, 512, 256, 10], [64, 128, 128, 10], [3, 4, 2],
                                    [300, 33, 7]])
def test_every_layer_within_the_bound_of_its_arithmetic(precision, widths):
    rng = np.random.default_rng(sum(widths))
    net = network(rng, widths)
    q = net.quantize(precision)
    assert q.precision == precision and q.dtype == np.float32
    x = rng.standard_normal((257, widths[0])).astype(np.float32)
    a = x.astype(np.float64)
    for l, (z, out) in enumerate(q.trace(x)):
        w, b = net.weights[l], net.biases[l]  # the float64 weights it was quantized from
        want = a @ w + b
        if precision == "bfloat16":
            bound = bf16_bound(a, w, b)
        else:
            bound = int8_bound(a, w, b, q.layers[l].weights.scales)
        excess = np.abs(z - want) - bound
        assert excess.max() <= 0, (l, float(excess.max()), float(bound.max()))
        assert np.abs(z - want).max() > 0  # it is not float32 in disguise
        a = out.astype(np.float64)  # the next layer's input: what this one really gave


def test_float64_networks_are_quantized_from_their_float64_weights():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((5, 3))
    w[0, 0] = 1 + 2.0 ** -8 + 2.0 ** -40  # rounds up from float64, to even via float32
    net = fastmlp.Network([w], None, "identity")
    assert net.quantize("bf16").layers[0].weights.values[0, 0] == 0x3F81
    assert to_bfloat16(np.float32(w[0, 0])) == 0x3F80
    q, s = to_int8(w)
    assert np.array_equal(net.quantize("int8").layers[0].weights.values, q)


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_rows_get_the_same_bits_whatever_the_batch(precision):
    rng = np.random.default_rng(2)
    net = network(rng, [64, 128, 128, 10]).quantize(precision)
    x = rng.standard_normal((5000, 64)).astype(np.float32)
    whole = net(x, threads=2)
    assert np.array_equal(whole, net(x, threads=1))
    # around the micro-kernels' row groups (4, 8) and AMX's tiles of 16 rows, 32 per group
    for start, stop in [(0, 1), (1, 2), (3, 7), (0, 15), (0, 16), (1, 18), (0, 32), (9, 42),
                        (100, 133), (4000, 4999), (17, 4900)]:
        assert np.array_equal(net(x[start:stop]), whole[start:stop]), (start, stop)
        assert np.array_equal(net(x[start], threads=2), whole[start]), start


# The variants whose bfloat16 kernel sums one exact product at a time, in the order of k
# (a fused multiply-add or a float multiply and add: the same rounding). avx512_bf16
# (vdpbf16ps) and amx (tdpbf16ps) add products in the hardware's order and flush
# subnormals to zero; within the same bound (a flushed subnormal is off by less than
# 2^-126), but not always the same last bit.
SEQUENTIAL_BF16 = ("generic", "avx2", "avx2_vnni", "avx512")


@pytest.mark.parametrize("kernel", fastmlp.build_info()["kernels_built"])
def test_forced_variant_within_the_bound_with_rows_independent(kernel):
    """This file's bound, batch and extreme-row tests again, in a child process with the
    variant forced. A run already pinned to one variant (FASTMLP_KERNEL set, as .ci/sanitize
    does for each in turn) is that variant's own check: it skips the others."""
    skip_unless_runnable(kernel)
    pinned = os.environ.get("FASTMLP_KERNEL", "auto")
    if pinned not in ("", "auto"):
        pytest.skip(f"this run is pinned to FASTMLP_KERNEL={pinned}; each variant runs in its own")
    env = dict(os.environ, FASTMLP_KERNEL=kernel)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k",
         "within_the_bound_of or whatever_the_batch or extreme_rows"],
        env=env, capture_output=True, text=True, timeout=1200, cwd=HERE)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_every_kernel_variant_gives_the_same_bits(precision):
    """int8 sums are exact: every variant agrees bit for bit. bfloat16 products are exact in
    float32: the variants summing them one at a time in one fixed order agree bit for bit.
    (Activations built on exp use a fused multiply-add where the variant has one, so their
    last bit may differ between variants, in float32 networks as in these; relu and
    identity do not.)"""
    code = textwrap.dedent(f"""
        import sys, hashlib, numpy as np, fastmlp
        sys.path.insert(0, {HERE!r})
        from conftest import random_layers
        rng = np.random.default_rng(3)
        w, b = random_layers(rng, [300, 65, 33, 7], np.float64)
        net = fastmlp.Network(w, b, ["relu", ("leaky_relu", {{"negative_slope": 0.1}}),
                                     "identity"]).quantize({precision!r})
        x = rng.standard_normal((531, 300)).astype(np.float32)
        x[7] = 0  # a zero row; then rows whose int8 scale is subnormal, and underflows
        x[8] *= np.float32(1e-38); x[9] *= np.float32(1e-44)
        y = np.concatenate([net(x), net(x[:1]), net(x[:5], threads=2), net(x[:17])])
        print(fastmlp.build_info()["kernel"], hashlib.sha256(y.tobytes()).hexdigest())
    """)
    digests = {}
    for kernel in fastmlp.build_info()["kernels_supported"]:
        if precision == "bfloat16" and kernel not in SEQUENTIAL_BF16:
            continue  # within the bound: test_forced_variant_within_the_bound_...
        env = dict(os.environ, FASTMLP_KERNEL=kernel)
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        name, digest = result.stdout.split()
        assert name == kernel
        digests[kernel] = digest
    assert len(set(digests.values())) == 1, digests


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_extreme_rows(precision):
    rng = np.random.default_rng(4)
    base = network(rng, [6, 5, 3]).astype("float32")
    net = base.quantize(precision)
    as_float = fastmlp.Network([Dense(np.asarray(layer.weights), layer.bias, layer.activation)
                                for layer in net.layers], dtype="float32")
    x = np.array([[0, 0, 0, 0, 0, 0], [3e38, 1, -1, 0, 2, 0.5], [np.nan, 0, 0, 0, 0, 0],
                  [np.inf, 0, 1, 0, 0, 0], [-np.inf, 1, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0]],
                 np.float32)
    x.view(np.uint32)[5, 0] = 0x7F800001  # a NaN with its payload in the low 16 bits only
    got = net(x)
    # a zero row gives the biases through the layers, as in float
    np.testing.assert_allclose(got[0], as_float(x[0]), rtol=1e-2, atol=1e-6)
    assert np.isfinite(got[1]).all()  # one huge value: its own scale, no overflow
    # NaN and inf propagate where the float network of the same weights has them
    want = as_float(x[2:])
    assert np.array_equal(np.isnan(got[2:]), np.isnan(want))
    assert np.array_equal(np.isinf(got[2:]), np.isinf(want))


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_model_files_keep_the_precision(tmp_path, precision, suffix):
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")
    rng = np.random.default_rng(5)
    net = fastmlp.Network([LayerNorm(width=30), Dense(rng.standard_normal((30, 40)), None, "relu"),
                           Residual([Dense(rng.standard_normal((40, 40)) / 7)]),
                           Dense(rng.standard_normal((40, 3)))]).quantize(precision)
    path = tmp_path / f"m{suffix}"
    net.save(path)
    back = fastmlp.load(path)
    assert back.precision == precision and back.layers == net.layers
    x = rng.standard_normal((20, 30)).astype(np.float32)
    assert np.array_equal(back(x), net(x))
    copy = pickle.loads(pickle.dumps(net))
    assert copy.precision == precision and np.array_equal(copy(x), net(x))


def test_int8_files_are_about_a_quarter_of_float32(tmp_path):
    rng = np.random.default_rng(6)
    net = network(rng, [256, 256, 64]).astype("float32")
    net.save(tmp_path / "f.npz")
    net.quantize("int8").save(tmp_path / "q.npz")
    net.quantize("bf16").save(tmp_path / "h.npz")
    f, q, h = (os.path.getsize(tmp_path / n) for n in ("f.npz", "q.npz", "h.npz"))
    assert q < 0.3 * f and h < 0.55 * f, (f, q, h)


def test_quantize_and_precision_errors():
    net = fastmlp.Network([np.ones((3, 2))], None, "relu")
    with pytest.raises(ValueError, match="unknown precision 'int4'; valid: float32, float64, "
                                         "bfloat16, int8"):
        net.quantize("int4")
    with pytest.raises(ValueError, match="quantize takes bfloat16 or int8"):
        net.quantize("float32")
    with pytest.raises(ValueError, match="int8 networks compute in float32"):
        fastmlp.Network([np.ones((3, 2))], None, "relu", dtype="float64", precision="int8")
    with pytest.raises(ValueError, match="overflow bfloat16"):
        fastmlp.Network([np.full((2, 2), 3.4e38)], None, "relu", precision="bf16")
    assert "precision=int8" in repr(net.quantize("int8"))
    assert net.quantize("int8").astype("float64").precision == "float64"


def test_quantized_weights_read_as_their_float_values():
    w = np.array([[0.5, -1.0], [0.25, 2.0]])
    q = QuantizedWeights.quantize("int8", w)
    assert q.scales.tolist() == [np.float32(0.5 / 127), np.float32(2 / 127)]
    np.testing.assert_allclose(np.asarray(q), w, rtol=1 / 127)
    assert from_bfloat16(to_bfloat16(w)).tolist() == w.tolist()  # exact in bfloat16
    with pytest.raises(ValueError, match="one float32 scale per column"):
        QuantizedWeights("int8", q.values, np.ones(3, np.float32))
