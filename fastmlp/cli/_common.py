"""What several commands share: the user-fixable error, model loading, wording."""
from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastmlp import Network


class CLIError(Exception):
    """A problem the user can fix: printed as one line, exit status 2."""


def one_line(exc: BaseException) -> str:
    """An exception as one line of text; an OSError as 'path: reason'."""
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename is not None else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def count(n: int, noun: str) -> str:
    """'1 layer', '2 layers', '1,000 rows'."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


PRECISIONS = ("float32", "float64", "bfloat16", "bf16", "int8")


def add_precision_option(parser: "argparse._ActionsContainer", what: str) -> None:
    parser.add_argument("--precision", choices=PRECISIONS, metavar="P",
                        help=f"{what} in this precision: float32, float64, or bfloat16 (bf16) / "
                             "int8 weights with float32 inputs and outputs (default: the "
                             "model's own)")


def with_precision(net: "Network", precision: "str | None") -> "Network":
    """The network in `precision` (None: unchanged): float32 / float64 via astype,
    bfloat16 / int8 via quantize."""
    if precision is None:
        return net
    if precision in ("float32", "float64"):
        return net.astype(precision)
    return net.quantize(precision)


def model_suffixes() -> tuple[str, ...]:
    from fastmlp import io

    return tuple(io.SUFFIXES) + (".onnx",)


def load_model(path: str) -> "Network":
    """Read a model that fastmlp.load or fastmlp.from_onnx reads; failures are one line."""
    import fastmlp

    suffix = os.path.splitext(path)[1].lower()
    if suffix not in model_suffixes():
        raise CLIError(f"{path}: unknown model format {suffix or '(no suffix)'!r}; "
                       f"expected {', '.join(model_suffixes())}")
    if not os.path.isfile(path):
        raise CLIError(f"{path}: no such file")
    try:
        return fastmlp.from_onnx(path) if suffix == ".onnx" else fastmlp.load(path)
    except (ValueError, ImportError, OSError):  # they name the file (or the pip command)
        raise
    except Exception as exc:  # a corrupt file can fail in a framework's own ways
        raise CLIError(f"{path}: cannot read the model: {one_line(exc)}") from exc


def layer_widths(net: "Network") -> str:
    """'64 -> 32 -> 10'."""
    return " -> ".join(str(n) for n in [net.n_inputs] + [m for _, m in net.shapes])
