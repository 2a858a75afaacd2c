"""Stream INPUT (.npy, .csv, .parquet, or - for CSV on stdin) through MODEL block by block and
write the outputs to OUTPUT (.npy, .csv, .parquet, or - for CSV on stdout). Memory stays flat
however large INPUT is; OUTPUT appears only once it is complete."""
from __future__ import annotations

import argparse
import sys

from ._common import add_precision_option, count, load_model, positive_int, with_precision
from ._progress import Progress, rate


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="a .npz, .safetensors or .onnx model")
    parser.add_argument("input", metavar="INPUT",
                        help="rows x features: .npy, .csv, .parquet, or - (CSV on stdin)")
    parser.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                        help="where to write rows x outputs: .npy, .csv, .parquet, "
                             "or - (CSV on stdout)")
    parser.add_argument("--batch-size", type=positive_int, metavar="ROWS",
                        help="rows per block (default: about 4 MiB of activations per block)")
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help="threads for the forward pass (default: all cores)")
    parser.add_argument("--columns", metavar="COLS",
                        help="comma-separated feature columns, by name or 0-based index "
                             "(default: all)")
    header = parser.add_mutually_exclusive_group()
    header.add_argument("--header", dest="header", action="store_true", default=None,
                        help="the CSV's first line is a header (default: detect)")
    header.add_argument("--no-header", dest="header", action="store_false",
                        help="the CSV's first line is data")
    parser.add_argument("--delimiter", default=",", help="CSV field separator (default ',')")
    add_precision_option(parser, "compute")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bar and no summary line")


def run(args: argparse.Namespace) -> int:
    from fastmlp.tabular import STDIO, data_format, predict_file

    data_format(args.input, "input")  # wrong suffixes fail before the model is read
    data_format(args.output, "output")
    net = with_precision(load_model(args.model), args.precision)
    progress = Progress(sys.stderr, enabled=not args.quiet and sys.stderr.isatty())
    try:
        rows = predict_file(net, args.input, args.output, batch_size=args.batch_size,
                            threads=args.threads, progress=progress.update,
                            columns=None if args.columns is None else args.columns.split(","),
                            header=args.header, delimiter=args.delimiter)
    finally:
        progress.close()  # end the bar's line, so an error message starts a fresh one
    if not args.quiet:
        elapsed = progress.elapsed()
        where = "standard output" if args.output == STDIO else args.output
        print(f"fastmlp: wrote {count(rows, 'row')} x {count(net.n_outputs, 'output')} to "
              f"{where} in {elapsed:.2f} s ({rate(rows / elapsed)} rows/s)", file=sys.stderr)
    return 0
