"""Classify held-out 8x8 digits with the model that ships with fastmlp and time it against
plain numpy."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, List, Sequence, Tuple

import numpy as np

from ._common import add_precision_option, layer_widths, with_precision
from ._timing import race, table

if TYPE_CHECKING:
    from fastmlp import Network

SHADES = " .:-=+*#%@"  # light to dark; ASCII so any terminal can show it


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--show", type=int, default=6, metavar="N",
                        help="how many digits to draw (default 6)")
    add_precision_option(parser, "run the model")


def demo_files() -> Tuple[Any, Any]:
    """The package's model and held-out digits, as importlib.resources references."""
    from importlib import resources

    data = resources.files("fastmlp") / "data"
    return data / "digits_mlp.npz", data / "digits_holdout.npz"


def load_demo() -> Tuple["Network", np.ndarray, np.ndarray]:
    """The built-in model and its held-out digits (images uint8 0..16, labels)."""
    from importlib import resources

    import fastmlp

    model_ref, holdout_ref = demo_files()
    with resources.as_file(model_ref) as model_path:
        net = fastmlp.load(model_path)
    with holdout_ref.open("rb") as f, np.load(f) as z:
        return net, z["images"], z["labels"]


def digit_art(images: np.ndarray, captions: Sequence[Sequence[str]]) -> str:
    """8x8 digits side by side as shaded characters (two per pixel), captions below."""
    cell = 2 * 8
    lines = []
    for r in range(8):
        parts = ["".join(SHADES[v * (len(SHADES) - 1) // 16] * 2 for v in img[r * 8:r * 8 + 8])
                 for img in images]
        lines.append("   ".join(parts))
    for k in range(max(len(c) for c in captions)):
        lines.append("   ".join(c[k].ljust(cell) if k < len(c) else " " * cell
                                for c in captions))
    return "\n".join("  " + line.rstrip() for line in lines)


def pick_examples(predicted: np.ndarray, labels: np.ndarray, n: int) -> List[int]:
    """The first n digits, swapping in one mistake (if any) so the demo stays honest."""
    n = max(0, min(n, len(labels)))
    picks = list(range(n))
    wrong = np.flatnonzero(predicted != labels)
    if n and len(wrong) and not set(wrong[:1]) & set(picks):
        picks[-1] = int(wrong[0])
    return picks


def _precision_text(net: "Network") -> str:
    if net.precision == net.dtype.name:
        return net.dtype.name
    return f"{net.precision} (float32 inputs and outputs)"


def run(args: argparse.Namespace) -> int:
    from fastmlp import _numpy_forward

    net, images, labels = load_demo()
    net = with_precision(net, args.precision)
    x = images.astype(net.dtype)
    probs = net.forward(x)
    predicted = probs.argmax(axis=1)
    correct = int((predicted == labels).sum())
    print(f"fastmlp demo: a {layer_widths(net)} {_precision_text(net)} network "
          f"({', '.join(net.activations)}) trained on scikit-learn's 8x8 digits")
    print(f"accuracy on {len(labels)} held-out digits: {correct / len(labels):.1%} "
          f"({correct}/{len(labels)})")

    show = pick_examples(predicted, labels, args.show)
    if show:
        captions = [[f"predicted {predicted[i]}", f"{probs[i, predicted[i]]:.0%} sure",
                     "right" if predicted[i] == labels[i] else f"WRONG, is {labels[i]}"]
                    for i in show]
        print()
        print(digit_art(images[show], captions))

    layers = _numpy_forward.layers_of(net)
    diff = float(np.max(np.abs(_numpy_forward.forward(layers, x) - probs)))
    rows_loop = x[:100]
    single = race(lambda: [_numpy_forward.forward(layers, r) for r in rows_loop],
                  lambda: [net.forward(r) for r in rows_loop], len(rows_loop))
    batch = race(lambda: _numpy_forward.forward(layers, x), lambda: net.forward(x), len(x))
    print()
    print(f"speed, same model and inputs (max |fastmlp - numpy| = {diff:.1e}):")
    print(table([("one sample at a time", single), (f"one batch of {len(x)} rows", batch)]))
    return 0
