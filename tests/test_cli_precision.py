"""The command line's --precision: demo, predict, convert and bench in bfloat16 / int8, info's
account of what reduced weights take."""
import re

import numpy as np
import pytest

import fastmlp
import reference
from clirun import assert_one_line_error, run, run_in_process
from conftest import random_layers
from fastmlp._cpuflags import CPU_FLAGS, cpu_flags, kernel_header
from fastmlp.cli import CLIError, bench
from fastmlp.cli._timing import race_all


@pytest.fixture
def model(tmp_path):
    rng = np.random.default_rng(8)
    weights, biases = random_layers(rng, [6, 16, 3], np.float32)
    net = fastmlp.Network(weights, biases, ["relu", "identity"])
    net.save(tmp_path / "m.npz")
    return net, tmp_path / "m.npz"


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_demo_reports_the_accuracy_of_each_precision(precision):
    result = run("demo", "--precision", precision, "--show", "0")
    assert result.returncode == 0, result.stderr
    assert "(float32 inputs and outputs) network" in result.stdout
    accuracy = float(result.stdout.split("held-out digits: ")[1].split("%")[0])
    assert accuracy >= 95.0, result.stdout  # float32: 97.3%


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_predict_computes_in_the_precision_asked(model, tmp_path, precision):
    net, path = model
    x = np.random.default_rng(9).standard_normal((50, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result = run("predict", path, tmp_path / "x.npy", "-o", tmp_path / "y.npy", "--precision",
                 precision, "-q")
    assert result.returncode == 0, result.stderr
    got = np.load(tmp_path / "y.npy")
    assert np.array_equal(got, net.quantize(precision)(x))
    assert not np.array_equal(got, net(x))


def test_convert_stores_int8_and_info_counts_its_bytes(model, tmp_path):
    net, path = model
    result = run("convert", path, "-o", tmp_path / "q.npz", "--precision", "int8")
    assert result.returncode == 0, result.stderr
    back = fastmlp.load(tmp_path / "q.npz")
    assert back.precision == "int8" and back.layers == net.quantize("int8").layers
    info = run("info", tmp_path / "q.npz").stdout
    assert "float32, int8 weights" in info
    # 6*16 + 16*3 int8 weights, 16 + 3 float32 scales and biases each
    stored = 6 * 16 + 16 * 3 + 4 * (2 * (16 + 3))
    assert f"{stored:,} bytes" in info, info
    both = run("convert", path, "-o", tmp_path / "r.npz", "--precision", "int8", "--dtype",
               "float64")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


# --------------------------------------------------------------------------- bench

TIME = r"[\d.]+ us/row"
RATIO = r"[\d.]+x"
ERROR = r"(\d\.\de[+-]\d\d)"


def bench_errors(out):
    """The three max relative errors bench prints: numpy, fastmlp float32, fastmlp reduced."""
    row = re.search(rf"max relative error +{ERROR} +{ERROR} +{ERROR}\n", out)
    assert row, out
    return [float(e) for e in row.groups()]


def max_relative_error(y, want):
    return float(np.max(np.abs(y - want)) / np.max(np.abs(want)))


@pytest.mark.parametrize("precision, name, short", [("bf16", "bfloat16", "bf16"),
                                                   ("int8", "int8", "int8")])
def test_bench_races_the_quantized_network(precision, name, short):
    result = run_in_process("bench", "--shape", "6-16-3", "--batch", 40, "--threads", 1,
                            "--seconds", 0.05, "--precision", precision)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("fastmlp bench: built-in 6-16-3, a 6 -> 16 -> 3 network (relu, "
                          f"identity) with {name} weights, float32 inputs and outputs"), out
    assert f"fastmlp kernel: {fastmlp.build_info()['kernel']}; " in out
    assert "CPU reduced-precision flags: avx512_bf16 " in out
    header = next(line for line in out.splitlines() if "vs float32" in line).split()
    assert header == ["numpy", "float32", short, "vs", "numpy", "vs", "numpy", "vs", "float32"]
    for label in ("one row per call", "one batch of 40 rows"):
        assert re.search(rf"{label} +{TIME} +{TIME} +{TIME} +{RATIO} +{RATIO} +{RATIO}\n",
                         out), out
    assert "max relative error = max |y - y_ref| / max |y_ref|" in out
    # the errors are those of the networks bench names, against float64 on the same input
    net = bench.built_in("6-16-3")
    x = np.random.default_rng(0).standard_normal((40, 6)).astype(np.float32)
    want = reference.forward(net.weights, net.biases, net.activations, x.astype(np.float64))
    numpy_err, float32_err, reduced_err = bench_errors(out)
    assert numpy_err < 1e-5 and float32_err < 1e-5
    assert reduced_err == float(f"{max_relative_error(net.quantize(precision)(x), want):.1e}")
    assert reduced_err > 1e-5  # the network raced really is the quantized one


def test_bench_of_a_stored_int8_model_needs_no_flag(model):
    """A model stored in int8 races in int8 (against its weights' float values): its
    difference from numpy is reported, not refused with float32's tolerance."""
    net, path = model
    stored = path.with_name("q.npz")
    net.quantize("int8").save(stored)
    result = run_in_process("bench", stored, "--batch", 16, "--seconds", 0.05)
    assert result.returncode == 0, result.stderr
    assert "with int8 weights" in result.stdout
    assert "on the float values of the stored weights" in result.stdout
    assert 1e-5 < bench_errors(result.stdout)[2] < 0.05


def test_bench_float_precisions_keep_the_two_way_race(model):
    _, path = model
    result = run_in_process("bench", path, "--batch", 16, "--seconds", 0.05,
                            "--precision", "float64")
    assert result.returncode == 0, result.stderr
    assert "a 6 -> 16 -> 3 float64 network (relu, identity); max |fastmlp - numpy|" \
        in result.stdout
    assert "max relative error" not in result.stdout


def test_bench_unknown_precision_lists_the_valid_ones():
    line = assert_one_line_error(run_in_process("bench", "--precision", "fp8"),
                                 "--precision", "'fp8'")
    for name in ("float32", "float64", "bfloat16", "bf16", "int8"):
        assert f"'{name}'" in line


def test_bench_agreement_of_a_reduced_network_is_reported_not_refused():
    net = bench.built_in("4-3")
    x = np.ones((2, 4), np.float32)
    for reduced in (net.quantize("bf16"), net.quantize("int8")):
        far = net.forward(x) + 1
        assert bench.check_agreement(reduced, x, far) == np.max(np.abs(reduced(x) - far))
    with pytest.raises(CLIError, match="disagree"):
        bench.check_agreement(net, x, net.forward(x) + 1)


def test_race_all_times_every_function():
    calls = [0, 0, 0]

    def counter(i):
        return lambda: calls.__setitem__(i, calls[i] + 1)

    per_row = race_all([counter(i) for i in range(3)], rows=4, budget=0.001, rounds=3)
    assert len(per_row) == 3 and all(0 < t < float("inf") for t in per_row)
    assert min(calls) >= 1 + 3  # the calibration call and one loop a round at least


def test_kernel_header_names_the_flags_and_amx():
    assert set(cpu_flags()) == set(CPU_FLAGS)
    assert all(isinstance(v, bool) for v in cpu_flags().values())
    none = dict.fromkeys(CPU_FLAGS, False)
    assert kernel_header("avx2", none) == (
        "fastmlp kernel: avx2; CPU reduced-precision flags: avx512_bf16 no, avx512_vnni no, "
        "avx_vnni no, amx_bf16 no, amx_int8 no, amx_tile no (no AMX)")
    tiles = {**none, "amx_tile": True, "amx_int8": True}
    assert kernel_header("avx512", tiles).endswith("amx_tile yes (AMX for int8)")
    assert kernel_header("avx512", {**tiles, "amx_bf16": True}).endswith(
        "(AMX for bfloat16, int8)")
