"""The fastmlp command through its real entry points: help, demo, info, convert, bench, errors.

`predict` has its own file, tests/test_cli_predict.py.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import fastmlp
from clirun import RUNNERS, assert_one_line_error, run, run_in_process
from fastmlp import cli
from fastmlp.cli import bench as bench_command
from fastmlp.cli import demo

COMMANDS = list(cli.COMMANDS)


def make_net(dtype=np.float32):
    rng = np.random.default_rng(3)
    widths = [6, 16, 12, 3]
    weights = [rng.normal(size=(n, m)).astype(dtype) / np.sqrt(n)
               for n, m in zip(widths[:-1], widths[1:])]
    biases = [rng.normal(size=m).astype(dtype) for m in widths[1:]]
    activations = [("leaky_relu", {"negative_slope": 0.2}), "tanh", "identity"]
    return fastmlp.Network(weights, biases, activations, dtype=dtype)


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.npz"
    make_net().save(path)
    return path


def assert_same_network(a, b):
    assert a.shapes == b.shapes and a.activations == b.activations
    assert a.activation_params == b.activation_params
    for x, y in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(x, y)


# --------------------------------------------------------------------------- entry points


@pytest.mark.parametrize("command", [None] + list(cli.COMMANDS))
def test_every_subcommand_has_help(command):
    result = run(*([command] if command else []), "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: fastmlp{' ' + command if command else ''}")
    if command is None:
        for name in COMMANDS:
            assert name in result.stdout


def test_bench_help_names_its_options():
    result = run_in_process("bench", "--help")
    assert result.returncode == 0
    for option in ("MODEL", "--shape", "--batch", "--threads", "--seconds"):
        assert option in result.stdout, f"{option} missing from: {result.stdout}"


def test_console_script_runs():
    script = shutil.which("fastmlp") or os.path.join(os.path.dirname(sys.executable), "fastmlp")
    if not os.path.exists(script):
        pytest.skip("the fastmlp console script is not installed (pip install . adds it)")
    result = subprocess.run([script, "info", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("usage: fastmlp info")


def test_main_returns_exit_status(capsys):
    assert cli.main(["info", "--help"]) == 0
    assert cli.main(["info", "missing.npz"]) == 2
    assert capsys.readouterr().err.strip() == "fastmlp: error: missing.npz: no such file"


def test_commands_are_imported_on_demand():
    code = ("import sys\nfrom fastmlp.cli import main\nmain(['info', '--help'])\n"
            "print(sorted(m for m in sys.modules if m.startswith('fastmlp.cli.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    loaded = result.stdout.strip().splitlines()[-1]
    assert "fastmlp.cli.info" in loaded, result.stderr
    for other in ("demo", "predict", "convert", "bench"):
        assert f"fastmlp.cli.{other}'" not in loaded, f"{other} was imported: {loaded}"


def test_ctrl_c_during_start_up_is_one_line(monkeypatch):
    def interrupted(name):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.importlib, "import_module", interrupted)
    result = run_in_process("info", "model.npz")
    assert result.returncode == 130
    assert result.stderr == "fastmlp: interrupted\n"


def test_debug_variable_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("FASTMLP_DEBUG", "1")
    with pytest.raises(cli.CLIError, match="no such file"):
        cli.main(["info", "missing.npz"])


def test_no_command_is_a_usage_error():
    assert_one_line_error(run(), "COMMAND")


def test_import_stays_light():
    code = ("import sys, fastmlp, fastmlp.cli; "
            "print(sorted(m for m in ('dask', 'pandas', 'pyarrow', 'sklearn', 'torch') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.strip() == "[]", result.stderr


# --------------------------------------------------------------------------- demo


def test_demo_package_data_is_small_and_found_by_importlib_resources():
    model_ref, holdout_ref = demo.demo_files()
    assert model_ref.is_file() and holdout_ref.is_file()
    net, images, labels = demo.load_demo()
    assert images.shape == (300, 64) and images.dtype == np.uint8 and images.max() <= 16
    assert labels.shape == (300,) and set(np.unique(labels)) == set(range(10))
    assert (net.n_inputs, net.n_outputs) == (64, 10)
    sizes = [len(ref.read_bytes()) for ref in (model_ref, holdout_ref)]
    assert sum(sizes) < 64 * 1024, sizes


def test_demo_runs_on_numpy_alone():
    # Block the libraries the demo must not need; run the real `python -m fastmlp`.
    code = ("import runpy, sys\n"
            "for m in ('sklearn', 'scipy', 'pandas', 'pyarrow', 'dask', 'torch'):\n"
            "    sys.modules[m] = None\n"
            "sys.argv = ['fastmlp', 'demo']\n"
            "runpy.run_module('fastmlp', run_name='__main__')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    accuracy = float(re.search(r"accuracy on 300 held-out digits: ([\d.]+)%", out).group(1))
    assert accuracy >= 95.0  # the shipped model scores 97.3%
    assert out.count("predicted ") == 6
    assert re.search(r"[#%@]{4}", out)  # the shaded digits are drawn
    assert re.search(r"one sample at a time .* [\d.]+x", out)
    assert re.search(r"one batch of 300 rows .* [\d.]+x", out)
    diff = float(re.search(r"max \|fastmlp - numpy\| = ([\d.e+-]+)", out).group(1))
    assert diff < 1e-5


def test_digit_art_shades_pixels():
    image = np.zeros(64, dtype=np.uint8)
    image[0], image[9] = 16, 8
    art = demo.digit_art(image[None], [["label"]]).splitlines()
    assert art[0] == "  @@"
    assert art[1] == "    ==" and art[8].strip() == "label"


def test_plain_numpy_forward_matches_the_network():
    from fastmlp import _numpy_forward

    net, images, _ = demo.load_demo()
    x = images[:50].astype(np.float32)
    np.testing.assert_allclose(_numpy_forward.forward(_numpy_forward.layers_of(net), x),
                               net.forward(x), atol=1e-6)


# --------------------------------------------------------------------------- info


@pytest.mark.parametrize("runner", list(RUNNERS))
def test_info_lists_layers_parameters_and_flops(model, runner):
    result = RUNNERS[runner]("info", model)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "3 layers, 6 inputs -> 3 outputs, float32" in out
    assert re.search(r"0\s+6 x 16\s+leaky_relu\(negative_slope=0\.2\)\s+112", out)
    assert re.search(r"2\s+12 x 3\s+identity\s+39", out)
    n_params = 6 * 16 + 16 + 16 * 12 + 12 + 12 * 3 + 3
    assert f"parameters       {n_params:,}" in out
    assert f"FLOPs per sample {2 * (6 * 16 + 16 * 12 + 12 * 3):,}" in out
    assert f"{n_params * 4:,} bytes (1.4 KiB) of parameters" in out


def test_info_and_convert_keep_every_kind_of_layer(tmp_path):
    import numpy as np
    import fastmlp
    from fastmlp.layers import Activation, Affine, Dense, LayerNorm, Residual

    net = fastmlp.Network([Affine(np.ones(3), 0.5), Dense(np.ones((3, 4)), None, "relu"),
                           Residual([LayerNorm(width=4), Dense(np.ones((4, 4)))]),
                           Activation("tanh"), Dense(np.ones((4, 2)))])
    net.save(tmp_path / "m.npz")
    out = run("info", tmp_path / "m.npz").stdout
    for row in (r"0\s+affine 3\s+6", r"2\.0\s+layernorm 4\s+0", r"2\.1\s+4 x 4\s+identity\s+20",
                r"2\s+residual 4\s+x \+ f\(x\)", r"3\s+activation 4\s+tanh"):
        assert re.search(row, out), (row, out)
    converted = tmp_path / "m32.safetensors"
    if __import__("importlib").util.find_spec("safetensors") is None:
        converted = tmp_path / "m32.npz"
    assert run("convert", tmp_path / "m.npz", "-o", converted, "--dtype", "float32").returncode == 0
    back = fastmlp.load(converted)
    assert back.dtype == np.float32 and back.layers == net.astype("float32").layers


def test_info_json(model):
    result = run("info", model, "--json")
    d = json.loads(result.stdout)
    assert d["dtype"] == "float32" and (d["inputs"], d["outputs"]) == (6, 3)
    assert [layer["activation"] for layer in d["layers"]] == ["leaky_relu", "tanh", "identity"]
    assert d["layers"][0]["activation_params"] == {"negative_slope": 0.2}
    assert d["parameters"] == sum(layer["parameters"] for layer in d["layers"]) == 355


# --------------------------------------------------------------------------- convert


def test_convert_npz_safetensors_round_trip(tmp_path, model):
    pytest.importorskip("safetensors")  # writing .safetensors needs it; reading does not
    st, back = tmp_path / "m.safetensors", tmp_path / "back.npz"
    result = run("convert", model, "-o", st)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "", "the report belongs on stderr"
    assert f"wrote {st}: 3 layers, 6 inputs -> 3 outputs, float32, 355 parameters" in result.stderr
    assert run("convert", st, "-o", back).returncode == 0
    assert_same_network(fastmlp.load(model), fastmlp.load(back))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_convert_changes_dtype(tmp_path, model):
    out = tmp_path / "m64.npz"
    assert run("convert", model, "-o", out, "--dtype", "float64").returncode == 0
    net = fastmlp.load(out)
    assert net.dtype == np.float64
    np.testing.assert_array_equal(net.weights[0], fastmlp.load(model).weights[0])


def test_convert_from_onnx(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1, b1 = rng.normal(size=(4, 5)).astype(np.float32), rng.normal(size=5).astype(np.float32)
    w2, b2 = rng.normal(size=(5, 2)).astype(np.float32), rng.normal(size=2).astype(np.float32)
    inits = [numpy_helper.from_array(a, name) for a, name in
             ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))]
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"])]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])], inits)
    source = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), source)

    result = run("convert", source, "-o", tmp_path / "m.npz")
    assert result.returncode == 0, result.stderr
    net = fastmlp.load(tmp_path / "m.npz")
    x = rng.normal(size=(7, 4)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), np.maximum(x @ w1 + b1, 0) @ w2 + b2,
                               rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- bench


def test_bench_races_fastmlp_against_numpy_on_the_model(model):
    result = run("bench", model, "--batch", 64, "--threads", 1, "--seconds", 0.05)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"fastmlp bench: {model}, a 6 -> 16 -> 12 -> 3 float32 network"), out
    diff = float(re.search(r"max \|fastmlp - numpy\| = ([\d.e+-]+)", out).group(1))
    assert diff < 1e-4, out
    assert re.search(r"one row per call +[\d.]+ us/row +[\d.]+ us/row +[\d.]+x", out), out
    assert re.search(r"one batch of 64 rows +[\d.]+ us/row +[\d.]+ us/row +[\d.]+x", out), out


def test_bench_on_the_built_in_shape():
    result = run_in_process("bench", "--shape", "5-7-2", "--batch", 8, "--seconds", 0.02)
    assert result.returncode == 0, result.stderr
    assert "built-in 5-7-2, a 5 -> 7 -> 2 float32 network (relu, identity)" in result.stdout


def test_bench_errors_go_through_the_error_policy():
    assert_one_line_error(run_in_process("bench", "--shape", "5-x"),
                          "--shape '5-x'", "two or more positive widths")
    assert_one_line_error(run_in_process("bench", "--seconds", "0"), "--seconds must be positive")


def test_bench_refuses_to_time_a_wrong_answer():
    net = bench_command.built_in("4-3")
    x = np.ones((2, 4), np.float32)
    with pytest.raises(cli.CLIError, match="disagree"):
        bench_command.check_agreement(net, x, net.forward(x) + 1)
    assert bench_command.check_agreement(net, x, net.forward(x)) == 0.0


# --------------------------------------------------------------------------- errors


def test_missing_model(tmp_path):
    assert_one_line_error(run("info", tmp_path / "nope.npz"), "nope.npz: no such file")


def test_unknown_model_suffix(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(b"x")
    assert_one_line_error(run("info", path), "unknown model format '.pkl'")


def test_corrupt_model(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"this is not a zip file")
    assert_one_line_error(run("info", path), f"{path}: ")


def test_convert_to_unknown_format(tmp_path, model):
    assert_one_line_error(run("convert", model, "-o", tmp_path / "m.onnx"),
                          "use .npz or .safetensors")
    assert not (tmp_path / "m.onnx").exists()
    assert_one_line_error(run("convert", model, "-o", tmp_path / "no" / "m.npz"),
                          "directory", "does not exist")


def test_bad_option_is_one_line():
    assert_one_line_error(run("info", "m.npz", "--no-such-option"), "--no-such-option", "--help")
    assert_one_line_error(run("predict", "m.npz", "x.npy", "-o", "y.npy", "--batch-size", "0"),
                          "--batch-size", "must be 1 or more")


def test_unknown_command():
    assert_one_line_error(run("frobnicate"), "frobnicate")


# --------------------------------------------------------------------------- rough edges


def test_missing_optional_package_names_the_pip_command(tmp_path, model):
    result = run("convert", model, "-o", tmp_path / "m.safetensors", block=["safetensors"])
    assert_one_line_error(result, 'pip install "fastmlp[safetensors]"')
    assert list(tmp_path.iterdir()) == [model]


def test_convert_refuses_to_overwrite_its_source(model):
    before = model.read_bytes()
    assert_one_line_error(run_in_process("convert", model, "-o", model),
                          "refusing to overwrite the source model")
    assert model.read_bytes() == before


def test_unknown_kernel_warns_and_falls_back():
    env = dict(os.environ, FASTMLP_KERNEL="neon")
    code = "import fastmlp; print(fastmlp.build_info()['kernel'])"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "FASTMLP_KERNEL='neon' ignored: unknown kernel 'neon'" in result.stderr
    assert result.stdout.strip() in fastmlp.build_info()["kernels_supported"]
    assert run("info", "--help", env=env).returncode == 0


def test_source_tree_without_the_core_says_so(tmp_path):
    # A copy of the package's Python files, as in a clone's root before any build.
    root = os.path.dirname(fastmlp.__file__)
    shutil.copytree(root, tmp_path / "fastmlp",
                    ignore=shutil.ignore_patterns("_core*.so", "_core*.pyd", "__pycache__"))
    # -S: no site-packages, so nothing but the copy can answer `import fastmlp`.
    result = subprocess.run([sys.executable, "-S", "-m", "fastmlp", "info", "--help"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "compiled core (fastmlp/_core) is not built in" in result.stderr, result.stderr
    assert "source checkout shadowing the installed fastmlp" in result.stderr
    assert "circular import" not in result.stderr


def test_dir_lists_the_lazy_names():
    names = dir(fastmlp)
    for name in ("load", "predict_file", "from_sklearn", "from_torch", "from_keras",
                 "from_onnx", "Network", "build_info"):
        assert name in names, f"{name} missing from dir(fastmlp)"


def test_one_layer_model_is_described_in_the_singular(tmp_path):
    path = tmp_path / "one.npz"
    fastmlp.Network([np.ones((1, 1), np.float32)], None, "identity").save(path)
    result = run_in_process("info", path)
    assert f"{path}: 1 layer, 1 input -> 1 output, float32" in result.stdout, result.stdout


def layer_network():
    from fastmlp import Activation, Dense, LayerNorm, Residual

    return fastmlp.Network([Dense(np.ones((3, 4)), None, "relu"), LayerNorm(width=4),
                            Residual([Dense(np.ones((4, 4)))]), Activation("tanh"),
                            Dense(np.ones((4, 2)))])


def test_convert_dtype_keeps_every_layer():
    from fastmlp.cli import convert

    net = layer_network()
    converted = convert.with_dtype(net, "float32")
    assert converted.dtype == np.float32
    assert [type(layer) for layer in converted.layers] == [type(layer) for layer in net.layers]
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    np.testing.assert_allclose(converted.forward(x), net.forward(x), rtol=1e-6)


def test_numpy_race_refuses_layers_it_cannot_compute():
    from fastmlp import _numpy_forward

    with pytest.raises(ValueError, match="Dense layers only; this network has Activation"):
        _numpy_forward.layers_of(layer_network())
