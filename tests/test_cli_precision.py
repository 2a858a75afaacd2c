"""The command line's --precision: demo, predict and convert in bfloat16 / int8, info's
account of what reduced weights take."""
import numpy as np
import pytest

import fastmlp
from clirun import run
from conftest import random_layers


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
