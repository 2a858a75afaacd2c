"""Benchmark of fastmlp's forward pass against its peers (a measuring tool, not a test).

Entry point
  python benchmarks/run.py [options]       full settings (``--quick`` for a fast run), re-exec'd
                                           without OPENBLAS_CORETYPE/L2_SIZE

This is a script of the source repository, not part of the installed package (``fastmlp bench``
is a small built-in race against numpy). It needs fastmlp installed, and takes activation names
and parameters from ``fastmlp._activations``, the plain-numpy peer from
``fastmlp._numpy_forward`` and the float64 reference from ``tests/reference.py``.

Every competitor gets the same weights and inputs, is checked against a float64 numpy
reference before it is timed, and is timed in the same process, interleaved round by round
with the others. Times are per call (median over rounds); ratio = peer time / fastmlp time,
so a ratio > 1 means fastmlp is faster.

Importing this module is light (stdlib + numpy); every peer is imported when first used.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from fastmlp import _activations
from fastmlp._numpy_forward import activation as np_activation

_TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
if _TESTS not in sys.path:
    sys.path.append(_TESTS)
import reference  # noqa: E402  tests/reference.py: the float64 truth

# ----------------------------------------------------------------------------------------
# Networks and activations


def norm_activation(spec) -> tuple[str, dict]:
    """A name or (name, params) -> (canonical name, every parameter filled in)."""
    name, params, _ = _activations.resolve(spec)
    return name, params


@dataclass(frozen=True)
class NetSpec:
    widths: tuple
    hidden: str
    output: str

    @property
    def name(self) -> str:
        return "-".join(map(str, self.widths))

    @property
    def label(self) -> str:
        return f"{self.name} {self.hidden}/{self.output}"

    def activations(self):
        return [self.hidden] * (len(self.widths) - 2) + [self.output]


STANDARD_NETWORKS = (
    NetSpec((3, 4, 2), "sigmoid", "identity"),
    NetSpec((64, 128, 128, 10), "relu", "identity"),
    NetSpec((784, 512, 256, 10), "relu", "identity"),
    NetSpec((256, 256, 256, 256, 1), "tanh", "sigmoid"),
    NetSpec((1024, 4096, 1024), "relu", "identity"),
)
QUICK_FLOAT64_NETWORKS = ("64-128-128-10", "784-512-256-10")


@dataclass
class Workload:
    """One network's parameters, in its own dtype (float32 for the standard networks)."""
    name: str
    label: str
    weights: list
    biases: list
    activations: list  # [(name, params)]

    @property
    def widths(self):
        return [self.weights[0].shape[0]] + [w.shape[1] for w in self.weights]

    def flops_per_row(self) -> int:
        return 2 * sum(w.shape[0] * w.shape[1] for w in self.weights)

    def as_dtype(self, dtype):
        return ([np.ascontiguousarray(w, dtype) for w in self.weights],
                [np.ascontiguousarray(b, dtype) for b in self.biases])


def make_workload(spec: NetSpec, seed: int) -> Workload:
    """Glorot-uniform float32 weights and small biases, so activations stay O(1)."""
    rng = np.random.default_rng([seed, *spec.widths])
    ws, bs = [], []
    for n, m in zip(spec.widths[:-1], spec.widths[1:]):
        lim = math.sqrt(6.0 / (n + m))
        ws.append(rng.uniform(-lim, lim, (n, m)).astype(np.float32))
        bs.append(rng.uniform(-0.1, 0.1, m).astype(np.float32))
    return Workload(spec.name, spec.label, ws, bs, [norm_activation(a) for a in spec.activations()])


def workload_from_model(path: str) -> Workload:
    import fastmlp
    net = fastmlp.load(path)
    acts = [norm_activation(a) for a in zip(net.activations, net.activation_params)]
    widths = [net.n_inputs] + [m for _, m in net.shapes]
    name = "-".join(map(str, widths))
    label = f"{os.path.basename(path)} {name} {'/'.join(sorted(set(a for a, _ in acts)))}"
    return Workload(name, label, [np.array(w) for w in net.weights],
                    [np.array(b) for b in net.biases], acts)


def make_input(workload: Workload, batch: int, seed: int, dtype) -> np.ndarray:
    rng = np.random.default_rng([seed, batch, workload.widths[0]])
    return rng.standard_normal((batch, workload.widths[0]), dtype=np.float32).astype(dtype)


# numpy activations in place (careful numpy); the functional ones are the numpy peer's


def np_activation_inplace(name: str, p: dict, z: np.ndarray) -> None:
    with np.errstate(over="ignore"):
        if name == "identity":
            pass
        elif name == "relu":
            np.maximum(z, 0, out=z)
        elif name == "tanh":
            np.tanh(z, out=z)
        elif name == "sigmoid":
            np.negative(z, out=z)
            np.exp(z, out=z)
            z += 1
            np.reciprocal(z, out=z)
        elif name == "softmax":
            z -= z.max(axis=-1, keepdims=True)
            np.exp(z, out=z)
            z /= z.sum(axis=-1, keepdims=True)
        else:
            z[...] = np_activation(name, p, z)


def reference_forward(workload: Workload, x: np.ndarray) -> np.ndarray:
    """float64 numpy forward: the truth every competitor is checked against."""
    names, params = zip(*workload.activations)
    return reference.forward(workload.weights, workload.biases, names, x, list(params))


# ----------------------------------------------------------------------------------------
# Competitors: build(weights, biases, activations, threads) -> callable(x) -> y


@dataclass
class Competitor:
    name: str
    build: Callable
    requires: tuple = ()            # modules that must be importable
    set_threads: Callable = None    # applied before each timed block (process-wide settings)
    peer: bool = True               # False: a fastmlp variant, not counted as a peer
    note: str = ""

    def missing(self) -> list:
        return [m for m in self.requires if importlib.util.find_spec(m) is None]


def build_fastmlp(weights, biases, activations, threads):
    # The thread count is set when the network is built, as ONNX Runtime's is when its
    # session is (a per-call threads= costs a keyword argument's parsing, about 20 ns).
    import fastmlp
    net = fastmlp.Network(weights, biases, activations, dtype=weights[0].dtype, threads=threads)
    return net.forward


def build_fastmlp_out(weights, biases, activations, threads):
    """fastmlp writing into a preallocated output (one buffer per batch size)."""
    import fastmlp
    net = fastmlp.Network(weights, biases, activations, dtype=weights[0].dtype, threads=threads)
    forward, bufs = net.forward, {}

    def run(x):
        out = bufs.get(x.shape[0])
        if out is None:
            bufs.clear()
            out = bufs[x.shape[0]] = np.empty((x.shape[0], weights[-1].shape[1]), weights[0].dtype)
        return forward(x, out)
    return run


def build_numpy(weights, biases, activations, threads):
    """The obvious forward: x @ W + b, activation, per layer."""
    layers = list(zip(weights, biases, activations))

    def run(x):
        for w, b, (name, p) in layers:
            x = np_activation(name, p, x @ w + b)
        return x
    return run


def build_numpy_careful(weights, biases, activations, threads):
    """Preallocated buffers (kept for the last batch size), matmul(out=), in-place ops."""
    layers = list(zip(weights, biases, activations))
    bufs = {}

    def run(x):
        outs = bufs.get(x.shape[0])
        if outs is None:
            bufs.clear()
            outs = bufs[x.shape[0]] = [np.empty((x.shape[0], w.shape[1]), w.dtype) for w in weights]
        h = x
        for (w, b, (name, p)), out in zip(layers, outs):
            np.matmul(h, w, out=out)
            out += b
            np_activation_inplace(name, p, out)
            h = out
        return h
    return run


_TORCH_ACTS = {
    "identity": lambda nn, p: None, "relu": lambda nn, p: nn.ReLU(),
    "tanh": lambda nn, p: nn.Tanh(),
    "sigmoid": lambda nn, p: nn.Sigmoid(), "softmax": lambda nn, p: nn.Softmax(dim=-1),
    "leaky_relu": lambda nn, p: nn.LeakyReLU(p["negative_slope"]),
    "elu": lambda nn, p: nn.ELU(p["alpha"]), "gelu": lambda nn, p: nn.GELU(),
    "gelu_tanh": lambda nn, p: nn.GELU(approximate="tanh"), "silu": lambda nn, p: nn.SiLU(),
    "softplus": lambda nn, p: nn.Softplus(p["beta"], p["threshold"]),
}


def _torch_threads(n):
    import torch
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def torch_model(weights, biases, activations):
    """torch.nn.Sequential of Linear + activation modules, in the weights' dtype, eval mode."""
    import torch
    from torch import nn
    dt = torch.float64 if weights[0].dtype == np.float64 else torch.float32
    mods = []
    for w, b, (name, p) in zip(weights, biases, activations):
        lin = nn.Linear(w.shape[0], w.shape[1], dtype=dt)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
            lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        act = _TORCH_ACTS[name](nn, p)
        if act is not None:
            mods.append(act)
    return nn.Sequential(*mods).eval()


def build_torch(weights, biases, activations, threads):
    """torch_model under inference_mode."""
    import torch
    _torch_threads(threads)
    model = torch_model(weights, biases, activations)
    from_numpy, inference_mode = torch.from_numpy, torch.inference_mode

    def run(x):
        with inference_mode():
            return model(from_numpy(x)).numpy()
    return run


def _onnx_activation(nodes, inits, name, p, z, i, np_dtype):
    """Append the nodes of one activation; returns the output name."""
    from onnx import helper, numpy_helper
    out = f"a{i}"

    def const(cname, value):
        inits.append(numpy_helper.from_array(np.array(value, np_dtype), cname))
        return cname
    if name == "identity":
        return z
    simple = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}
    if name in simple:
        nodes.append(helper.make_node(simple[name], [z], [out]))
    elif name == "softmax":
        nodes.append(helper.make_node("Softmax", [z], [out], axis=-1))
    elif name == "leaky_relu":
        nodes.append(helper.make_node("LeakyRelu", [z], [out], alpha=float(p["negative_slope"])))
    elif name == "elu":
        nodes.append(helper.make_node("Elu", [z], [out], alpha=float(p["alpha"])))
    elif name in ("gelu", "gelu_tanh"):
        nodes.append(helper.make_node("Gelu", [z], [out],
                                      approximate="tanh" if name == "gelu_tanh" else "none"))
    elif name == "silu":
        nodes += [helper.make_node("Sigmoid", [z], [f"s{i}"]),
                  helper.make_node("Mul", [z, f"s{i}"], [out])]
    elif name == "softplus":
        beta, thr = float(p["beta"]), float(p["threshold"])
        if beta == 1.0 and math.isinf(thr):
            nodes.append(helper.make_node("Softplus", [z], [out]))
        else:
            nodes += [helper.make_node("Mul", [z, const(f"beta{i}", beta)], [f"bz{i}"]),
                      helper.make_node("Softplus", [f"bz{i}"], [f"sp{i}"]),
                      helper.make_node("Div", [f"sp{i}", f"beta{i}"], [f"spb{i}"]),
                      helper.make_node("Greater", [f"bz{i}", const(f"thr{i}", thr)], [f"gt{i}"]),
                      helper.make_node("Where", [f"gt{i}", z, f"spb{i}"], [out])]
    else:
        raise ValueError(name)
    return out


def onnx_model_bytes(weights, biases, activations) -> bytes:
    """Gemm (+ activation) per layer, dynamic batch, opset 20."""
    from onnx import TensorProto, helper, numpy_helper
    np_dtype = weights[0].dtype
    elem = TensorProto.DOUBLE if np_dtype == np.float64 else TensorProto.FLOAT
    nodes, inits, cur = [], [], "x"
    for i, (w, b, (name, p)) in enumerate(zip(weights, biases, activations)):
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(helper.make_node("Gemm", [cur, f"W{i}", f"b{i}"], [f"z{i}"]))
        cur = _onnx_activation(nodes, inits, name, p, f"z{i}", i, np_dtype)
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", elem, ["batch", weights[0].shape[0]])],
        [helper.make_tensor_value_info(cur, elem, ["batch", weights[-1].shape[1]])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 9
    return model.SerializeToString()


def _ort_session(weights, biases, activations, threads):
    return ort_session(onnx_model_bytes(weights, biases, activations), threads)


def ort_session(model_bytes: bytes, threads):
    """A CPU InferenceSession of a serialized model: `threads` intra-op, sequential, all
    graph optimizations."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def build_onnxruntime(weights, biases, activations, threads):
    """InferenceSession.run with a pre-made input dict; ORT allocates the output."""
    sess = _ort_session(weights, biases, activations, threads)
    run_, out_names, feed = sess.run, [sess.get_outputs()[0].name], {"x": None}

    def run(x):
        if feed["x"] is not x:
            feed["x"] = x
        return run_(out_names, feed)[0]
    return run


def build_onnxruntime_iobind(weights, biases, activations, threads):
    """run_with_iobinding: input and a preallocated output bound once per input array."""
    sess = _ort_session(weights, biases, activations, threads)
    binding, out_name, state = sess.io_binding(), sess.get_outputs()[0].name, {}
    dtype, m = weights[0].dtype, weights[-1].shape[1]

    def run(x):
        key = (x.__array_interface__["data"][0], x.shape)
        if state.get("key") != key:
            out = np.empty((x.shape[0], m), dtype)
            binding.bind_cpu_input("x", x)
            binding.bind_output(out_name, "cpu", 0, dtype, out.shape, out.ctypes.data)
            state.update(key=key, out=out)
        sess.run_with_iobinding(binding)
        return state["out"]
    return run


_NUMBA = {}
NUMBA_TUNE_MAX_ROWS = 64  # up to this many rows the numba peer picks loops or np.dot


def _numba_kernels():
    """Compile (once) the numba kernels: a loop kernel for small batches, a BLAS one."""
    if _NUMBA:
        return _NUMBA
    import numba
    njit = numba.njit(fastmath=False, nogil=True, error_model="numpy")

    @njit
    def act_row(z, m, code, p0, p1):
        if code == 1:
            for j in range(m):
                if z[j] < 0:
                    z[j] = 0
        elif code == 2:
            for j in range(m):
                z[j] = math.tanh(z[j])
        elif code == 3:
            for j in range(m):
                z[j] = 1.0 / (1.0 + math.exp(-z[j]))
        elif code == 4:
            mx = z[0]
            for j in range(m):
                mx = max(mx, z[j])
            s = 0.0
            for j in range(m):
                z[j] = math.exp(z[j] - mx)
                s += z[j]
            for j in range(m):
                z[j] = z[j] / s
        elif code == 5:
            for j in range(m):
                if z[j] < 0:
                    z[j] = z[j] * p0
        elif code == 6:
            for j in range(m):
                if z[j] < 0:
                    z[j] = p0 * math.expm1(z[j])
        elif code == 7:
            for j in range(m):
                z[j] = 0.5 * z[j] * (1.0 + math.erf(z[j] / math.sqrt(2.0)))
        elif code == 8:
            c = math.sqrt(2.0 / math.pi)
            for j in range(m):
                v = z[j]
                z[j] = 0.5 * v * (1.0 + math.tanh(c * (v + 0.044715 * v * v * v)))
        elif code == 9:
            for j in range(m):
                z[j] = z[j] / (1.0 + math.exp(-z[j]))
        elif code == 10:
            for j in range(m):
                bz = p0 * z[j]
                if not bz > p1:
                    z[j] = (max(bz, 0.0) + math.log1p(math.exp(-abs(bz)))) / p0

    @njit
    def forward_loops(x, ws, bs, codes, params):
        """Row by row; W streamed 4 input rows at a time (vectorises over outputs)."""
        width = x.shape[1]
        for w in ws:
            width = max(width, w.shape[1])
        cur = np.empty(width, x.dtype)
        nxt = np.empty(width, x.dtype)
        out = np.empty((x.shape[0], ws[len(ws) - 1].shape[1]), x.dtype)
        for r in range(x.shape[0]):
            for k in range(x.shape[1]):
                cur[k] = x[r, k]
            for layer in range(len(ws)):
                w, b = ws[layer], bs[layer]
                n, m = w.shape
                for j in range(m):
                    nxt[j] = b[j]
                k = 0
                while k + 4 <= n:
                    x0, x1, x2, x3 = cur[k], cur[k + 1], cur[k + 2], cur[k + 3]
                    w0, w1, w2, w3 = w[k], w[k + 1], w[k + 2], w[k + 3]
                    for j in range(m):
                        nxt[j] += x0 * w0[j] + x1 * w1[j] + x2 * w2[j] + x3 * w3[j]
                    k += 4
                while k < n:
                    x0, w0 = cur[k], w[k]
                    for j in range(m):
                        nxt[j] += x0 * w0[j]
                    k += 1
                act_row(nxt, m, codes[layer], params[layer, 0], params[layer, 1])
                cur, nxt = nxt, cur
            for j in range(out.shape[1]):
                out[r, j] = cur[j]
        return out

    @njit
    def forward_blas(x, ws, bs, codes, params):
        h = x
        for layer in range(len(ws)):
            z = np.dot(h, ws[layer])
            b = bs[layer]
            for r in range(z.shape[0]):
                row = z[r]
                for j in range(row.shape[0]):
                    row[j] += b[j]
                act_row(row, row.shape[0], codes[layer], params[layer, 0], params[layer, 1])
            h = z
        return h

    _NUMBA.update(loops=forward_loops, blas=forward_blas)
    return _NUMBA


def build_numba(weights, biases, activations, threads):
    """@njit forward. Up to NUMBA_TUNE_MAX_ROWS rows it uses whichever of its two kernels
    (explicit loops, np.dot) was faster on the first call with that many rows; np.dot beyond."""
    k = _numba_kernels()
    ws, bs = tuple(weights), tuple(biases)
    resolved = [_activations.resolve(a)[2] for a in activations]  # (code, p0, p1) per layer
    codes = np.array([code for code, _, _ in resolved], np.int64)
    params = np.array([[p0, p1] for _, p0, p1 in resolved], np.float64)
    choice = {}

    def pick(x):
        best = None
        for kern in (k["loops"], k["blas"]):
            kern(x, ws, bs, codes, params)  # compile / warm
            t = min(_time_block(lambda x, kern=kern: kern(x, ws, bs, codes, params), x, 1)
                    for _ in range(5))
            if best is None or t < best[0]:
                best = (t, kern)
        return best[1]

    def run(x):
        rows = x.shape[0]
        kern = choice.get(rows) if rows <= NUMBA_TUNE_MAX_ROWS else k["blas"]
        if kern is None:
            kern = choice[rows] = pick(x)
        return kern(x, ws, bs, codes, params)
    run(np.zeros((1, weights[0].shape[0]), weights[0].dtype))  # compile for these types
    return run


COMPETITORS = {c.name: c for c in (
    Competitor("fastmlp", build_fastmlp, peer=False),
    Competitor("fastmlp-out", build_fastmlp_out, peer=False, note="fastmlp with out= (not a peer)"),
    Competitor("numpy", build_numpy),
    Competitor("numpy-careful", build_numpy_careful),
    Competitor("torch", build_torch, ("torch",), set_threads=_torch_threads),
    Competitor("onnxruntime", build_onnxruntime, ("onnx", "onnxruntime")),
    Competitor("ort-iobind", build_onnxruntime_iobind, ("onnx", "onnxruntime")),
    Competitor("numba", build_numba, ("numba",)),
)}
DEFAULT_PEERS = ("numpy", "numpy-careful", "torch", "onnxruntime", "ort-iobind", "numba")
FLOAT64_PEERS = ("numpy", "numpy-careful")


# ----------------------------------------------------------------------------------------
# Timing


@dataclass
class Settings:
    quick: bool
    target_s: float      # time per competitor per cell (all rounds)
    rounds: int          # rounds per cell (fewer, but >= min_rounds, for slow calls)
    min_rounds: int
    # Pause before each block with several threads: longer than OpenBLAS keeps its idle
    # threads spinning after a call (~0.1 s measured here), so no library's idle threads
    # take the cores from the next competitor. One-thread blocks need no such pause.
    settle_s: float = 0.12


def preload(peers):
    """Import every peer's libraries up front: threadpool_limits only reaches the BLAS
    libraries loaded when it is entered (numba's np.dot uses scipy's)."""
    for p in peers:
        for mod in COMPETITORS[p].requires:
            importlib.import_module(mod)
    if "numba" in peers and importlib.util.find_spec("scipy"):
        importlib.import_module("scipy.linalg.cython_blas")


def blas_limits(threads):
    """Context limiting every loaded BLAS (numpy, scipy -> numba) to `threads`."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # reported in the header
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def _time_block(fn, x, n) -> float:
    """Seconds per call over n back-to-back calls."""
    t0 = time.perf_counter_ns()
    for _ in range(n):
        fn(x)
    return (time.perf_counter_ns() - t0) / n * 1e-9


def _estimate(fn, x, quick) -> float:
    """Per-call seconds, roughly, to plan the blocks (the first call, which may compile or
    start thread pools, has been made already)."""
    n, floor = 1, (0.001 if quick else 0.005)
    while True:
        t = _time_block(fn, x, n)
        if t * n >= floor or n >= 1 << 20:
            return t
        n *= 4


def time_interleaved(fns: dict, x, est: dict, settings: Settings, threads,
                     registry=None) -> dict:
    """Round-robin blocks of calls per competitor; returns name -> per-call samples (s).
    `registry` maps names to Competitors (default COMPETITORS), for their set_threads."""
    registry = COMPETITORS if registry is None else registry
    plans = {}
    block = settings.target_s / settings.rounds
    for name, t in est.items():
        if t >= block:
            rounds = max(settings.min_rounds,
                         min(settings.rounds, math.ceil(settings.target_s / t)))
            plans[name] = (1, rounds)
        else:
            plans[name] = (max(1, int(block / t)), settings.rounds)
    samples = {name: [] for name in fns}
    names = list(fns)
    for r in range(max(p[1] for p in plans.values())):
        order = names[r % len(names):] + names[:r % len(names)]  # rotate: no fixed position
        for name in order:
            calls, rounds = plans[name]
            if r >= rounds:
                continue
            comp = registry.get(name)
            if comp is not None and comp.set_threads is not None:
                comp.set_threads(threads)
            time.sleep(settings.settle_s if threads != 1 else 0.002)
            if est[name] < 0.02:
                fns[name](x)  # warm caches after the previous competitor
            samples[name].append(_time_block(fns[name], x, calls))
    return samples


def check_output(y, ref, dtype) -> tuple[bool, float]:
    """(ok, max abs error) against the float64 reference."""
    y = np.asarray(y)
    if y.shape != ref.shape:
        return False, math.inf
    err = float(np.max(np.abs(y.astype(np.float64) - ref))) if y.size else 0.0
    scale = max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
    tol = 2e-3 if dtype == np.float32 else 1e-9
    return bool(np.isfinite(err) and err <= tol * scale), err


def run_cell(workload, dtype, batch, threads, peers, x, ref, settings) -> dict:
    """Build, check and time fastmlp and every peer on one (network, dtype, batch, threads)."""
    ws, bs = workload.as_dtype(dtype)
    cell = {"network": workload.label, "widths": workload.widths, "dtype": np.dtype(dtype).name,
            "batch": batch, "threads": threads, "tools": {}, "errors": {}}
    fns, est = {}, {}
    with blas_limits(threads):
        for name in ("fastmlp", *peers):
            comp = COMPETITORS[name]
            try:
                fn = comp.build(ws, bs, workload.activations, threads)
                t0 = time.perf_counter()
                y = fn(x)
                first = time.perf_counter() - t0
                ok, err = check_output(y, ref, dtype)
            except Exception as e:  # an unsupported activation, a failing build...
                cell["errors"][name] = f"{type(e).__name__}: {e}"
                continue
            if not ok:
                cell["errors"][name] = f"WRONG output: max abs error {err:.3g}"
                continue
            fns[name] = fn
            # builds compile and warm up, so a slow first call means a slow call
            est[name] = first if first > 0.2 else _estimate(fn, x, settings.quick)
            cell["tools"][name] = {"max_abs_err": err}
        if fns:
            samples = time_interleaved(fns, x, est, settings, threads)
    for name, s in (samples.items() if fns else ()):
        cell["tools"][name].update(timing_stats(s, workload.flops_per_row() * batch, batch))
    add_ratios(cell)
    return cell


def timing_stats(samples, flops, batch) -> dict:
    """A tool's entry in a cell from its per-call samples (s): median, spread, GFLOP/s..."""
    med = statistics.median(samples)
    return dict(median_us=med * 1e6, min_us=min(samples) * 1e6, rounds=len(samples),
                samples_us=[v * 1e6 for v in samples],
                spread=(max(samples) - min(samples)) / med,
                gflops=flops / med * 1e-9, rows_per_s=batch / med)


def add_ratios(cell):
    tools = cell["tools"]
    base = tools.get("fastmlp", {}).get("median_us")
    peers = {n: t["median_us"] for n, t in tools.items()
             if COMPETITORS[n].peer and "median_us" in t}
    cell["ratios"] = {n: t / base for n, t in peers.items()} if base else {}
    if peers:
        best = min(peers, key=peers.get)
        cell["best_peer"] = best
        cell["ratio_vs_best_peer"] = peers[best] / base if base else None


# ----------------------------------------------------------------------------------------
# Machine: GEMM rate, call overhead, import cost, memory


def gemm_rate(n, threads, dtype, settings) -> float:
    """numpy matmul n x n (GFLOP/s, median of repeats)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n)).astype(dtype), rng.random((n, n)).astype(dtype)
    c = np.empty((n, n), dtype)
    with blas_limits(threads):
        t_end = time.perf_counter() + (0.1 if settings.quick else 0.5)
        while time.perf_counter() < t_end:  # wake the cores and BLAS threads up
            np.matmul(a, b, out=c)
        t1 = _time_block(lambda _: np.matmul(a, b, out=c), None, 1)
        reps = max(3, min(15, int(settings.target_s * 2 / t1)))
        ts = [_time_block(lambda _: np.matmul(a, b, out=c), None, 1) for _ in range(reps)]
    return 2 * n ** 3 / statistics.median(ts) * 1e-9


def measure_overhead(settings) -> dict:
    """ns per call: fastmlp on a 1-1 identity network vs a Python call doing nothing."""
    import fastmlp
    net = fastmlp.Network([np.ones((1, 1), np.float32)], [np.zeros(1, np.float32)], "identity")
    x2, x1, out = np.ones((1, 1), np.float32), np.ones(1, np.float32), np.empty((1, 1), np.float32)
    w = np.ones((1, 1), np.float32)

    def noop(x):
        pass
    cases = {
        "python noop(x)": (noop, x2),
        "numpy x @ W (1x1)": (w.__rmatmul__, x2),
        "fastmlp net(x) (1,1)": (net, x2),
        "fastmlp net.forward(x) (1,1)": (net.forward, x2),
        "fastmlp net.forward(x) (1,)": (net.forward, x1),
        "lambda x: net.forward(x, out) (1,1)": (lambda x: net.forward(x, out), x2),
        "python lambda x: noop(x)": (lambda x: noop(x), x2),
    }
    n = 20000 if settings.quick else 200000
    res = {k: [] for k in cases}
    for _ in range(settings.rounds):
        for k, (fn, x) in cases.items():
            res[k].append(_time_block(fn, x, n) * 1e9)
    return {k: statistics.median(v) for k, v in res.items()}


_IMPORT_CODE = r"""
import json, sys, time
t0 = time.perf_counter_ns(); import numpy; t1 = time.perf_counter_ns()
before = set(sys.modules)
import fastmlp
t2 = time.perf_counter_ns()
added = set(sys.modules) - before
new = sorted({m.split('.')[0] for m in added
              if not getattr(sys.modules[m], '__name__', m).startswith('fastmlp')}
             - set(sys.stdlib_module_names))
print(json.dumps({"numpy_ms": (t1 - t0) / 1e6, "fastmlp_ms": (t2 - t1) / 1e6,
                  "modules": len(added), "third_party": new}))
"""


def _child_env():
    """Environment for child processes: this process's env, with this harness on the path (the
    installed fastmlp is the one measured; the source tree's fastmlp/ has no compiled core)."""
    env = dict(os.environ)
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.pathsep.join([here] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def measure_import(runs) -> dict:
    """`import fastmlp` after `import numpy`, each run in a fresh interpreter, with the modules'
    bytecode cached as an installed wheel has it (pip compiles it): a first, untimed run
    writes it to a temporary PYTHONPYCACHEPREFIX, also where PYTHONDONTWRITEBYTECODE is set
    or the package is an editable source tree, where every import would compile it again."""
    outs = []
    with tempfile.TemporaryDirectory(prefix="fastmlp-pycache-") as cache:
        env = {k: v for k, v in _child_env().items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        for _ in range(runs + 1):
            p = subprocess.run([sys.executable, "-c", _IMPORT_CODE], capture_output=True,
                               text=True, env=env, timeout=120)
            if p.returncode != 0:
                return {"error": p.stderr.strip().splitlines()[-1] if p.stderr else "failed"}
            outs.append(json.loads(p.stdout))
    outs = outs[1:]  # the first run compiled the bytecode
    return {"runs": runs,
            "fastmlp_ms": statistics.median(o["fastmlp_ms"] for o in outs),
            "numpy_ms": statistics.median(o["numpy_ms"] for o in outs),
            "modules_added": outs[-1]["modules"], "third_party_imported": outs[-1]["third_party"]}


MEMORY_SPEC = NetSpec((784, 512, 256, 10), "relu", "identity")


def _rss_kib(name="VmRSS") -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(name + ":"))


def _reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux >= 4.0), so ru_maxrss after the call is
    the call's own peak even if the process peaked higher earlier."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _memory_child_main():
    """Child process: peak RSS of one call of one tool on `rows` rows (prints JSON)."""
    import resource
    tool, rows, threads, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    wl = make_workload(MEMORY_SPEC, seed)
    with blas_limits(threads):
        fn = COMPETITORS["fastmlp-out" if tool == "fastmlp" else tool].build(
            wl.weights, wl.biases, wl.activations, threads)
        fn(make_input(wl, 64, seed, np.float32))  # load libraries, start thread pools
        x = np.random.default_rng(seed).standard_normal((rows, 784), dtype=np.float32)
        out = np.zeros((rows, 10), np.float32)
        out.fill(1)  # touch every page
        if tool == "fastmlp":  # the preallocated output is passed as out=
            import fastmlp
            net = fastmlp.Network(wl.weights, wl.biases, wl.activations)
            fn = functools.partial(net.forward, out=out, threads=threads)
        reset = _reset_peak_rss()
        before = _rss_kib() if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        y = fn(x)
        dt = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"tool": tool, "rows": rows, "peak_beyond_mib": (after - before) / 1024,
                      "rss_before_mib": before / 1024, "peak_mib": after / 1024,
                      "input_mib": x.nbytes / 2**20, "seconds": dt, "peak_was_reset": reset,
                      "finite": bool(np.isfinite(np.asarray(y[:4])).all())}))


def measure_memory(tools, rows, threads, seed) -> dict:
    res = {}
    for tool in tools:
        p = subprocess.run(
            [sys.executable, "-c", "from harness import _memory_child_main as m; m()",
             tool, str(rows), str(threads), str(seed)],
            capture_output=True, text=True, env=_child_env(), timeout=900)
        if p.returncode != 0:
            res[tool] = {"error": (p.stderr.strip().splitlines() or ["failed"])[-1]}
        else:
            res[tool] = json.loads(p.stdout.strip().splitlines()[-1])
        print(f"  memory {tool}: {_fmt_mem(res[tool])}", file=sys.stderr, flush=True)
    return res


def machine_info() -> dict:
    info = {"python": sys.version.split()[0], "platform": platform.platform(),
            "cpus": _ncpu(), "numpy": np.__version__,
            "openblas_env": {k: os.environ.get(k) for k in OPENBLAS_VARS},
            "openblas_env_removed": os.environ.get("FASTMLP_BENCH_UNSET", ""),
            "loadavg_start": os.getloadavg()}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f
                               if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    try:
        from threadpoolctl import threadpool_info
        info["blas"] = [{k: d.get(k) for k in ("internal_api", "version", "architecture",
                                                "num_threads", "filepath")}
                        for d in threadpool_info() if d.get("user_api") == "blas"]
    except ImportError:
        info["blas"] = "threadpoolctl not installed: BLAS thread limits are NOT applied"
    import fastmlp
    import precision
    info["cpu_flags"] = precision.cpu_flags()
    try:
        info["fastmlp"] = fastmlp.build_info()
    except Exception as e:
        info["fastmlp"] = f"build_info() failed: {e}"
    for mod in ("torch", "onnxruntime", "numba", "onnx", "scipy"):
        if importlib.util.find_spec(mod) is not None:
            info[mod] = importlib.import_module(mod).__version__
    return info


# ----------------------------------------------------------------------------------------
# Output


def _ncpu() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def fmt_us(us) -> str:
    if us is None:
        return "-"
    if us < 10:
        return f"{us:.2f}"
    if us < 1000:
        return f"{us:.1f}"
    return f"{us:,.0f}"


def _fmt_mem(r) -> str:
    if "error" in r:
        return "ERROR " + r["error"]
    return f"{r['peak_beyond_mib']:8.1f} MiB beyond input+output  ({r['seconds']:.2f} s call)"


NOISY = 0.25  # a time is marked ~ when its rounds spread (max-min)/median beyond this


def format_table(cells, peers) -> str:
    """One table: rows = batch; fastmlp µs, each peer µs (ratio), best peer."""
    tools = [t for t in ("fastmlp", "fastmlp-out", *peers)
             if any(t in c["tools"] or t in c["errors"] for c in cells)]
    widths = {t: max(len(t), 17) for t in tools}
    head = f"{'batch':>6} | " + " | ".join(f"{t:>{widths[t]}}" for t in tools) + " | best peer"
    lines = [head, "-" * len(head)]
    for c in cells:
        parts = []
        for t in tools:
            r = c["tools"].get(t, {})
            if t in c["errors"]:
                s = "WRONG" if c["errors"][t].startswith("WRONG") else "ERROR"
            elif "median_us" not in r:
                s = "-"
            elif t == "fastmlp":
                s = fmt_us(r["median_us"]) + ("~" if r["spread"] > NOISY else "")
            else:
                ratio = r["median_us"] / c["tools"]["fastmlp"]["median_us"] \
                    if "median_us" in c["tools"].get("fastmlp", {}) else None
                s = (fmt_us(r["median_us"]) + ("~" if r["spread"] > NOISY else "")
                     + (f" ({ratio:5.2f}x)" if ratio else ""))
            parts.append(f"{s:>{widths[t]}}")
        best = c.get("best_peer")
        rb = c.get("ratio_vs_best_peer")
        tail = f"{best} {rb:.2f}x" if best and rb else (best or "-")
        lines.append(f"{c['batch']:>6} | " + " | ".join(parts) + f" | {tail}")
    for c in cells:
        for t, e in c["errors"].items():
            lines.append(f"  ! batch {c['batch']} {t}: {e}")
    if any(r.get("spread", 0) > NOISY for c in cells for r in c["tools"].values()):
        lines.append(f"  ~ rounds spread > {NOISY:.0%} of the median (noisy machine)")
    return "\n".join(lines)


def format_summary(cells) -> str:
    lines = []
    groups = {}
    for c in cells:
        groups.setdefault((c["dtype"], c["threads"]), []).append(c)
    for (dtype, threads), cs in groups.items():
        rs = [c["ratio_vs_best_peer"] for c in cs if c.get("ratio_vs_best_peer")]
        if not rs:
            continue
        worst = min(cs, key=lambda c: c.get("ratio_vs_best_peer") or math.inf)
        geo = math.exp(sum(math.log(r) for r in rs) / len(rs))
        lines.append(
            f"{dtype} threads={threads}: fastmlp vs best peer: geomean {geo:.2f}x over {len(rs)} "
            f"cases, faster in {sum(r > 1 for r in rs)}; worst {worst['ratio_vs_best_peer']:.2f}x "
            f"({worst['network']}, batch {worst['batch']}, vs {worst['best_peer']})")
    return "\n".join(lines)


def format_gflops(cells, gemm) -> str:
    """GFLOP/s at each network's largest batch, and % of numpy's n x n matmul rate."""
    lines = []
    largest = {}
    for c in cells:
        key = (c["dtype"], c["threads"], c["network"])
        if c["batch"] >= largest.get(key, {"batch": -1})["batch"]:
            largest[key] = c
    for (dtype, threads, net), c in largest.items():
        ref = gemm.get(f"{dtype}/threads={threads}")
        parts = []
        for t, r in c["tools"].items():
            if "gflops" in r:
                pct = f" ({100 * r['gflops'] / ref:.0f}%)" if ref else ""
                parts.append(f"{t} {r['gflops']:.1f}{pct}")
        lines.append(f"{dtype} thr={threads} {net} @ batch {c['batch']}: " + ", ".join(parts))
    return "\n".join(lines)


def _tick(v, _pos=None) -> str:
    """Log-axis tick label: 0.5, 2, 300, 1.5e+06."""
    return f"{v:g}"


def _log_axis(ax, ticker, include=None):
    """Log y axis (spanning `include` too) with enough labelled ticks whatever the span."""
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    if include:
        lo, hi = min(lo, include[0]), max(hi, include[1])
        ax.set_ylim(lo, hi)
    span = math.log10(hi / lo) if lo > 0 and hi > lo else 10
    subs = (1.0,) if span > 2.5 else (1.0, 2.0, 5.0) if span > 0.7 else tuple(range(1, 10))
    ax.yaxis.set_major_locator(ticker.LogLocator(subs=subs))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(_tick))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    ax.grid(axis="y", which="both", alpha=0.3)


def write_chart(cells, path):
    """Per (dtype, threads): throughput bars (fastmlp beside each peer), then ratio bars."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker
    groups = {}
    for c in cells:
        groups.setdefault((c["dtype"], c["threads"]), {}).setdefault(c["network"], []).append(c)
    nets = list(dict.fromkeys(c["network"] for c in cells))
    tools = list(dict.fromkeys(t for c in cells for t in c["tools"]
                               if "median_us" in c["tools"][t]))
    colors = {t: plt.cm.tab10(i) for i, t in enumerate(tools)}
    fig, axes = plt.subplots(2 * len(groups), len(nets), squeeze=False,
                             figsize=(4.2 * len(nets), 3.0 * 2 * len(groups)))
    for gi, ((dtype, threads), by_net) in enumerate(groups.items()):
        for ni, net in enumerate(nets):
            ax_t, ax_r = axes[2 * gi, ni], axes[2 * gi + 1, ni]
            cs = sorted(by_net.get(net, []), key=lambda c: c["batch"])
            if not cs:
                ax_t.axis("off")
                ax_r.axis("off")
                continue
            xs = np.arange(len(cs))
            here = [t for t in tools if any(t in c["tools"] and "median_us" in c["tools"][t]
                                            for c in cs)]
            peers = [t for t in here if t != "fastmlp"]
            width, rwidth = 0.8 / len(here), 0.8 / max(1, len(peers))
            for ti, t in enumerate(here):
                vals = [c["tools"].get(t, {}).get("rows_per_s", np.nan) for c in cs]
                ax_t.bar(xs + (ti - (len(here) - 1) / 2) * width, vals, width, color=colors[t],
                         label=t, edgecolor="black" if t == "fastmlp" else "none")
            for pi, t in enumerate(peers):
                vals = [c["ratios"].get(t, np.nan) for c in cs]
                ax_r.bar(xs + (pi - (len(peers) - 1) / 2) * rwidth, vals, rwidth, color=colors[t])
            ax_r.axhline(1.0, color="black", lw=1)
            _log_axis(ax_t, ticker)
            _log_axis(ax_r, ticker, include=(0.8, 1.25))
            for ax in (ax_t, ax_r):
                ax.set_xticks(xs, [str(c["batch"]) for c in cs])
            ax_t.set_title(f"{net}\n{dtype}, threads={threads}", fontsize=9)
            ax_r.set_xlabel("batch", fontsize=8)
            if ni == 0:
                ax_t.set_ylabel("rows / s")
                ax_r.set_ylabel("peer time / fastmlp time\n(>1: fastmlp faster)", fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[t]) for t in tools]
    ncol = max(1, min(len(tools), int(fig.get_figwidth() / 1.6)))
    height = fig.get_figheight()
    fig.suptitle("fastmlp benchmark: rows/s (higher is better) and peer time / fastmlp time "
                 "(>1: fastmlp faster)", fontsize=10, y=1 - 0.08 / height, va="top")
    fig.legend(handles, tools, loc="upper center", ncol=ncol, frameon=False,
               bbox_to_anchor=(0.5, 1 - 0.35 / height))
    head = 0.45 + 0.3 * (1 + (len(tools) - 1) // ncol)
    fig.tight_layout(rect=(0, 0, 1, 1 - head / height))
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _jsonable(o):
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.generic):
        return _jsonable(o.item())
    return o


# ----------------------------------------------------------------------------------------
# Command line

OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def reexec_without_openblas_env(argv):
    """Re-exec `python argv...` without OPENBLAS_CORETYPE/L2_SIZE (they slow current numpy).

    Skipped with --keep-openblas-env. Only the benchmark process is affected."""
    removed = [k for k in OPENBLAS_VARS if k in os.environ]
    if not removed or "--keep-openblas-env" in argv:
        return
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARS}
    env["FASTMLP_BENCH_UNSET"] = ",".join(f"{k}={os.environ[k]}" for k in removed)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, *argv], env)


def _csv(s):
    return [v.strip() for v in s.split(",") if v.strip()]


def configure_parser(parser: argparse.ArgumentParser, quick_default: bool = True):
    """Add the benchmark's arguments (MODEL included) to `parser` or a subparser."""
    parser.add_argument("model", nargs="?", metavar="MODEL",
                        help="a network saved by fastmlp (.npz/.safetensors); default: the "
                             "standard networks")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="quick", action="store_true", default=quick_default,
                      help="fast settings (seconds)" + (" [default]" if quick_default else ""))
    mode.add_argument("--full", dest="quick", action="store_false",
                      help="full settings (minutes)" + ("" if quick_default else " [default]"))
    parser.add_argument("--networks", type=_csv,
                        help="comma list of standard networks by widths, e.g. 3-4-2,784-512-256-10 "
                             f"(all: {','.join(s.name for s in STANDARD_NETWORKS)})")
    parser.add_argument("--batches", type=lambda s: [int(v) for v in _csv(s)],
                        help="comma list (full: 1,32,1024,16384; quick: 1,256; "
                             "MODEL: 1,4096 quick / 1,16384 full)")
    parser.add_argument("--threads", type=_csv, default=["all", "1"],
                        help="comma list of thread counts, 'all' = every core (default: all,1)")
    parser.add_argument("--peers", type=_csv, default=list(DEFAULT_PEERS),
                        help=f"comma list from {','.join(n for n in COMPETITORS if n != 'fastmlp')}"
                             " (missing ones are skipped; default: all but fastmlp-out)")
    parser.add_argument("--precisions", default=None,
                        help="reduced precisions to race (bf16, int8, or none): fastmlp's "
                             "quantized networks vs fastmlp float32, PyTorch and ONNX Runtime "
                             "(default bf16,int8; on networks 64-128-128-10,784-512-256-10, "
                             "quick: 64-128-128-10 only)")
    parser.add_argument("--precision-networks", type=_csv,
                        help="standard networks of the precision section (default: --networks "
                             "if given, else the two above)")
    parser.add_argument("--precision-only", action="store_true",
                        help="run only the precision section (no float32/float64 tables, GEMM "
                             "rate, overhead, import or memory tests)")
    parser.add_argument("--no-float64", dest="float64", action="store_false",
                        help="skip the float64 section (fastmlp vs numpy, numpy-careful)")
    parser.add_argument("--time-per-cell", type=float,
                        help="seconds per competitor per case (full 0.3, quick 0.02)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per case (full 7, quick 3)")
    parser.add_argument("--memory-rows", type=int,
                        help="rows for the peak-RSS test, 0 = skip (full 1000000, quick 0)")
    parser.add_argument("--import-runs", type=int, help="child runs of the import test, 0 = skip")
    parser.add_argument("--no-gemm", dest="gemm", action="store_false", help="skip the GEMM rate")
    parser.add_argument("--no-overhead", dest="overhead", action="store_false",
                        help="skip the call-overhead test")
    parser.add_argument("--json", metavar="PATH", help="write every result as JSON")
    parser.add_argument("--chart", metavar="PATH.png", help="draw bar charts with matplotlib")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--keep-openblas-env", action="store_true",
                        help="do not re-exec without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE")
    return parser


def _resolve(args):
    """Fill the mode-dependent defaults."""
    q = args.quick
    settings = Settings(quick=q, target_s=args.time_per_cell or (0.02 if q else 0.3),
                        rounds=args.rounds or (3 if q else 7), min_rounds=3)
    if args.batches:
        batches = args.batches
    elif args.model:
        batches = [1, 4096 if q else 16384]
    else:
        batches = [1, 256] if q else [1, 32, 1024, 16384]
    threads = sorted({_ncpu() if t == "all" else int(t) for t in args.threads}, reverse=True)
    unknown = [p for p in args.peers if p not in COMPETITORS]
    if unknown:
        raise ValueError(f"unknown peers {unknown}; known: {list(COMPETITORS)}")
    peers = [p for p in args.peers if p != "fastmlp"]
    memory_rows = args.memory_rows if args.memory_rows is not None else (0 if q else 1_000_000)
    import_runs = args.import_runs if args.import_runs is not None else (3 if q else 7)
    if args.precision_only:
        memory_rows = import_runs = 0
        args.gemm = args.overhead = False
    return settings, batches, threads, peers, memory_rows, import_runs


def _precision_workloads(args, quick, workloads):
    """(precisions, workloads) of the precision section."""
    import precision
    precisions = precision.parse_precisions("bf16,int8" if args.precisions is None
                                            else args.precisions)
    if args.precision_only and not precisions:
        raise ValueError("--precision-only with --precisions none runs nothing")
    if not precisions or args.model:
        return precisions, workloads if args.model else []
    names = args.precision_networks or args.networks or (
        precision.QUICK_NETWORKS if quick else precision.DEFAULT_NETWORKS)
    known = {s.name: s for s in STANDARD_NETWORKS}
    bad = [n for n in names if n not in known]
    if bad:
        raise ValueError(f"unknown precision networks {bad}; known: {list(known)}")
    have = {w.name: w for w in workloads}
    return precisions, [have.get(n) or make_workload(known[n], args.seed) for n in names]


def _workloads(args):
    if args.model:
        return [workload_from_model(args.model)]
    specs = STANDARD_NETWORKS
    if args.networks:
        known = {s.name: s for s in STANDARD_NETWORKS}
        bad = [n for n in args.networks if n not in known]
        if bad:
            raise ValueError(f"unknown networks {bad}; known: {list(known)}")
        specs = [known[n] for n in args.networks]
    return [make_workload(s, args.seed) for s in specs]


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_section(title, workloads, dtype, batches, threads, peers, settings, data, seed, out):
    cells = []
    for wl in workloads:
        inputs = {b: make_input(wl, b, seed, dtype) for b in batches}
        refs = {b: reference_forward(wl, inputs[b]) for b in batches}
        for n in threads:
            row = []
            for b in batches:
                _log(f"  {title}: {wl.label} threads={n} batch={b}")
                row.append(run_cell(wl, dtype, b, n, peers, inputs[b], refs[b], settings))
            print(f"\n{title}, threads={n} | {wl.label}   (µs per call; (ratio) = peer/fastmlp, "
                  f">1 means fastmlp faster)", file=out)
            print(format_table(row, peers), file=out, flush=True)
            cells += row
            data["cases"] += row
    return cells


def main_from_args(args, out=None) -> int:
    """Run the benchmark described by parsed `args` (see configure_parser). Returns 0, or 1
    when a competitor failed its output check or errored."""
    out = out or sys.stdout
    t_start = time.perf_counter()
    settings, batches, threads, peers, memory_rows, import_runs = _resolve(args)
    try:
        import fastmlp  # noqa: F401
    except ImportError as e:
        print(f"benchmark: cannot import fastmlp: {e}", file=sys.stderr)
        return 2
    missing = {p: COMPETITORS[p].missing() for p in peers if COMPETITORS[p].missing()}
    peers = [p for p in peers if p not in missing]
    workloads = _workloads(args)
    precisions, precision_workloads = _precision_workloads(args, settings.quick, workloads)
    if args.precision_only:
        workloads = []
    preload(peers)
    info = machine_info()
    data = {"meta": {"mode": "quick" if settings.quick else "full", "machine": info,
                     "batches": batches, "threads": threads, "peers": peers,
                     "skipped_peers": {p: f"not installed: {m}" for p, m in missing.items()},
                     "precisions": precisions, "settings": settings.__dict__},
            "cases": [], "precision_cases": [], "gemm": {}}
    print_header(info, settings, peers, missing, out)

    if args.gemm:
        n = 1024 if settings.quick else 2048
        for dt in (np.float32, np.float64):
            for t in threads:
                data["gemm"][f"{np.dtype(dt).name}/threads={t}"] = gemm_rate(n, t, dt, settings)
        data["meta"]["gemm_n"] = n
        print(f"\nnumpy matmul {n}x{n} GFLOP/s: " + ", ".join(
            f"{k} {v:.1f}" for k, v in data["gemm"].items()), file=out, flush=True)

    cells = []
    if workloads:
        main_dtype = workloads[0].weights[0].dtype
        cells = run_section(np.dtype(main_dtype).name, workloads, main_dtype, batches, threads,
                            peers, settings, data, args.seed, out)
    if args.float64 and workloads and not args.model:
        wl64 = [w for w in workloads if not settings.quick or w.name in QUICK_FLOAT64_NETWORKS]
        peers64 = [p for p in peers if p in FLOAT64_PEERS]
        cells += run_section("float64", wl64 or workloads[:1], np.float64, batches, threads,
                             peers64, settings, data, args.seed, out)

    if precisions:
        import precision
        data["precision_cases"] = precision.run_section(
            precision_workloads, precisions, batches, threads, settings, args.seed, out)
    if cells:
        print("\nSummary (ratio = best peer time / fastmlp time; >1 means fastmlp faster)",
              file=out)
        print(format_summary(cells), file=out)
    if data["gemm"]:
        print(f"\nGFLOP/s at each network's largest batch (% of numpy {data['meta']['gemm_n']}^2 "
              "matmul, same dtype and threads)", file=out)
        print(format_gflops(cells, data["gemm"]), file=out, flush=True)

    if args.overhead:
        data["overhead_ns"] = measure_overhead(settings)
        print("\nCall overhead (ns per call, 1-1 identity network, batch 1):", file=out)
        for k, v in data["overhead_ns"].items():
            print(f"  {k:<38} {v:8.0f}", file=out)
    if import_runs:
        imp = data["import"] = measure_import(import_runs)
        if "error" in imp:
            print(f"\nimport fastmlp: ERROR {imp['error']}", file=out)
        else:
            print(f"\nimport fastmlp after numpy: {imp['fastmlp_ms']:.1f} ms (median of "
                  f"{imp['runs']} fresh interpreters; import numpy {imp['numpy_ms']:.1f} ms); "
                  f"{imp['modules_added']} modules added, third-party: "
                  f"{', '.join(imp['third_party_imported']) or 'none'}", file=out)
    if memory_rows:
        print(f"\nPeak RSS of one call, {memory_rows:,} rows, {MEMORY_SPEC.label} float32, "
              f"threads={threads[0]}, one child process per tool (fastmlp with out=; peers "
              "allocate their own output, "
              f"{memory_rows * 10 * 4 / 2**20:.0f} MiB):", file=out, flush=True)
        data["memory"] = measure_memory(["fastmlp", *peers], memory_rows, threads[0], args.seed)
        for tool, r in data["memory"].items():
            print(f"  {tool:<14} {_fmt_mem(r)}", file=out)

    info["loadavg_end"] = os.getloadavg()
    data["meta"]["elapsed_s"] = time.perf_counter() - t_start
    data["errors"] = [f"{c['network']} {c.get('precision', c['dtype'])} batch={c['batch']} "
                      f"threads={c['threads']} {t}: {e}"
                      for c in cells + data["precision_cases"] for t, e in c["errors"].items()]
    print(f"\nload average start {info['loadavg_start'][0]:.2f}, end "
          f"{info['loadavg_end'][0]:.2f}; elapsed {data['meta']['elapsed_s']:.0f} s", file=out)
    if data["errors"]:
        print(f"{len(data['errors'])} competitor error(s): see '!' lines above", file=out)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(_jsonable(data), f, indent=1, allow_nan=False)
    if args.chart and cells:
        write_chart(cells, args.chart)
    return 1 if data["errors"] else 0


def print_header(info, settings, peers, missing, out):
    print(f"fastmlp benchmark ({'quick' if settings.quick else 'full'}): {info['cpu']}, "
          f"{info['cpus']} cpus, Python {info['python']}, numpy {info['numpy']}", file=out)
    print(f"fastmlp build: {info['fastmlp']}", file=out)
    import precision
    print(precision.format_header(info["fastmlp"], info["cpu_flags"]), file=out)
    blas = info["blas"]
    if isinstance(blas, str):
        print(f"BLAS: {blas}", file=out)
    else:
        for b in blas:
            where = os.path.basename(os.path.dirname(b["filepath"] or ""))  # numpy.libs, ...
            print(f"BLAS ({where}): {b['internal_api']} {b['version']} "
                  f"kernel={b['architecture']}, {b['num_threads']} threads", file=out)
    env = info["openblas_env"]
    if any(env.values()):
        print(f"WARNING: {', '.join(f'{k}={v}' for k, v in env.items() if v)} is set and slows "
              "numpy's OpenBLAS; run `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ...` "
              "or benchmarks/run.py", file=out)
    elif info["openblas_env_removed"]:
        print(f"(removed for this run: {info['openblas_env_removed']})", file=out)
    vers = ", ".join(f"{m} {info[m]}" for m in ("torch", "onnxruntime", "numba") if m in info)
    print(f"peers: {', '.join(peers)}" + (f" ({vers})" if vers else ""), file=out)
    for p, m in missing.items():
        print(f"skipped {p}: not installed ({', '.join(m)})", file=out)
    if info["loadavg_start"][0] >= 0.5 * info["cpus"]:
        print(f"WARNING: the machine is busy (load average {info['loadavg_start'][0]:.2f} on "
              f"{info['cpus']} cpus): multi-threaded times will be noisy and slow", file=out)
    print(f"load average {info['loadavg_start'][0]:.2f} (other work on the machine adds noise); "
          f"timing: median of {settings.rounds} interleaved rounds, ~{settings.target_s:g} s "
          "per competitor per case", file=out, flush=True)


def main(argv=None) -> int:
    """benchmarks/run.py: full settings unless --quick."""
    parser = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    configure_parser(parser, quick_default=False)
    args = parser.parse_args(argv)
    try:
        return main_from_args(args)
    except ValueError as e:  # an unknown network or peer
        parser.error(str(e))
