"""Smoke tests of the benchmark harness (benchmarks/harness.py, benchmarks/run.py).

They run it in --quick mode on one tiny network and batch through its real entry points and
check that it prints a table with ratios and writes valid JSON. No timing assertions: the
numbers are whatever the machine gives. Peers that are not installed are skipped by the
harness itself (and reported as skipped). The harness is a script of the repository, not of the
package: where the tests run away from a checkout (against an installed wheel), there is none.
"""
import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(ROOT, "benchmarks")
if not os.path.isfile(os.path.join(BENCHMARKS, "harness.py")):
    pytest.skip("benchmarks/ is a directory of the repository, not of the installed package",
                allow_module_level=True)
sys.path.insert(0, BENCHMARKS)
import harness as bench  # noqa: E402
TINY = ["--networks", "3-4-2", "--batches", "1", "--threads", "1", "--time-per-cell", "0.002",
        "--no-gemm", "--no-overhead", "--import-runs", "0", "--memory-rows", "0",
        "--precisions", "none"]
FAST_PEERS = ["--peers", "numpy,numpy-careful"]


def installed_peers():
    return [p for p in bench.DEFAULT_PEERS if not bench.COMPETITORS[p].missing()]


def check_json(path, peers):
    with open(path) as f:
        data = json.load(f, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert data["errors"] == [], data["errors"]  # every competitor matched the reference
    cases = [c for c in data["cases"] if c["dtype"] == "float32"]
    assert len(cases) == 1 and cases[0]["batch"] == 1 and cases[0]["threads"] == 1
    tools = cases[0]["tools"]
    assert set(tools) == {"fastmlp", *peers}
    for t in tools.values():
        assert t["median_us"] > 0 and t["rounds"] >= 1
    assert set(cases[0]["ratios"]) == set(peers)
    assert cases[0]["best_peer"] in peers
    return data


def check_table(text, peers):
    assert "3-4-2 sigmoid/identity" in text
    row = next(line for line in text.splitlines() if line.lstrip().startswith("1 |"))
    assert row.count("x)") == len(peers)  # one ratio per peer
    assert "Summary" in text


def test_module_entry_all_installed_peers(tmp_path, capsys):
    peers = installed_peers()
    out = tmp_path / "r.json"
    rc = bench.main(["--quick", *TINY, "--no-float64", "--peers", ",".join(peers),
                     "--json", str(out)])
    assert rc == 0
    check_table(capsys.readouterr().out, peers)
    check_json(out, peers)


def test_parser_hooks(tmp_path, capsys):
    """configure_parser + main_from_args, with the quick default."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd")
    bench.configure_parser(sub.add_parser("bench"))
    args = parser.parse_args(["bench", *TINY, *FAST_PEERS, "--json", str(tmp_path / "r.json")])
    assert args.quick and args.model is None
    assert bench.main_from_args(args) == 0
    check_table(capsys.readouterr().out, ["numpy", "numpy-careful"])
    data = check_json(tmp_path / "r.json", ["numpy", "numpy-careful"])
    assert {c["dtype"] for c in data["cases"]} == {"float32", "float64"}


def test_run_py_subprocess(tmp_path):
    script = os.path.join(BENCHMARKS, "run.py")
    out, chart = tmp_path / "r.json", tmp_path / "r.png"
    args = [sys.executable, script, "--quick", *TINY,
            *FAST_PEERS, "--no-float64", "--json", str(out)]
    if importlib.util.find_spec("matplotlib"):
        args += ["--chart", str(chart)]
    p = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    check_table(p.stdout, ["numpy", "numpy-careful"])
    check_json(out, ["numpy", "numpy-careful"])
    if importlib.util.find_spec("matplotlib"):
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_model_argument(tmp_path, capsys):
    """fastmlp bench MODEL: a saved network at batch 1 and a larger batch."""
    import fastmlp
    rng = np.random.default_rng(0)
    net = fastmlp.Network([rng.standard_normal((5, 7)), rng.standard_normal((7, 3))],
                          None, ["tanh", "softmax"], dtype=np.float32)
    path = tmp_path / "m.npz"
    net.save(str(path))
    rc = bench.main([str(path), "--quick", "--batches", "1,64", "--threads", "1",
                     "--time-per-cell", "0.002", "--no-gemm", "--no-overhead",
                     "--import-runs", "0", "--precisions", "none", *FAST_PEERS,
                     "--json", str(tmp_path / "r.json")])
    assert rc == 0
    data = json.loads((tmp_path / "r.json").read_text())
    assert [c["batch"] for c in data["cases"]] == [1, 64]
    assert "5-7-3" in capsys.readouterr().out


def test_every_activation_matches_reference():
    """Each installed peer implements every activation the core has (checked vs float64)."""
    rng = np.random.default_rng(1)
    acts = [("identity", {}), ("relu", {}), ("tanh", {}), ("sigmoid", {}), ("leaky_relu", {}),
            ("elu", {"alpha": 0.5}), ("gelu", {}), ("gelu_tanh", {}), ("silu", {}),
            ("softplus", {"beta": 2.0, "threshold": 3.0}), ("softplus", {}), ("softmax", {})]
    acts = [bench.norm_activation(a) for a in acts]
    ws = [(rng.standard_normal((4, 4)) * 0.8).astype(np.float32) for _ in acts]
    bs = [(rng.standard_normal(4) * 0.5).astype(np.float32) for _ in acts]
    wl = bench.Workload("t", "t", ws, bs, acts)
    x = bench.make_input(wl, 9, 0, np.float32)
    ref = bench.reference_forward(wl, x)
    for name in ["fastmlp", *installed_peers()]:
        fn = bench.COMPETITORS[name].build(ws, bs, acts, 1)
        for rows in (1, 9):
            ok, err = bench.check_output(fn(x[:rows]), ref[:rows], np.float32)
            assert ok, (name, rows, err)


def test_unknown_network_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--networks", "9-9-9", "--quick"])
    assert exit_info.value.code == 2
    assert "unknown networks ['9-9-9']" in capsys.readouterr().err


def test_activations_come_from_the_package():
    """The harness keeps no table of its own: names, defaults and codes are fastmlp's."""
    from fastmlp import ACTIVATION_DEFAULTS, _activations

    for name in ACTIVATION_DEFAULTS:
        assert bench.norm_activation(name) == (name, ACTIVATION_DEFAULTS[name])
    assert bench.norm_activation("swish") == ("silu", {})
    assert bench.norm_activation(("elu", {"alpha": 0.5})) == ("elu", {"alpha": 0.5})
    assert not hasattr(bench, "ACT_CODES") and not hasattr(bench, "ACT_DEFAULTS")
    assert bench.reference is sys.modules["reference"], "not tests/reference.py"
    assert _activations.resolve("relu")[0] == "relu"


PRECISION_ONLY = ["--quick", "--precision-only", "--precision-networks", "64-128-128-10",
                  "--batches", "1,33", "--threads", "1", "--time-per-cell", "0.002"]


def test_precision_section_cells(tmp_path, capsys):
    """The quick precision run: a cell per precision and batch, fastmlp quantized and float32
    timed with finite errors, every installed peer of the precision timed or reported."""
    import precision
    from fastmlp._cpuflags import CPU_FLAGS
    out = tmp_path / "p.json"
    assert bench.main([*PRECISION_ONLY, "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "fastmlp kernel: " in text and "amx_tile" in text
    data = json.loads(out.read_text())
    assert data["cases"] == [] and data["errors"] == []
    assert set(data["meta"]["machine"]["cpu_flags"]) == set(CPU_FLAGS)
    cells = data["precision_cases"]
    assert sorted((c["precision"], c["batch"]) for c in cells) == [
        ("bfloat16", 1), ("bfloat16", 33), ("int8", 1), ("int8", 33)]
    for c in cells:
        me = precision.subject(c["precision"])
        for name in (me, "fastmlp"):
            assert c["tools"][name]["median_us"] > 0
            assert math.isfinite(c["tools"][name]["max_rel_err"])
        assert c["tools"][me]["max_rel_err"] <= precision.SANITY_BOUND[c["precision"]]
        assert c["tools"]["fastmlp"]["max_rel_err"] < 1e-5
        for peer in precision.PEERS[c["precision"]]:
            if precision.TOOLS[peer].missing():
                assert peer in c["skipped"]
            elif peer not in c["peer_errors"]:
                assert math.isfinite(c["tools"][peer]["max_rel_err"]), peer
                assert c["ratios"][peer] > 0
        assert f"{c['precision']}, threads=1 | 64-128-128-10" in text
    # by path: tests/fuzz has a module named targets too
    spec = importlib.util.spec_from_file_location("bench_targets",
                                                  os.path.join(BENCHMARKS, "targets.py"))
    targets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(targets)
    targets.main(str(out))  # a precision-only JSON: only issue 8's targets
    lines = capsys.readouterr().out.splitlines()
    assert any("64-128-128-10" in line and "batch     1 vs float32" in line
               and "x vs fastmlp float32" in line for line in lines), lines
    assert sum("not measured" in line for line in lines) == 7  # 784-512-256-10 ones


def test_precision_sanity_bound_fails_the_run(monkeypatch, capsys):
    """fastmlp's own error above the sanity bound is an error (exit 1), a peer's is not."""
    import precision
    monkeypatch.setattr(precision, "SANITY_BOUND", {"bfloat16": 0.0, "int8": 0.0})
    monkeypatch.setattr(precision, "PEERS", {"bfloat16": (), "int8": ()})
    assert bench.main([*PRECISION_ONLY, "--batches", "1"]) == 1
    assert "above the sanity bound" in capsys.readouterr().out


def test_unknown_precision_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--precisions", "fp8", "--quick"])
    assert exit_info.value.code == 2
    assert "unknown precision 'fp8'" in capsys.readouterr().err


def test_layers_benchmark_prints_a_line_per_layer_and_height(capsys):
    """benchmarks/layers.py: one line per dtype, layer and height, with both rates and their
    ratio; the default layers are the standard networks' (each once)."""
    spec = importlib.util.spec_from_file_location("layers", os.path.join(BENCHMARKS, "layers.py"))
    layers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layers)
    assert (1024, 4096) in layers.standard_layers() and (3, 4) in layers.standard_layers()
    assert len(set(layers.standard_layers())) == len(layers.standard_layers())
    assert layers.main(["--layers", "8x5,33x17", "--rows", "1,7", "--dtypes", "float64",
                        "--rounds", "1", "--seconds", "0.001"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "GFLOP/s" in line]
    assert len(lines) == 4 and all(line.lstrip().startswith("float64") for line in lines)
    assert all("ratio" in line and line.rstrip().endswith("x") for line in lines)
