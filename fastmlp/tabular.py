"""Rows of numbers in files, and a network streamed over them.

:func:`predict_file` reads a table of rows x features (.npy memory-mapped, .csv, .parquet, or
CSV on standard input as ``"-"``) block by block, runs each block through a network and writes
rows x outputs (.npy, .csv, .parquet, or CSV on standard output as ``"-"``). Memory stays flat
however long the input is, and a file output appears under its name only once it is complete
(:func:`atomic_output`, which :func:`fastmlp.io.save` uses too).

Problems with the data raise ``ValueError`` naming the file (and, for CSV, the line); a missing
optional package (pyarrow for .parquet) raises ``ImportError`` naming the pip command.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import mmap
import os
import sys
import tempfile
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np

if TYPE_CHECKING:
    from .network import Network

PathLike = Union[str, "os.PathLike[str]"]
Progress = Callable[[int, Optional[float]], None]
"""progress(rows_in_block, fraction_done or None): called after every block."""

DATA_SUFFIXES = (".npy", ".csv", ".parquet")
STDIO = "-"  # as a source: CSV on standard input; as a destination: CSV on standard output
_OTHER_DELIMITERS = (",", ";", "\t", "|", " ")

__all__ = ["predict_file", "forward_block", "atomic_output", "open_reader", "open_writer",
           "data_format", "auto_batch_rows", "DATA_SUFFIXES", "STDIO"]


# --------------------------------------------------------------------------- the API


def predict_file(net: "Network", source: PathLike, destination: PathLike, *,
                 batch_size: Optional[int] = None, threads: Optional[int] = None,
                 columns: Optional[Sequence[Union[str, int]]] = None,
                 progress: Optional[Progress] = None, header: Optional[bool] = None,
                 delimiter: str = ",") -> int:
    """Stream the rows of `source` through `net` into `destination`; returns the row count.

    Formats follow the suffixes (.npy, .csv, .parquet); ``"-"`` is CSV on stdin / stdout.
    batch_size: rows per block (default: about 4 MiB of the widest layer's activations).
    threads: threads per block for net.forward (default: the network's).
    columns: the feature columns, by name (CSV with a header, .parquet) or 0-based index.
    progress: called as progress(rows, fraction or None) after each block.
    header, delimiter: CSV input only; header None detects a header line.
    """
    data_format(source, "input")
    fmt_out = data_format(destination, "output")
    source, destination = os.fspath(source), os.fspath(destination)
    if source != STDIO and not os.path.isfile(source):
        raise FileNotFoundError(errno.ENOENT, "no such file", source)
    if same_file(source, destination):
        raise ValueError(f"{destination}: refusing to overwrite the input file")
    if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) < 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    batch_rows = int(batch_size or auto_batch_rows(net))
    rows = 0
    with open_reader(source, batch_rows, net.dtype, columns=columns, header=header,
                     delimiter=delimiter) as table:
        if table.width != net.n_inputs:
            raise ValueError(f"{_label(source)} has {_count(table.width, 'feature column')} "
                             f"but the network expects {_count(net.n_inputs, 'input')}"
                             f"{table.hint}")
        with _destination(destination) as target:
            writer = open_writer(target, fmt_out, net.n_outputs, net.dtype)
            try:
                for x, fraction in table.blocks:
                    writer.write(forward_block(net, x, threads))
                    rows += len(x)
                    if progress is not None:
                        progress(len(x), fraction)
            finally:
                writer.close()
    return rows


def forward_block(net: "Network", block: Any, threads: Optional[int] = None) -> np.ndarray:
    """net.forward on one block of rows, in the network's dtype (an empty block included)."""
    x = np.asarray(block, dtype=net.dtype)
    if len(x) == 0:
        return np.empty((0, net.n_outputs), dtype=net.dtype)
    return net.forward(x, threads=threads)


def auto_batch_rows(net: "Network") -> int:
    """About 4 MiB for the widest layer's activations: large enough that the per-call overhead
    vanishes, small enough to stay in the last-level cache."""
    widest = max(max(n_in, n_out) for n_in, n_out in net.shapes)
    return int(min(65536, max(256, (4 << 20) // (widest * net.dtype.itemsize))))


def data_format(path: PathLike, role: str = "input") -> str:
    """The suffix that chooses the format of a data file (``"-"``: CSV), or a ValueError."""
    path = os.fspath(path)
    if path == STDIO:
        return ".csv"
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in DATA_SUFFIXES:
        raise ValueError(f"{path}: unknown {role} format {suffix or '(no suffix)'!r}; "
                         f"expected {', '.join(DATA_SUFFIXES)} or - (CSV on stdin/stdout)")
    return suffix


def _label(path: str) -> str:
    """How messages name a source: a path, or standard input for "-"."""
    return "standard input" if path == STDIO else path


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def same_file(a: str, b: str) -> bool:
    """Whether a and b name one existing file (False when either is missing)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


# --------------------------------------------------------------------------- output files


def _default_file_mode() -> int:
    # mkstemp makes 0600 files; a finished output should look like any other new file.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_output(path: PathLike) -> Iterator[str]:
    """Yield a temporary path beside `path`; move it into place only on success.

    An error, a crash or Ctrl-C leaves no partial file under the final name and removes the
    temporary one. The temporary name keeps the suffix (writers that choose a format by it
    still do); errors about it name `path`, the file the caller asked for.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, f"directory {directory} does not exist", path)
    base = os.path.basename(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{base}.",
                                   suffix=f".part{os.path.splitext(base)[1]}")
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot write there: {exc.strerror}", path) from None
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _destination(path: str) -> Iterator[Union[str, IO[str]]]:
    if path == STDIO:
        yield sys.stdout
    else:
        with atomic_output(path) as tmp:
            yield tmp


class NpyWriter:
    """Streams rows into a .npy whose row count is known only at the end.

    The header slot is sized for the largest possible row count and rewritten on close; spaces
    pad it, as the .npy format allows, so the data offset stays a multiple of 64.
    """

    def __init__(self, path: PathLike, n_cols: int, dtype: Any) -> None:
        self.file = open(path, "wb")
        self.n_cols, self.dtype, self.rows = n_cols, np.dtype(dtype), 0
        self.header_size = len(self._header(2**63 - 1))
        self.file.write(b"\0" * self.header_size)

    def _header(self, rows: int, size: int = 0) -> bytes:
        d = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
             "shape": (rows, self.n_cols)}
        text = repr(d).encode("latin1")
        prefix = 6 + 2 + 2  # magic, version, header length
        total = max(size, -(-(prefix + len(text) + 1) // 64) * 64)
        header = text + b" " * (total - prefix - len(text) - 1) + b"\n"
        return bytes(np.lib.format.magic(1, 0)) + len(header).to_bytes(2, "little") + header

    def write(self, y: np.ndarray) -> None:
        self.file.write(np.ascontiguousarray(y, dtype=self.dtype).data)
        self.rows += len(y)

    def close(self) -> None:
        self.file.seek(0)
        self.file.write(self._header(self.rows, self.header_size))
        self.file.close()


class CsvWriter:
    """Rows as CSV with a header line y0,y1,...; to a path, or to an open text stream."""

    def __init__(self, target: Union[PathLike, IO[str]], n_cols: int, dtype: Any,
                 names: Sequence[str]) -> None:
        self.owned = not hasattr(target, "write")
        self.file: IO[str] = (open(target, "w", newline="", encoding="ascii")  # type: ignore
                              if self.owned else target)
        # Enough digits that every value reads back exactly.
        digits = 9 if np.dtype(dtype) == np.float32 else 17
        self.row_format = ",".join([f"%.{digits}g"] * n_cols) + "\n"
        self.file.write(",".join(names) + "\n")

    def write(self, y: np.ndarray) -> None:
        # One %-format over the whole block: several times faster than np.savetxt.
        self.file.write((self.row_format * len(y)) % tuple(y.ravel().tolist()))

    def close(self) -> None:
        if self.owned:
            self.file.close()
        else:
            self.file.flush()


class ParquetWriter:
    def __init__(self, path: PathLike, n_cols: int, dtype: Any, names: Sequence[str]) -> None:
        pa, pq = _import_pyarrow("writing .parquet files")
        self.pa, self.names = pa, list(names)
        schema = pa.schema([(name, pa.from_numpy_dtype(np.dtype(dtype))) for name in names])
        self.writer = pq.ParquetWriter(path, schema)

    def write(self, y: np.ndarray) -> None:
        columns = [self.pa.array(y[:, j]) for j in range(y.shape[1])]
        self.writer.write_table(self.pa.Table.from_arrays(columns, names=self.names))

    def close(self) -> None:
        self.writer.close()


Writer = Union[NpyWriter, CsvWriter, ParquetWriter]


def open_writer(target: Union[PathLike, IO[str]], fmt: str, n_cols: int, dtype: Any) -> Writer:
    """A writer of rows x n_cols for fmt (.npy, .csv, .parquet); output columns y0, y1, ..."""
    names = [f"y{j}" for j in range(n_cols)]
    if fmt == ".csv":
        return CsvWriter(target, n_cols, dtype, names)
    if not isinstance(target, (str, os.PathLike)):
        raise ValueError(f"{fmt} output needs a file; only CSV can go to standard output")
    if fmt == ".npy":
        return NpyWriter(target, n_cols, dtype)
    return ParquetWriter(target, n_cols, dtype, names)


def _import_pyarrow(feature: str) -> Any:
    from .interop._chain import require

    return require("pyarrow", "parquet", feature), require("pyarrow.parquet", "parquet", feature)


# --------------------------------------------------------------------------- input files


@dataclass
class Table:
    """An input being read: its width (selected columns) and its blocks (rows, fraction)."""
    width: int
    blocks: Iterator[tuple[np.ndarray, Optional[float]]]
    hint: str = ""  # appended to a width mismatch's message (a CSV read with the wrong delimiter)


@contextlib.contextmanager
def open_reader(source: PathLike, batch_rows: int, dtype: Any, *,
                columns: Optional[Sequence[Union[str, int]]] = None,
                header: Optional[bool] = None, delimiter: str = ",") -> Iterator[Table]:
    """The rows of `source` as a :class:`Table` of blocks of at most batch_rows rows."""
    fmt = data_format(source, "input")
    source = os.fspath(source)
    if fmt == ".npy":
        manager = _read_npy(source, batch_rows, dtype, columns)
    elif fmt == ".csv":
        manager = _read_csv(source, batch_rows, dtype, columns, header, delimiter)
    else:
        manager = _read_parquet(source, batch_rows, dtype, columns)
    with manager as table:
        try:
            yield table
        finally:
            table.blocks.close()  # type: ignore[attr-defined]  # a generator


def _column_indices(spec: Optional[Sequence[Union[str, int]]], names: Optional[Sequence[str]],
                    n_cols: int, path: str) -> Optional[list[int]]:
    """Indices chosen by name or index ("a,b", "0,3", or a sequence); None for all columns."""
    if spec is None:
        return None
    items = spec.split(",") if isinstance(spec, str) else spec
    indices = []
    for item in items:
        text = str(item).strip()
        if names is not None and text in names:
            indices.append(list(names).index(text))
        elif text.lstrip("-").isdigit() and -n_cols <= int(text) < n_cols:
            indices.append(int(text) % n_cols)
        else:
            known = f"; columns are {', '.join(names)}" if names else ""
            raise ValueError(f"{path}: no column {text!r} among its {n_cols}{known}")
    return indices


# .npy ---------------------------------------------------------------------------------------


def _npy_header(path: str) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """(shape, dtype, fortran order, data offset) of an .npy file, or a ValueError saying why."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        magic = f.read(6)
        if size == 0:
            raise ValueError(f"{path}: empty file, not an .npy array")
        if magic.startswith(b"PK"):
            raise ValueError(f"{path}: a zip archive (an .npz?), not an .npy array")
        if magic != b"\x93NUMPY":
            raise ValueError(f"{path}: not an .npy array (no NUMPY magic at the start)")
        f.seek(0)
        try:
            version = np.lib.format.read_magic(f)
            reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                      else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = reader(f)
        except (ValueError, EOFError, SyntaxError) as exc:
            raise ValueError(f"{path}: damaged .npy header ({' '.join(str(exc).split())})") \
                from None
        offset = f.tell()
    if dtype.hasobject or dtype.kind not in "biuf":
        raise ValueError(f"{path}: expected numbers, got dtype {dtype}")
    if len(shape) != 2:
        raise ValueError(f"{path}: expected a 2-D array (rows x features), got shape {shape}")
    need = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size < need:
        raise ValueError(f"{path}: truncated: its header promises {need:,} bytes, "
                         f"the file has {size:,}")
    return shape, dtype, fortran, offset


@contextlib.contextmanager
def _read_npy(path: str, batch_rows: int, dtype: Any,
              columns: Optional[Sequence[Union[str, int]]]) -> Iterator[Table]:
    """Blocks of a memory-mapped .npy.

    Pages already consumed are dropped from the mapping (MADV_DONTNEED), or they would count
    against this process's memory until the kernel reclaims them.
    """
    shape, src_dtype, fortran, offset = _npy_header(path)
    cols = _column_indices(columns, None, shape[1], path)
    rows = shape[0]
    with open(path, "rb") as f, _map_file(f) as mm:
        def blocks() -> Iterator[tuple[np.ndarray, Optional[float]]]:
            x = np.ndarray(shape, src_dtype, buffer=mm, offset=offset,
                           order="F" if fortran else "C")
            row_bytes = shape[1] * src_dtype.itemsize
            dropped = 0
            try:
                for start in range(0, rows, batch_rows):
                    block = x[start:start + batch_rows]
                    chunk = np.array(block if cols is None else block[:, cols], dtype=dtype)
                    if not fortran and hasattr(mmap, "MADV_DONTNEED"):
                        end = (offset + (start + len(chunk)) * row_bytes) // mmap.PAGESIZE
                        end *= mmap.PAGESIZE
                        if end > dropped:
                            mm.madvise(mmap.MADV_DONTNEED, dropped, end - dropped)
                            dropped = end
                    del block
                    yield chunk, (start + len(chunk)) / rows
            finally:
                del x  # the mapping cannot close while an array still points into it

        yield Table(shape[1] if cols is None else len(cols), blocks())


@contextlib.contextmanager
def _map_file(f: IO[bytes]) -> Iterator[mmap.mmap]:
    mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if hasattr(mmap, "MADV_SEQUENTIAL"):
        mm.madvise(mmap.MADV_SEQUENTIAL)
    try:
        yield mm
    finally:
        mm.close()


# .csv ---------------------------------------------------------------------------------------


def _is_number(text: str) -> bool:
    """Whether np.loadtxt reads `text` as a number (Python's float() also takes '1_0')."""
    text = text.strip().strip('"')
    if "_" in text:
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def _split(line: str, delimiter: str) -> list[str]:
    line = line.split("#", 1)[0].rstrip("\r\n")
    return line.split() if delimiter == " " else line.split(delimiter)


def _other_delimiter(line: str, delimiter: str) -> Optional[str]:
    """A common delimiter that splits `line` into two or more numbers, if `delimiter` does not."""
    for other in _OTHER_DELIMITERS:
        fields = _split(line, other)
        if other != delimiter and len(fields) > 1 and all(map(_is_number, fields)):
            return other
    return None


def _delimiter_hint(line: str, delimiter: str, what: str = "the line") -> str:
    other = _other_delimiter(line, delimiter)
    if other is None:
        return ""
    n = len(_split(line, other))
    return (f" ({what} splits into {n} numbers at {other!r}: set the delimiter, "
            f"--delimiter {other!r})")


def _looks_like_header(fields: Sequence[str], line: str, delimiter: str) -> bool:
    """A header is names only: no number, no empty field, not numbers under another delimiter."""
    names = [f.strip().strip('"') for f in fields]
    return (all(names) and not any(map(_is_number, names))
            and _other_delimiter(line, delimiter) is None)


@contextlib.contextmanager
def _open_text(path: str) -> Iterator[IO[str]]:
    if path == STDIO:
        yield sys.stdin
    else:
        with open(path, encoding="utf-8-sig") as f:  # -sig: skip a BOM from spreadsheet apps
            yield f


def _not_utf8(path: str, exc: UnicodeDecodeError) -> ValueError:
    byte = exc.object[exc.start:exc.start + 1].hex()
    return ValueError(f"{path}: not UTF-8 text (byte 0x{byte} cannot be decoded); "
                      "save it as UTF-8")


@contextlib.contextmanager
def _read_csv(path: str, batch_rows: int, dtype: Any,
              columns: Optional[Sequence[Union[str, int]]], header: Optional[bool],
              delimiter: str) -> Iterator[Table]:
    """Blocks of a numeric CSV, parsed batch_rows lines at a time with np.loadtxt."""
    if not delimiter or "\n" in delimiter or '"' in delimiter:
        raise ValueError(f"invalid CSV delimiter {delimiter!r}")
    size = None if path == STDIO else max(os.path.getsize(path), 1)
    label = _label(path)
    with _open_text(path) as f:
        try:
            first = f.readline()
        except UnicodeDecodeError as exc:
            raise _not_utf8(label, exc) from None
        if not first.strip():
            raise ValueError(f"{label}: " + ("empty input" if not first else "the first line is "
                                            "empty") + "; expected a header or rows of numbers")
        fields = _split(first, delimiter)
        if header is None:
            header = _looks_like_header(fields, first, delimiter)
        names = [s.strip().strip('"') for s in fields] if header else None
        cols = _column_indices(columns, names, len(fields), label)

        def blocks() -> Iterator[tuple[np.ndarray, Optional[float]]]:
            pending = [] if header else [first]
            line_no = 2 if header else 1  # the file's line number of the next block's first line
            consumed = len(first) if header else 0
            while True:
                try:
                    lines = pending + list(itertools.islice(f, batch_rows - len(pending)))
                except UnicodeDecodeError as exc:
                    raise _not_utf8(label, exc) from None
                pending = []
                if not lines:
                    return
                consumed += sum(map(len, lines))
                x = _parse_csv(lines, line_no, label, dtype, delimiter, cols, len(fields))
                yield x, (None if size is None else min(consumed / size, 1.0))
                line_no += len(lines)

        hint = _delimiter_hint(first, delimiter, "line 1") if len(fields) == 1 else ""
        yield Table(len(fields) if cols is None else len(cols), blocks(), hint)


def _parse_csv(lines: list[str], line_no: int, path: str, dtype: Any, delimiter: str,
               cols: Optional[list[int]], width: int) -> np.ndarray:
    try:
        return np.loadtxt(lines, dtype=dtype, delimiter=None if delimiter == " " else delimiter,
                          ndmin=2, usecols=cols, quotechar='"')
    except ValueError:
        # The rare path: find the first bad line, so the message names it by its line number.
        for i, line in enumerate(lines):
            _check_csv_line(line, f"{path}, line {line_no + i}", dtype, delimiter, width)
        raise


def _check_csv_line(line: str, where: str, dtype: Any, delimiter: str, width: int) -> None:
    fields = _split(line, delimiter)
    if not line.split("#", 1)[0].strip():
        return  # blank and comment lines are skipped
    hint = _delimiter_hint(line, delimiter) if len(fields) == 1 else ""
    if len(fields) != width:
        raise ValueError(f"{where}: {_count(len(fields), 'value')}, expected {width}{hint}")
    for k, field in enumerate(fields, 1):
        if not field.strip().strip('"'):
            raise ValueError(f"{where}: field {k} is empty; every field needs a number")
        if not _is_number(field):
            raise ValueError(f"{where}: {field.strip()!r} is not a number{hint}")
    try:
        np.loadtxt([line], dtype=dtype, delimiter=None if delimiter == " " else delimiter,
                   quotechar='"')
    except ValueError as exc:
        message = " ".join(str(exc).split()).replace(" at row 0", "")
        raise ValueError(f"{where}: {message}") from None


# .parquet -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _read_parquet(path: str, batch_rows: int, dtype: Any,
                  columns: Optional[Sequence[Union[str, int]]]) -> Iterator[Table]:
    """Blocks of a .parquet file, read batch by batch (memory ~ one row group)."""
    pa, pq = _import_pyarrow("reading .parquet files")
    try:
        # pre_buffer (on by default) reads ahead the column chunks of the whole file, so
        # memory would grow with the file's size.
        pf = pq.ParquetFile(path, pre_buffer=False)
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"{path}: not a readable .parquet file ({exc})") from None
    try:
        schema = pf.schema_arrow
        cols = _column_indices(columns, schema.names, len(schema.names), path)
        names = schema.names if cols is None else [schema.names[i] for i in cols]
        for name in names:
            t = schema.field(name).type
            if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
                raise ValueError(f"{path}: column {name!r} holds {t}, not numbers "
                                 "(choose the feature columns)")
        rows = max(pf.metadata.num_rows, 1)

        def blocks() -> Iterator[tuple[np.ndarray, Optional[float]]]:
            done = 0
            for batch in pf.iter_batches(batch_size=batch_rows, columns=names, use_threads=True):
                x = np.empty((batch.num_rows, len(names)), dtype=dtype)
                for j, column in enumerate(batch.columns):
                    if column.null_count:
                        raise ValueError(f"{path}: column {names[j]!r} has missing values "
                                         f"in rows {done + 1}..{done + batch.num_rows}")
                    x[:, j] = column.to_numpy(zero_copy_only=False)
                done += batch.num_rows
                yield x, done / rows

        yield Table(len(names), blocks())
    finally:
        pf.close()
