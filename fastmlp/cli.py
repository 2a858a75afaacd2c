"""The `fastmlp` command line: demo, info, predict, bench and convert.

Every subcommand runs through `main(argv) -> int`. Problems the user can fix
(missing file, unknown format, a width that does not match the model, a bad
option, a ValueError from fastmlp) print one line, ``fastmlp: error: ...``, and
exit with status 2; Ctrl-C exits with 130. Only numpy and fastmlp are needed,
pyarrow only for .parquet files.
"""

import argparse
import contextlib
import itertools
import json
import math
import mmap
import os
import shutil
import sys
import tempfile
import time

import numpy as np

import fastmlp

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
MODEL_SUFFIXES = (".npz", ".safetensors")
DATA_SUFFIXES = (".npy", ".csv", ".parquet")


class CLIError(Exception):
    """A problem the user can fix: printed as one line, exit status 2."""


# --------------------------------------------------------------------------- parser


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line like every other error."""

    def error(self, message):
        hint = f" (see '{self.prog} --help')"
        self.exit(EXIT_ERROR, f"fastmlp: error: {message}{hint}\n")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def build_parser():
    parser = _Parser(prog="fastmlp", description="Run multi-layer perceptrons fast.")
    parser.add_argument("--version", action="version",
                        version=f"fastmlp {getattr(fastmlp, '__version__', 'unknown')}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("demo", help="classify digits with the built-in model",
                       description="Classify held-out 8x8 digits with the model that ships "
                                   "with fastmlp and time it against plain numpy.")
    p.add_argument("--show", type=int, default=6, metavar="N",
                   help="how many digits to draw (default 6)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("info", help="describe a model file",
                       description="Show layers, shapes, activations, dtype, parameter "
                                   "count, memory and FLOPs per sample of a model.")
    p.add_argument("model", metavar="MODEL", help="a .npz, .safetensors or .onnx model")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("predict", help="run a model over a data file",
                       description="Stream INPUT (.npy, .csv, .parquet) through MODEL in "
                                   "chunks and write the outputs to OUTPUT (.npy, .csv, "
                                   ".parquet). Memory stays flat however large INPUT is; "
                                   "OUTPUT appears only once it is complete.")
    p.add_argument("model", metavar="MODEL", help="a .npz, .safetensors or .onnx model")
    p.add_argument("input", metavar="INPUT", help="rows x features: .npy, .csv or .parquet")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="where to write rows x outputs: .npy, .csv or .parquet")
    p.add_argument("--batch-size", type=_positive_int, metavar="ROWS",
                   help="rows per chunk (default: about 4 MiB of activations per chunk)")
    p.add_argument("--threads", type=_positive_int, metavar="N",
                   help="threads for the forward pass (default: all cores)")
    p.add_argument("--columns", metavar="COLS",
                   help="comma-separated feature columns, by name or 0-based index "
                        "(default: all)")
    header = p.add_mutually_exclusive_group()
    header.add_argument("--header", dest="header", action="store_true", default=None,
                        help="the CSV's first line is a header (default: detect)")
    header.add_argument("--no-header", dest="header", action="store_false",
                        help="the CSV's first line is data")
    p.add_argument("--delimiter", default=",", help="CSV field separator (default ',')")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar and no summary line")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("bench", help="benchmark fastmlp against other libraries",
                       description="Benchmark a model (or built-in shapes) with fastmlp.bench.")
    _configure_bench(p)

    p = sub.add_parser("convert", help="convert a model to .npz or .safetensors",
                       description="Convert an ONNX, .npz or .safetensors model to one of "
                                   "fastmlp's formats, chosen by DEST's suffix.")
    p.add_argument("source", metavar="SOURCE", help="a .onnx, .npz or .safetensors model")
    p.add_argument("-o", "--output", dest="dest", required=True, metavar="DEST",
                   help="a .npz or .safetensors path")
    p.add_argument("--dtype", choices=("float32", "float64"),
                   help="store the parameters in this precision (default: unchanged)")
    p.set_defaults(func=cmd_convert)
    return parser


def _configure_bench(parser):
    # The benchmark lives in fastmlp.bench; one broken optional import there
    # must not take the other subcommands down with it.
    try:
        from fastmlp import bench
    except ImportError as exc:
        reason = str(exc)

        def unavailable(args):
            raise CLIError(f"bench is unavailable: {reason}")

        parser.set_defaults(func=unavailable)
        return
    bench.configure_parser(parser)
    parser.set_defaults(func=bench.main_from_args)


# --------------------------------------------------------------------------- entry point


def main(argv=None):
    """Run the command line; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        return args.func(args) or 0
    except SystemExit as exc:  # --help, --version, usage errors; sys.exit("why") from bench
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(f"fastmlp: error: {_one_line(CLIError(exc.code))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("fastmlp: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `fastmlp info m.npz | head -1`: the reader left; that is not an error.
        # Point stdout at devnull so the interpreter's final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (CLIError, ValueError, TypeError, OSError) as exc:
        if os.environ.get("FASTMLP_DEBUG"):
            raise
        print(f"fastmlp: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR


def _one_line(exc):
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        text = f"{where}: {exc.strerror}" if where else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


# --------------------------------------------------------------------------- models


def _suffix(path):
    return os.path.splitext(str(path))[1].lower()


def load_model(path):
    """Read a .npz, .safetensors or .onnx model; any failure becomes one CLIError line."""
    suffix = _suffix(path)
    if suffix not in MODEL_SUFFIXES + (".onnx",):
        raise CLIError(f"{path}: unknown model format {suffix or '(no suffix)'!r}; "
                       "expected .npz, .safetensors or .onnx")
    if not os.path.isfile(path):
        raise CLIError(f"{path}: no such file")
    try:
        return fastmlp.from_onnx(path) if suffix == ".onnx" else fastmlp.load(path)
    except ImportError as exc:
        raise CLIError(f"{path}: reading {suffix} models needs an extra package ({exc})") from exc
    except ValueError:  # fastmlp's loaders name the file and the problem already
        raise
    except Exception as exc:  # a corrupt file can fail in many libraries' own ways
        raise CLIError(f"{path}: cannot read the model: {_one_line(exc)}") from exc


def with_dtype(net, dtype):
    return fastmlp.Network(net.weights, net.biases,
                           list(zip(net.activations, net.activation_params)), dtype=dtype)


def _activation_text(name, params):
    if not params:
        return name
    return name + "(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")"


def describe(net):
    """A JSON-friendly summary of a network: shapes, parameters, memory, FLOPs."""
    layers = []
    for (n_in, n_out), name, params in zip(net.shapes, net.activations, net.activation_params):
        layers.append({"inputs": n_in, "outputs": n_out, "activation": name,
                       "activation_params": dict(params),
                       "parameters": n_in * n_out + n_out})
    n_params = sum(layer["parameters"] for layer in layers)
    return {
        "dtype": net.dtype.name,
        "inputs": net.n_inputs,
        "outputs": net.n_outputs,
        "layers": layers,
        "parameters": n_params,
        "parameter_bytes": n_params * net.dtype.itemsize,
        # One multiply and one add per weight; the add of the bias replaces the
        # first add of each dot product. Activations are not counted.
        "flops_per_sample": sum(2 * n_in * n_out for n_in, n_out in net.shapes),
    }


def _bytes_text(n):
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            return f"{n:,.1f} {unit}"


def cmd_info(args):
    net = load_model(args.model)
    d = describe(net)
    if args.json:
        print(json.dumps(d, indent=2, default=float))  # float(): numpy scalars in params
        return 0
    print(f"{args.model}: {len(net)} layers, {d['inputs']} inputs -> {d['outputs']} outputs, "
          f"{d['dtype']}")
    print()
    rows = [("layer", "shape", "activation", "parameters")]
    for i, layer in enumerate(d["layers"], 1):
        rows.append((str(i), f"{layer['inputs']} x {layer['outputs']}",
                     _activation_text(layer["activation"], layer["activation_params"]),
                     f"{layer['parameters']:,}"))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    for r in rows:
        print(f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  "
              f"{r[3]:>{widths[3]}}")
    print()
    print(f"  parameters       {d['parameters']:,}")
    print(f"  memory           {d['parameter_bytes']:,} bytes "
          f"({_bytes_text(d['parameter_bytes'])}) of weights and biases")
    print(f"  FLOPs per sample {d['flops_per_sample']:,} "
          "(2 per multiply-add; activations not counted)")
    return 0


def cmd_convert(args):
    suffix = _suffix(args.dest)
    if suffix not in MODEL_SUFFIXES:
        raise CLIError(f"{args.dest}: cannot write {suffix or '(no suffix)'!r}; "
                       "use .npz or .safetensors")
    _output_directory(args.dest)
    net = load_model(args.source)
    if args.dtype:
        net = with_dtype(net, args.dtype)
    net.save(args.dest)  # fastmlp.io writes to a temporary file and renames it
    d = describe(net)
    print(f"wrote {args.dest}: {len(net)} layers, {d['inputs']} -> {d['outputs']}, "
          f"{d['parameters']:,} parameters, {d['dtype']}")
    return 0


# --------------------------------------------------------------------------- output files


def _default_file_mode():
    # mkstemp makes 0600 files; a finished output should look like any other new file.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _output_directory(path):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CLIError(f"{path}: directory {directory} does not exist")
    return directory


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path beside `path`; move it into place only on success.

    A crash, an error or Ctrl-C leaves no partial file under the final name and
    removes the temporary one. The suffix is kept so writers that choose a
    format by suffix (net.save) still do.
    """
    path = os.fspath(path)
    directory = _output_directory(path)
    base = os.path.basename(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{base}.", suffix=f".part{_suffix(path)}")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class NpyWriter:
    """Streams rows into a .npy whose row count is known only at the end.

    The header slot is sized for the largest possible row count and rewritten
    on close; spaces pad it, as the .npy format allows, so the data offset
    stays a multiple of 64.
    """

    def __init__(self, path, n_cols, dtype):
        self.file = open(path, "wb")
        self.n_cols, self.dtype, self.rows = n_cols, np.dtype(dtype), 0
        self.header_size = len(self._header(2**63 - 1))
        self.file.write(b"\0" * self.header_size)

    def _header(self, rows, size=0):
        d = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
             "shape": (rows, self.n_cols)}
        text = repr(d).encode("latin1")
        prefix = 6 + 2 + 2  # magic, version, header length
        total = max(size, -(-(prefix + len(text) + 1) // 64) * 64)
        header = text + b" " * (total - prefix - len(text) - 1) + b"\n"
        return np.lib.format.magic(1, 0) + len(header).to_bytes(2, "little") + header

    def write(self, y):
        self.file.write(np.ascontiguousarray(y, dtype=self.dtype).data)
        self.rows += len(y)

    def close(self):
        self.file.seek(0)
        self.file.write(self._header(self.rows, self.header_size))
        self.file.close()


class CsvWriter:
    def __init__(self, path, n_cols, dtype, names):
        self.file = open(path, "w", newline="", encoding="ascii")
        # Enough digits that every value reads back exactly.
        digits = 9 if np.dtype(dtype) == np.float32 else 17
        self.row_format = ",".join([f"%.{digits}g"] * n_cols) + "\n"
        self.file.write(",".join(names) + "\n")

    def write(self, y):
        # One %-format over the whole chunk: several times faster than np.savetxt.
        self.file.write((self.row_format * len(y)) % tuple(y.ravel().tolist()))

    def close(self):
        self.file.close()


class ParquetWriter:
    def __init__(self, path, n_cols, dtype, names):
        pa, pq = _import_pyarrow()
        self.pa, self.names = pa, names
        schema = pa.schema([(name, pa.from_numpy_dtype(np.dtype(dtype))) for name in names])
        self.writer = pq.ParquetWriter(path, schema)

    def write(self, y):
        columns = [self.pa.array(y[:, j]) for j in range(y.shape[1])]
        self.writer.write_table(self.pa.Table.from_arrays(columns, names=self.names))

    def close(self):
        self.writer.close()


def open_writer(path, fmt, n_cols, dtype):
    names = [f"y{j}" for j in range(n_cols)]
    if fmt == ".npy":
        return NpyWriter(path, n_cols, dtype)
    if fmt == ".csv":
        return CsvWriter(path, n_cols, dtype, names)
    return ParquetWriter(path, n_cols, dtype, names)


def _import_pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise CLIError(".parquet files need pyarrow: pip install pyarrow") from None
    return pyarrow, pyarrow.parquet


# --------------------------------------------------------------------------- input files


def _column_indices(spec, names, n_cols, path):
    """Indices chosen by --columns ('a,b' or '0,3'); all columns when spec is None."""
    if spec is None:
        return None
    indices = []
    for item in (s.strip() for s in spec.split(",")):
        if names is not None and item in names:
            indices.append(names.index(item))
        elif item.lstrip("-").isdigit() and -n_cols <= int(item) < n_cols:
            indices.append(int(item) % n_cols)
        else:
            known = f"; columns are {', '.join(names)}" if names else ""
            raise CLIError(f"{path}: no column {item!r} among its {n_cols}{known}")
    return indices


@contextlib.contextmanager
def read_npy(path, batch_rows, dtype, opts):
    """Chunks of a memory-mapped .npy.

    Pages already consumed are dropped from our mapping (MADV_DONTNEED), or they
    would count against this process's memory until the kernel reclaims them.
    """
    try:
        meta = np.load(path, mmap_mode="r")  # numpy parses and validates the header
    except ValueError as exc:
        raise CLIError(f"{path}: not a numeric .npy array: {_one_line(exc)}") from exc
    shape, src_dtype, offset = meta.shape, meta.dtype, meta.offset
    order = "F" if meta.flags.f_contiguous and not meta.flags.c_contiguous else "C"
    del meta
    if len(shape) != 2:
        raise CLIError(f"{path}: expected a 2-D array (rows x features), got shape {shape}")
    if src_dtype.kind not in "biuf":
        raise CLIError(f"{path}: expected numbers, got dtype {src_dtype}")
    cols = _column_indices(opts.columns, None, shape[1], path)
    rows = shape[0]
    with open(path, "rb") as f, _map_file(f) as mm:
        def chunks():
            x = np.ndarray(shape, src_dtype, buffer=mm, offset=offset, order=order)
            row_bytes = shape[1] * src_dtype.itemsize
            dropped = 0
            try:
                for start in range(0, rows, batch_rows):
                    block = x[start:start + batch_rows]
                    chunk = np.array(block if cols is None else block[:, cols], dtype=dtype)
                    if order == "C" and hasattr(mmap, "MADV_DONTNEED"):
                        end = (offset + (start + len(chunk)) * row_bytes) // mmap.PAGESIZE
                        end *= mmap.PAGESIZE
                        if end > dropped:
                            mm.madvise(mmap.MADV_DONTNEED, dropped, end - dropped)
                            dropped = end
                    del block
                    yield chunk, (start + len(chunk)) / rows
            finally:
                del x  # the mapping cannot close while an array still points into it

        gen = chunks()
        try:
            yield gen
        finally:
            gen.close()


@contextlib.contextmanager
def _map_file(f):
    if os.fstat(f.fileno()).st_size == 0:
        raise CLIError(f"{f.name}: empty file")
    mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if hasattr(mmap, "MADV_SEQUENTIAL"):
        mm.madvise(mmap.MADV_SEQUENTIAL)
    try:
        yield mm
    finally:
        mm.close()


def _is_number(text):
    try:
        float(text.strip().strip('"'))
    except ValueError:
        return False
    return True


@contextlib.contextmanager
def read_csv(path, batch_rows, dtype, opts):
    """Chunks of a numeric CSV, parsed batch_rows lines at a time with np.loadtxt."""
    delimiter = opts.delimiter
    size = max(os.path.getsize(path), 1)
    with open(path, encoding="utf-8-sig") as f:  # -sig: skip a BOM from spreadsheet apps
        first = f.readline()
        fields = first.rstrip("\n").split(delimiter)
        header = opts.header if opts.header is not None else not all(map(_is_number, fields))
        names = [s.strip().strip('"') for s in fields] if header else None
        if not first.strip():
            raise CLIError(f"{path}: the first line is empty; expected numbers or a header")
        cols = _column_indices(opts.columns, names, len(fields), path)

        def chunks():
            pending = [] if header else [first]
            line_no = 2 if header else 1  # file line number of the next chunk's first line
            consumed = len(first) if header else 0
            while True:
                lines = pending + list(itertools.islice(f, batch_rows - len(pending)))
                pending = []
                if not lines:
                    return
                consumed += sum(map(len, lines))
                yield _parse_csv(lines, line_no, path, dtype, delimiter, cols), consumed / size
                line_no += len(lines)

        gen = chunks()
        try:
            yield gen
        finally:
            gen.close()


def _parse_csv(lines, line_no, path, dtype, delimiter, cols):
    try:
        return np.loadtxt(lines, dtype=dtype, delimiter=delimiter, ndmin=2, usecols=cols,
                          quotechar='"')
    except ValueError:
        # Rare path: find the first bad line so the message names it.
        width = None
        for i, line in enumerate(lines):
            fields = line.split("#", 1)[0].rstrip("\n").split(delimiter)
            if not line.strip():
                continue
            width = width or len(fields)
            where = f"{path}, line {line_no + i}"
            if len(fields) != width:
                raise CLIError(f"{where}: {len(fields)} values, expected {width}") from None
            for field in fields:
                if not _is_number(field):
                    raise CLIError(f"{where}: {field.strip()!r} is not a number") from None
        raise


@contextlib.contextmanager
def read_parquet(path, batch_rows, dtype, opts):
    """Chunks of a .parquet file, read batch by batch (memory ~ one row group)."""
    pa, pq = _import_pyarrow()
    # pre_buffer (on by default) reads ahead the column chunks of the whole file,
    # so memory would grow with the file's size.
    pf = pq.ParquetFile(path, pre_buffer=False)
    schema = pf.schema_arrow
    cols = _column_indices(opts.columns, schema.names, len(schema.names), path)
    names = schema.names if cols is None else [schema.names[i] for i in cols]
    for name in names:
        t = schema.field(name).type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
            raise CLIError(f"{path}: column {name!r} holds {t}, not numbers "
                           "(choose feature columns with --columns)")
    rows = max(pf.metadata.num_rows, 1)

    def chunks():
        done = 0
        for batch in pf.iter_batches(batch_size=batch_rows, columns=names, use_threads=True):
            x = np.empty((batch.num_rows, len(names)), dtype=dtype)
            for j, column in enumerate(batch.columns):
                if column.null_count:
                    raise CLIError(f"{path}: column {names[j]!r} has missing values "
                                   f"in rows {done + 1}..{done + batch.num_rows}")
                x[:, j] = column.to_numpy(zero_copy_only=False)
            done += batch.num_rows
            yield x, done / rows

    gen = chunks()
    try:
        yield gen
    finally:
        gen.close()
        pf.close()


READERS = {".npy": read_npy, ".csv": read_csv, ".parquet": read_parquet}


# --------------------------------------------------------------------------- predict


class Progress:
    """A one-line progress bar with rows per second, for stderr on a terminal.

    It is drawn only once a run has lasted `delay` seconds, so quick runs stay
    silent, and at most every `interval` seconds.
    """

    def __init__(self, stream, enabled, delay=0.5, interval=0.1, clock=time.monotonic):
        self.stream, self.enabled = stream, enabled
        self.delay, self.interval, self.clock = delay, interval, clock
        self.start = self.last_draw = clock()
        self.rows, self.fraction, self.drawn = 0, None, False

    def update(self, rows, fraction=None):
        self.rows += rows
        self.fraction = fraction
        now = self.clock()
        if (self.enabled and now - self.start >= self.delay
                and (not self.drawn or now - self.last_draw >= self.interval)):
            self._draw(now)

    def close(self):
        if self.drawn:
            self._draw(self.clock())
            self.stream.write("\n")
            self.stream.flush()

    def line(self, now):
        elapsed = max(now - self.start, 1e-9)
        text = f"{self.rows:,} rows  {_rate(self.rows / elapsed)} rows/s"
        if self.fraction is None:
            return text
        f = min(max(self.fraction, 0.0), 1.0)
        width = 24
        filled = int(f * width)
        bar = "#" * filled + "." * (width - filled)
        eta = elapsed * (1 - f) / f if f > 0 else float("nan")
        return f"[{bar}] {f:4.0%}  {text}  ETA {_duration(eta)}"

    def _draw(self, now):
        columns = shutil.get_terminal_size((80, 24)).columns
        self.stream.write("\r" + self.line(now)[:columns - 1].ljust(columns - 1))
        self.stream.flush()
        self.drawn, self.last_draw = True, now


def _rate(x):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.2f}{unit}"
    return f"{x:.0f}"


def _duration(seconds):
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def auto_batch_rows(net):
    # About 4 MiB for the widest layer's activations: large enough that the
    # per-call overhead vanishes, small enough to stay in the last-level cache.
    widest = max(max(n_in, n_out) for n_in, n_out in net.shapes)
    return int(min(65536, max(256, (4 << 20) // (widest * net.dtype.itemsize))))


def _data_format(path, role):
    suffix = _suffix(path)
    if suffix not in DATA_SUFFIXES:
        raise CLIError(f"{path}: unknown {role} format {suffix or '(no suffix)'!r}; "
                       "expected .npy, .csv or .parquet")
    return suffix


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def cmd_predict(args):
    fmt_in = _data_format(args.input, "input")
    fmt_out = _data_format(args.output, "output")
    if not os.path.isfile(args.input):
        raise CLIError(f"{args.input}: no such file")
    if _same_file(args.input, args.output):
        raise CLIError(f"{args.output}: refusing to overwrite the input file")
    net = load_model(args.model)
    batch_rows = args.batch_size or auto_batch_rows(net)
    progress = Progress(sys.stderr, enabled=not args.quiet and sys.stderr.isatty())
    with READERS[fmt_in](args.input, batch_rows, net.dtype, args) as chunks, \
            atomic_output(args.output) as tmp:
        writer = open_writer(tmp, fmt_out, net.n_outputs, net.dtype)
        try:
            for x, fraction in chunks:
                if x.shape[1] != net.n_inputs:
                    raise CLIError(f"{args.input} has {x.shape[1]} feature columns but "
                                   f"{args.model} expects {net.n_inputs} inputs")
                writer.write(net.forward(x, threads=args.threads))
                progress.update(len(x), fraction)
        finally:
            writer.close()
            progress.close()  # end the bar's line, so an error message starts a fresh one
    if not args.quiet:
        elapsed = max(time.monotonic() - progress.start, 1e-9)
        print(f"fastmlp: wrote {progress.rows:,} rows x {net.n_outputs} to {args.output} in "
              f"{elapsed:.2f} s ({_rate(progress.rows / elapsed)} rows/s)", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- demo


SHADES = " .:-=+*#%@"  # light to dark; ASCII so any terminal can show it


def _demo_files():
    from importlib import resources

    data = resources.files("fastmlp") / "data"
    return data / "digits_mlp.npz", data / "digits_holdout.npz"


def load_demo():
    """The built-in model and its held-out digits (images uint8 0..16, labels)."""
    from importlib import resources

    model_ref, holdout_ref = _demo_files()
    with resources.as_file(model_ref) as model_path:
        net = fastmlp.load(model_path)
    with holdout_ref.open("rb") as f, np.load(f) as z:
        return net, z["images"], z["labels"]


def numpy_forward(net, x):
    """The plain-numpy forward pass the demo races against (the demo's activations only)."""
    for w, b, name in zip(net.weights, net.biases, net.activations):
        x = x @ w + b
        if name == "relu":
            x = np.maximum(x, 0)
        elif name == "softmax":
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            x = e / e.sum(axis=-1, keepdims=True)
        elif name == "tanh":
            x = np.tanh(x)
        elif name != "identity":
            raise ValueError(f"the demo's numpy reference has no {name!r}")
    return x


def digit_art(images, captions):
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


def _race(fn_numpy, fn_fast, rows, budget=0.5, rounds=5):
    """Best seconds per row of each function; rounds alternate so load hits both alike."""
    fns = (fn_numpy, fn_fast)
    loops = []
    for fn in fns:
        start = time.perf_counter()
        fn()
        once = max(time.perf_counter() - start, 1e-7)
        loops.append(max(1, int(budget / (2 * rounds) / once)))
    best = [float("inf")] * 2
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            for _ in range(loops[i]):
                fn()
            best[i] = min(best[i], (time.perf_counter() - start) / loops[i])
    return best[0] / rows, best[1] / rows, best[0] / best[1]


def cmd_demo(args):
    net, images, labels = load_demo()
    x = images.astype(net.dtype)
    probs = net.forward(x)
    predicted = probs.argmax(axis=1)
    correct = int((predicted == labels).sum())
    widths = " -> ".join(str(n) for n in [net.n_inputs] + [m for _, m in net.shapes])
    print(f"fastmlp demo: a {widths} {net.dtype.name} network "
          f"({', '.join(net.activations)}) trained on scikit-learn's 8x8 digits")
    print(f"accuracy on {len(labels)} held-out digits: {correct / len(labels):.1%} "
          f"({correct}/{len(labels)})")

    show = _pick_examples(predicted, labels, args.show)
    if show:
        captions = [[f"predicted {predicted[i]}",
                     f"{probs[i, predicted[i]]:.0%} sure",
                     "right" if predicted[i] == labels[i] else f"WRONG, is {labels[i]}"]
                    for i in show]
        print()
        print(digit_art(images[show], captions))

    diff = float(np.max(np.abs(numpy_forward(net, x) - probs)))
    rows_loop = x[:100]
    single = _race(lambda: [numpy_forward(net, r) for r in rows_loop],
                   lambda: [net.forward(r) for r in rows_loop], len(rows_loop))
    batch = _race(lambda: numpy_forward(net, x), lambda: net.forward(x), len(x))
    print()
    print(f"speed, same model and inputs (max |fastmlp - numpy| = {diff:.1e}):")
    print(f"  {'':<28}{'numpy':>12}{'fastmlp':>12}{'speed-up':>11}")
    for label, (a, b, ratio) in (("one sample at a time", single),
                                 (f"one batch of {len(x)} rows", batch)):
        print(f"  {label:<28}{_per_row(a):>12}{_per_row(b):>12}{ratio:>10.1f}x")
    return 0


def _pick_examples(predicted, labels, n):
    """The first n digits, swapping in one mistake (if any) so the demo stays honest."""
    n = max(0, min(n, len(labels)))
    picks = list(range(n))
    wrong = np.flatnonzero(predicted != labels)
    if n and len(wrong) and not set(wrong[:1]) & set(picks):
        picks[-1] = int(wrong[0])
    return picks


def _per_row(seconds):
    us = seconds * 1e6
    return f"{us:.2f} us/row" if us < 10 else f"{us:.1f} us/row"


if __name__ == "__main__":
    sys.exit(main())
