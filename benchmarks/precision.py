"""The precision section of the benchmark: fastmlp's bfloat16 and int8 networks against
fastmlp float32 and the reduced-precision paths of PyTorch and ONNX Runtime (issue 8).

Every tool gets the same float32 weights and float32 inputs and returns float32 outputs (the
conversions a numpy user needs are inside the timed call). Each result is compared with the
float64 reference: the error printed is max|y - ref| / max|ref| (relative to the output
scale). A peer's error is reported, never fatal; fastmlp's own must stay within
SANITY_BOUND, or the run fails. Timing is harness.time_interleaved, in one process.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import tempfile
import time
import warnings

import numpy as np

import harness
from fastmlp._cpuflags import cpu_flags, kernel_header
from harness import Competitor

PRECISIONS = ("bfloat16", "int8")
ALIASES = {"bf16": "bfloat16"}
SHORT = {"bfloat16": "bf16", "int8": "int8"}
# fastmlp's own error above this (relative to the output scale) fails the run: generous
# sanity bounds, far above what the arithmetic gives (tests/test_precision.py holds the tight
# ones), that catch a broken kernel, not a rounding.
SANITY_BOUND = {"bfloat16": 0.02, "int8": 0.05}
DEFAULT_NETWORKS = ("64-128-128-10", "784-512-256-10")
QUICK_NETWORKS = ("64-128-128-10",)


def parse_precisions(text: str) -> list:
    """'bf16,int8' -> ['bfloat16', 'int8']; 'none' or '' -> []."""
    names = [v.strip().lower() for v in text.split(",") if v.strip()]
    if names in ([], ["none"]):
        return []
    out = []
    for name in names:
        name = ALIASES.get(name, name)
        if name not in PRECISIONS:
            raise ValueError(f"unknown precision {name!r}; valid: bf16 (bfloat16), int8, none")
        if name not in out:
            out.append(name)
    return out


# ----------------------------------------------------------------------------------------
# Tools: build(weights, biases, activations, threads) -> callable(x float32) -> float32


def _build_fastmlp(precision):
    def build(weights, biases, activations, threads):
        import fastmlp
        net = fastmlp.Network(weights, biases, activations, dtype=np.float32, threads=threads)
        if precision != "float32":
            net = net.quantize(precision)  # keeps the thread count
        return net.forward
    return build


def build_torch_autocast_bf16(weights, biases, activations, threads):
    """The float32 model under torch.autocast("cpu", dtype=torch.bfloat16)."""
    import torch
    harness._torch_threads(threads)
    model = harness.torch_model(weights, biases, activations)
    from_numpy, inference_mode, autocast = torch.from_numpy, torch.inference_mode, torch.autocast

    def run(x):
        with inference_mode(), autocast("cpu", dtype=torch.bfloat16):
            return model(from_numpy(x)).float().numpy()
    return run


def build_torch_bf16(weights, biases, activations, threads):
    """The model cast with .to(torch.bfloat16), fed the input cast to bfloat16."""
    import torch
    harness._torch_threads(threads)
    model = harness.torch_model(weights, biases, activations).to(torch.bfloat16)
    from_numpy, inference_mode, bf16 = torch.from_numpy, torch.inference_mode, torch.bfloat16

    def run(x):
        with inference_mode():
            return model(from_numpy(x).to(bf16)).float().numpy()
    return run


def build_torch_int8(weights, biases, activations, threads):
    """torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)."""
    import torch
    from torch import nn
    harness._torch_threads(threads)
    model = harness.torch_model(weights, biases, activations)
    with warnings.catch_warnings():  # torch.ao.quantization says it is deprecated
        warnings.simplefilter("ignore")
        model = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    from_numpy, inference_mode = torch.from_numpy, torch.inference_mode

    def run(x):
        with inference_mode():
            return model(from_numpy(x)).numpy()
    return run


def ort_weight_type(flags=None) -> str:
    """QInt8 where the CPU has VNNI (ORT's fast u8s8 path); QUInt8 elsewhere, because ORT's
    AVX2 u8s8 kernel (vpmaddubsw) saturates: measured here, QInt8 weights gave 10-33% error
    on the standard networks, QUInt8 about 2%."""
    flags = cpu_flags() if flags is None else flags
    vnni = flags["avx512_vnni"] or flags["avx_vnni"] or flags["amx_int8"]
    return "QInt8" if vnni else "QUInt8"


def ort_quantized_bytes(weights, biases, activations) -> bytes:
    """onnxruntime.quantization.quantize_dynamic (ort_weight_type() weights) of the harness's
    float32 ONNX model; raises if no layer became an integer matmul (it would time float32)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "f32.onnx"), os.path.join(tmp, "int8.onnx")
        with open(src, "wb") as f:
            f.write(harness.onnx_model_bytes(weights, biases, activations))
        logger = logging.getLogger()  # it logs a "consider pre-processing" warning on root
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                quantize_dynamic(src, dst, weight_type=getattr(QuantType, ort_weight_type()))
        finally:
            logger.setLevel(level)
        model = onnx.load(dst)
    ops = {n.op_type for n in model.graph.node}
    if not ops & {"MatMulInteger", "DynamicQuantizeMatMul", "QGemm"}:
        raise RuntimeError(f"quantize_dynamic left no integer matmul (ops: {sorted(ops)})")
    return model.SerializeToString()


def build_ort_int8(weights, biases, activations, threads):
    """InferenceSession.run of the dynamically quantized model (one scale per batch)."""
    sess = harness.ort_session(ort_quantized_bytes(weights, biases, activations), threads)
    run_, out_names, feed = sess.run, [sess.get_outputs()[0].name], {}

    def run(x):
        feed["x"] = x
        return run_(out_names, feed)[0]
    return run


TOOLS = {c.name: c for c in (
    Competitor("fastmlp", _build_fastmlp("float32"), peer=False, note="fastmlp float32"),
    Competitor("fastmlp-bf16", _build_fastmlp("bfloat16"), peer=False),
    Competitor("fastmlp-int8", _build_fastmlp("int8"), peer=False),
    Competitor("torch-autocast-bf16", build_torch_autocast_bf16, ("torch",),
               set_threads=harness._torch_threads),
    Competitor("torch-bf16", build_torch_bf16, ("torch",), set_threads=harness._torch_threads),
    Competitor("torch-int8", build_torch_int8, ("torch",), set_threads=harness._torch_threads),
    Competitor("ort-int8", build_ort_int8, ("onnx", "onnxruntime")),
)}
PEERS = {"bfloat16": ("torch-autocast-bf16", "torch-bf16"), "int8": ("torch-int8", "ort-int8")}


def subject(precision: str) -> str:
    return f"fastmlp-{SHORT[precision]}"


# ----------------------------------------------------------------------------------------
# Cells


def relative_error(y, ref) -> float:
    """max|y - ref| / max|ref| (inf for a wrong shape or a non-finite output)."""
    y = np.asarray(y, dtype=np.float64)
    if y.shape != ref.shape:
        return math.inf
    if not y.size:
        return 0.0
    scale = float(np.max(np.abs(ref))) or 1.0
    err = float(np.max(np.abs(y - ref))) / scale
    return err if math.isfinite(err) else math.inf


def run_cell(workload, precision, batch, threads, x, ref, settings) -> dict:
    """Build, check and time fastmlp in `precision`, fastmlp float32 and the installed peers
    of that precision on one (network, batch, threads)."""
    ws, bs = workload.as_dtype(np.float32)
    me = subject(precision)
    cell = {"network": workload.label, "widths": workload.widths, "precision": precision,
            "dtype": "float32", "batch": batch, "threads": threads, "tools": {}, "errors": {},
            "peer_errors": {}, "skipped": {}}
    fns, est = {}, {}
    with harness.blas_limits(threads):
        for name in (me, "fastmlp", *PEERS[precision]):
            tool = TOOLS[name]
            if tool.missing():
                cell["skipped"][name] = f"not installed: {', '.join(tool.missing())}"
                continue
            failures = cell["errors"] if not tool.peer else cell["peer_errors"]
            try:
                fn = tool.build(ws, bs, workload.activations, threads)
                t0 = time.perf_counter()
                y = fn(x)
                first = time.perf_counter() - t0
            except Exception as e:  # a build or call that fails: fatal for fastmlp only
                failures[name] = f"{type(e).__name__}: {e}"
                continue
            err = relative_error(y, ref)
            cell["tools"][name] = {"max_rel_err": err}
            if name == "ort-int8":
                cell["tools"][name]["weight_type"] = ort_weight_type()
            if name == me and not err <= SANITY_BOUND[precision]:
                failures[name] = (f"max relative error {err:.3g} above the sanity bound "
                                  f"{SANITY_BOUND[precision]:g}")
            elif name == "fastmlp" and not harness.check_output(y, ref, np.float32)[0]:
                failures[name] = f"WRONG output: max relative error {err:.3g}"
            fns[name] = fn
            est[name] = first if first > 0.2 else harness._estimate(fn, x, settings.quick)
        if fns:
            samples = harness.time_interleaved(fns, x, est, settings, threads, TOOLS)
    for name, s in (samples.items() if fns else ()):
        cell["tools"][name].update(harness.timing_stats(s, workload.flops_per_row() * batch, batch))
    add_ratios(cell)
    return cell


def add_ratios(cell):
    """ratios: tool time / fastmlp-<precision> time (> 1: the quantized fastmlp is faster),
    for fastmlp float32 and each peer; best_peer among the peers of the precision."""
    tools = cell["tools"]
    base = tools.get(subject(cell["precision"]), {}).get("median_us")
    timed = {n: t["median_us"] for n, t in tools.items()
             if "median_us" in t and n != subject(cell["precision"])}
    cell["ratios"] = {n: t / base for n, t in timed.items()} if base else {}
    peers = {n: t for n, t in timed.items() if TOOLS[n].peer}
    if peers:
        best = min(peers, key=peers.get)
        cell["best_peer"] = best
        cell["ratio_vs_best_peer"] = peers[best] / base if base else None


# ----------------------------------------------------------------------------------------
# Section and table


def run_section(workloads, precisions, batches, threads, settings, seed, out) -> list:
    cells = []
    for wl in workloads:
        inputs = {b: harness.make_input(wl, b, seed, np.float32) for b in batches}
        refs = {b: harness.reference_forward(wl, inputs[b]) for b in batches}
        for precision in precisions:
            for n in threads:
                row = []
                for b in batches:
                    harness._log(f"  {precision}: {wl.label} threads={n} batch={b}")
                    row.append(run_cell(wl, precision, b, n, inputs[b], refs[b], settings))
                print(f"\n{precision}, threads={n} | {wl.label}   (µs per call; (ratio) = "
                      f"tool/{subject(precision)}, >1 means {subject(precision)} faster; "
                      "e= max relative error vs float64)", file=out)
                print(format_table(row), file=out, flush=True)
                cells += row
    return cells


def _entry(cell, name) -> str:
    t = cell["tools"].get(name, {})
    if name in cell["errors"] and "median_us" not in t:
        return "ERROR"
    if name in cell["peer_errors"] and "median_us" not in t:
        return "ERROR"
    if name in cell["skipped"] or "median_us" not in t:
        return "-"
    s = harness.fmt_us(t["median_us"]) + ("~" if t["spread"] > harness.NOISY else "")
    ratio = cell["ratios"].get(name)
    if ratio:
        s += f" ({ratio:5.2f}x)"
    return s + f" e={t['max_rel_err']:.1e}"


def format_table(cells) -> str:
    """Rows = batch; fastmlp-<precision>, fastmlp float32 and each peer: µs (ratio) e=error."""
    precision = cells[0]["precision"]
    names = [subject(precision), "fastmlp", *PEERS[precision]]
    width = {n: max(len(n), 30 if n != subject(precision) else 18) for n in names}
    head = f"{'batch':>6} | " + " | ".join(
        f"{(n + ' f32' if n == 'fastmlp' else n):>{width[n]}}" for n in names) + " | best peer"
    lines = [head, "-" * len(head)]
    for c in cells:
        best, rb = c.get("best_peer"), c.get("ratio_vs_best_peer")
        tail = f"{best} {rb:.2f}x" if best and rb else (best or "-")
        lines.append(f"{c['batch']:>6} | " + " | ".join(
            f"{_entry(c, n):>{width[n]}}" for n in names) + f" | {tail}")
    for c in cells:
        for n, e in c["errors"].items():
            lines.append(f"  ! batch {c['batch']} {n}: {e}")
        for n, e in c["peer_errors"].items():
            lines.append(f"  - batch {c['batch']} {n} (peer, not fatal): {e}")
    for n, why in cells[0]["skipped"].items():
        lines.append(f"  skipped {n}: {why}")
    if precision == "int8" and "ort-int8" in cells[0]["tools"]:
        lines.append(f"  ort-int8: quantize_dynamic with {ort_weight_type()} weights, uint8 "
                     "activations with one scale per batch")
    if any(r.get("spread", 0) > harness.NOISY for c in cells for r in c["tools"].values()):
        lines.append(f"  ~ rounds spread > {harness.NOISY:.0%} of the median (noisy machine)")
    return "\n".join(lines)


def format_header(build_info, flags) -> str:
    kernel = build_info.get("kernel", "?") if isinstance(build_info, dict) else "?"
    return kernel_header(kernel, flags)
