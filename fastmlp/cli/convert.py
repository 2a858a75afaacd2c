"""Convert an ONNX, .npz or .safetensors model to one of fastmlp's formats, chosen by DEST's
suffix."""
from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from ._common import CLIError, add_precision_option, count, load_model, with_precision
from .info import describe, summary

if TYPE_CHECKING:
    from fastmlp import Network


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help="a .onnx, .npz or .safetensors model")
    parser.add_argument("-o", "--output", dest="dest", required=True, metavar="DEST",
                        help="a .npz or .safetensors path")
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--dtype", choices=("float32", "float64"),
                        help="store the parameters in this dtype (default: unchanged)")
    add_precision_option(chosen, "store the weights")


def with_dtype(net: "Network", dtype: str) -> "Network":
    """The same network (every kind of layer) computing in `dtype`."""
    return net.astype(dtype)


def run(args: argparse.Namespace) -> int:
    from fastmlp import io
    from fastmlp.tabular import same_file

    suffix = os.path.splitext(args.dest)[1].lower()
    if suffix not in io.SUFFIXES:
        raise CLIError(f"{args.dest}: cannot write {suffix or '(no suffix)'!r}; "
                       f"use {' or '.join(io.SUFFIXES)}")
    if same_file(args.source, args.dest):
        raise CLIError(f"{args.dest}: refusing to overwrite the source model; "
                       "choose another output path")
    net = load_model(args.source)
    if args.dtype:
        net = with_dtype(net, args.dtype)
    net = with_precision(net, args.precision)
    net.save(args.dest)  # fastmlp.io writes a temporary file and renames it
    print(f"fastmlp: wrote {args.dest}: {summary(net)}, "
          f"{count(describe(net)['parameters'], 'parameter')}", file=sys.stderr)
    return 0
