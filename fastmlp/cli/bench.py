"""Time fastmlp against plain numpy (x @ W + b and the activation, per layer) on MODEL, or on a
built-in shape, at one row per call and at one large batch. With --precision bf16 or int8 (or a
model stored so), the quantized network races fastmlp float32 and numpy on the weights before
quantization, and each one's error against float64 is printed. The full benchmark against
PyTorch, ONNX Runtime and numba is benchmarks/run.py in the source repository."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Tuple

import numpy as np

from fastmlp._quantize import REDUCED, canonical_precision

from ._common import (CLIError, add_precision_option, layer_widths, load_model, positive_int,
                      with_precision)
from ._timing import per_row, race, race_all, table

if TYPE_CHECKING:
    from fastmlp import Network

DEFAULT_SHAPE = "784-512-256-10"
SHORT_NAMES = {"bfloat16": "bf16"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", metavar="MODEL",
                        help="a .npz, .safetensors or .onnx model (default: random weights "
                             "of the shape given by --shape)")
    parser.add_argument("--shape", default=DEFAULT_SHAPE, metavar="WIDTHS",
                        help=f"layer widths of the built-in network, relu then identity "
                             f"(default {DEFAULT_SHAPE})")
    parser.add_argument("--batch", type=positive_int, default=4096, metavar="ROWS",
                        help="rows of the large batch (default 4096)")
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help="fastmlp's threads (default: all cores; numpy's BLAS uses its own)")
    parser.add_argument("--seconds", type=float, default=1.0, metavar="S",
                        help="about how long each of the two races runs (default 1)")
    add_precision_option(parser, "time the model")


def built_in(shape: str) -> "Network":
    """Glorot-uniform float32 weights of `shape` ('784-512-256-10'), relu then identity."""
    import fastmlp

    try:
        widths = [int(w) for w in shape.split("-")]
    except ValueError:
        widths = []
    if len(widths) < 2 or min(widths) < 1:
        raise CLIError(f"--shape {shape!r}: expected two or more positive widths, e.g. "
                       f"{DEFAULT_SHAPE}")
    rng = np.random.default_rng(widths)
    weights = [rng.uniform(-1, 1, (n, m)).astype(np.float32) * np.float32(np.sqrt(6 / (n + m)))
               for n, m in zip(widths[:-1], widths[1:])]
    biases = [rng.uniform(-0.1, 0.1, m).astype(np.float32) for m in widths[1:]]
    return fastmlp.Network(weights, biases, ["relu"] * (len(weights) - 1) + ["identity"])


def check_agreement(net: "Network", x: np.ndarray, y_numpy: np.ndarray) -> float:
    """The largest difference between fastmlp and numpy, or a CLIError if they disagree beyond
    the rounding of net's dtype. A bfloat16 / int8 network's difference is only returned: the
    package states no bound for a whole network (tests/test_precision.py bounds each layer),
    and its error is what --precision reports."""
    y = net.forward(x)
    scale = float(np.max(np.abs(y_numpy))) or 1.0
    diff = float(np.max(np.abs(y - y_numpy)))
    if net.precision in REDUCED:
        return diff
    tolerance = (1e-4 if net.dtype == np.float32 else 1e-10) * scale
    if not diff <= tolerance:
        raise CLIError(f"fastmlp and numpy disagree by {diff:.3g} (more than {tolerance:.3g}); "
                       "the timings would mean nothing")
    return diff


def relative_error(y: np.ndarray, reference: np.ndarray) -> float:
    """max |y - reference| / max |reference| over every row and output."""
    scale = float(np.max(np.abs(reference))) or 1.0
    return float(np.max(np.abs(y.astype(np.float64) - reference))) / scale


def run(args: argparse.Namespace) -> int:
    if args.seconds <= 0:
        raise CLIError(f"--seconds must be positive, got {args.seconds}")
    net = load_model(args.model) if args.model else built_in(args.shape)
    name = args.model or f"built-in {args.shape}"
    precision = canonical_precision(args.precision or net.precision)
    if precision in REDUCED:
        return run_reduced(net, precision, name, args)
    return run_float(with_precision(net, args.precision), name, args)


def run_float(net: "Network", name: str, args: argparse.Namespace) -> int:
    """fastmlp against numpy, both in net's dtype."""
    from fastmlp import _numpy_forward

    layers = _numpy_forward.layers_of(net)
    x = np.random.default_rng(0).standard_normal((args.batch, net.n_inputs)).astype(net.dtype)
    diff = check_agreement(net, x, _numpy_forward.forward(layers, x))
    one = x[:1]
    results: "list[Tuple[str, Tuple[float, float, float]]]" = [
        ("one row per call", race(lambda: _numpy_forward.forward(layers, one),
                                  lambda: net.forward(one, threads=args.threads), 1,
                                  budget=args.seconds)),
        (f"one batch of {args.batch:,} rows",
         race(lambda: _numpy_forward.forward(layers, x),
              lambda: net.forward(x, threads=args.threads), len(x), budget=args.seconds)),
    ]
    print(f"fastmlp bench: {name}, a {layer_widths(net)} {net.dtype.name} network "
          f"({', '.join(net.activations)}); max |fastmlp - numpy| = {diff:.1e}")
    print(table(results))
    print("(best of 5 alternating rounds; other work on the machine slows both)")
    return 0


def run_reduced(source: "Network", precision: str, name: str, args: argparse.Namespace) -> int:
    """fastmlp with `precision` weights against fastmlp float32 and numpy float32 on source's
    weights (for a model stored in reduced precision: their float values), and the error of
    each against numpy in float64 on those weights."""
    import fastmlp
    from fastmlp._cpuflags import cpu_flags, kernel_header

    reduced = source if source.precision == precision else source.quantize(precision)
    x = np.random.default_rng(0).standard_normal((args.batch, source.n_inputs)).astype(np.float32)
    results, errors = race_reduced(source, reduced, x, args)
    weights = ("the float values of the stored weights" if source.precision == precision
               else "the weights before quantization")
    print(f"fastmlp bench: {name}, a {layer_widths(source)} network "
          f"({', '.join(source.activations)}) with {precision} weights, float32 inputs and "
          f"outputs;\nraced against fastmlp float32 and numpy float32 on {weights}")
    print(kernel_header(fastmlp.build_info()["kernel"], cpu_flags()))
    print(precision_table(SHORT_NAMES.get(precision, precision), results, errors))
    print(f"max relative error = max |y - y_ref| / max |y_ref| over all outputs of the "
          f"{args.batch:,} rows; y_ref: numpy in float64 on {weights}")
    print("(best of 5 alternating rounds; other work on the machine slows all three alike)")
    return 0


def race_reduced(source: "Network", reduced: "Network", x: np.ndarray,
                 args: argparse.Namespace) -> "Tuple[list[Tuple[str, list[float]]], list[float]]":
    """Seconds per row of numpy float32, fastmlp float32 (both on source's weights) and
    `reduced`, on one row and on x; and the relative error of each against float64."""
    from fastmlp import _numpy_forward

    full = source.astype("float32")
    layers = _numpy_forward.layers_of(full)
    y_numpy = _numpy_forward.forward(layers, x)
    check_agreement(full, x, y_numpy)
    reference = _numpy_forward.forward(_numpy_forward.layers_of(source.astype("float64")),
                                       x.astype(np.float64))
    errors = [relative_error(y, reference) for y in (y_numpy, full.forward(x), reduced.forward(x))]
    results = []
    for label, rows in (("one row per call", x[:1]), (f"one batch of {len(x):,} rows", x)):
        fns = (lambda rows=rows: _numpy_forward.forward(layers, rows),
               lambda rows=rows: full.forward(rows, threads=args.threads),
               lambda rows=rows: reduced.forward(rows, threads=args.threads))
        results.append((label, race_all(fns, len(rows), budget=args.seconds)))
    return results, errors


def precision_table(short: str, results: "list[Tuple[str, list[float]]]",
                    errors: "list[float]") -> str:
    """Seconds per row of numpy, fastmlp float32 and fastmlp `short`, the speed-ups, and the
    max relative error of each."""
    def line(label: str, cells: "list[str]", widths: "list[int]") -> str:
        return f"  {label:<26}" + "".join(f"{c:>{w}}" for c, w in zip(cells, widths))

    widths = [14, 14, 14, 11, 11, 12]
    lines = [line("", ["", "fastmlp", "fastmlp", "float32", short, short], widths),
             line("", ["numpy", "float32", short, "vs numpy", "vs numpy", "vs float32"], widths)]
    for label, (numpy_s, full_s, reduced_s) in results:
        times = [per_row(t) for t in (numpy_s, full_s, reduced_s)]
        ratios = [f"{r:.1f}x" for r in (numpy_s / full_s, numpy_s / reduced_s,
                                        full_s / reduced_s)]
        lines.append(line(label, times + ratios, widths))
    lines.append(line("max relative error", [f"{e:.1e}" for e in errors], widths))
    return "\n".join(lines)
