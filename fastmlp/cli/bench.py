"""Time fastmlp against plain numpy (x @ W + b and the activation, per layer) on MODEL, or on a
built-in shape, at one row per call and at one large batch. The full benchmark against PyTorch,
ONNX Runtime and numba is benchmarks/run.py in the source repository."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Tuple

import numpy as np

from ._common import CLIError, layer_widths, load_model, positive_int
from ._timing import race, table

if TYPE_CHECKING:
    from fastmlp import Network

DEFAULT_SHAPE = "784-512-256-10"


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
    """The largest difference between fastmlp and numpy, or a CLIError if they disagree."""
    y = net.forward(x)
    scale = float(np.max(np.abs(y_numpy))) or 1.0
    diff = float(np.max(np.abs(y - y_numpy)))
    tolerance = (1e-4 if net.dtype == np.float32 else 1e-10) * scale
    if not diff <= tolerance:
        raise CLIError(f"fastmlp and numpy disagree by {diff:.3g} (more than {tolerance:.3g}); "
                       "the timings would mean nothing")
    return diff


def run(args: argparse.Namespace) -> int:
    from fastmlp import _numpy_forward

    if args.seconds <= 0:
        raise CLIError(f"--seconds must be positive, got {args.seconds}")
    net = load_model(args.model) if args.model else built_in(args.shape)
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
    name = args.model or f"built-in {args.shape}"
    print(f"fastmlp bench: {name}, a {layer_widths(net)} {net.dtype.name} network "
          f"({', '.join(net.activations)}); max |fastmlp - numpy| = {diff:.1e}")
    print(table(results))
    print("(best of 5 alternating rounds; other work on the machine slows both)")
    return 0
