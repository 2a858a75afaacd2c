"""Save and load networks in fastmlp's own file formats, chosen by the file's suffix.

``.npz``
    A plain, uncompressed numpy archive: the network's arrays (for a chain of dense layers
    ``w0, b0, w1, b1, ...``: weights (N, M) and biases (M,) per layer, in the network's
    dtype) and ``metadata``, the UTF-8 JSON below as a uint8 array. Readable with
    ``numpy.load(path, allow_pickle=False)`` alone; fastmlp never unpickles anything.
``.safetensors``
    The same arrays as safetensors tensors, with the metadata as strings in the header's
    ``__metadata__``: ``format``, ``version``, ``dtype``, and ``layers`` (JSON text). Writing
    needs the ``safetensors`` package (``pip install "fastmlp[safetensors]"``); reading needs
    only numpy (the format is a JSON header followed by raw little-endian data).

Metadata: ``{"format": "fastmlp", "version": 1 | 2, "dtype": "float32" | "float64",
"layers": [...]}``: version 1 for chains of dense layers (``{"activation": name, "params":
{...}}`` per layer, arrays ``w0, b0, ...``), version 2 for any list of layers, each with its
kind and named arrays; ``fastmlp/_schema.py`` documents both. Every activation parameter is
spelled out; an infinite value (softplus' default threshold) is the string "inf".

``load(path, mmap=True)`` maps the arrays from the file instead of reading them into memory
(numpy cannot memory-map members of an ``.npz``, so fastmlp locates the uncompressed members
itself; compressed members are read normally). The Network still makes its own copies of
the weights, so mapping saves only the temporary in-memory copy of the file's arrays (their
pages stay in the OS cache, which can drop them). The zip CRC of ``.npz`` members is checked
either way; safetensors files carry no checksum.

Files are read defensively: the container (zip directory, .npy headers, safetensors header)
is parsed by fastmlp itself, and every array's name, dtype and shape is checked against the
metadata before any data is read or inflated. Each array must fit in the bytes the file
holds for it: deflate members (``numpy.savez_compressed``) may claim at most deflate's
largest possible expansion (1032:1) of their compressed size, and are inflated into a buffer
of exactly the declared size; other compression methods (bzip2, LZMA) and encrypted members
are refused. So loading never uses much more memory than the network it returns.

Any problem with a file's content raises ``ValueError`` naming the file and saying what is
wrong.
"""

import ast
import contextlib
import json
import math
import os
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np

from . import _schema

if TYPE_CHECKING:
    from .network import Network

FORMAT = _schema.FORMAT
VERSION = _schema.VERSION
SUFFIXES = (".npz", ".safetensors")


def save(net: "Network", path: "Union[str, os.PathLike[str]]") -> None:
    """Writes ``net`` to ``path`` (.npz or .safetensors), replacing the file atomically."""
    import fastmlp

    if not isinstance(net, fastmlp.Network):
        raise TypeError(f"save expects a fastmlp.Network, got {type(net).__name__}")
    path = Path(path)
    writer = {".npz": _write_npz, ".safetensors": _write_safetensors}[_suffix(path)]
    metadata, arrays = _schema.describe(net)
    # Written beside the target and renamed, so a crash never leaves a half-written model.
    from .tabular import atomic_output

    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        writer(f, arrays, metadata)


def load(path: "Union[str, os.PathLike[str]]", mmap: bool = False) -> "Network":
    """Reads a network written by :func:`save`; ``mmap=True`` maps the arrays (see module doc)."""
    path = Path(path)
    reader = {".npz": _read_npz, ".safetensors": _read_safetensors}[_suffix(path)]
    with open(path, "rb") as f:  # a missing file stays FileNotFoundError
        metadata, declared = reader(f, path, mmap)
        _check_declared(metadata, declared, path)
        arrays = {name: array.read() for name, array in declared.items()}
    return _network(metadata, arrays, path)


def _suffix(path):
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"{path}: unknown file type {suffix or '(no suffix)'!r}; supported: "
            + ", ".join(SUFFIXES)
        )
    return suffix


class _Invalid(ValueError):
    """A file that is not a valid fastmlp model; the message says why."""


# -- .npz ---------------------------------------------------------------------------------

_DEFLATE_RATIO = 1032  # deflate never expands data more than this: a larger claim is a lie
_MAX_NPY_HEADER = 10000  # numpy's own limit (numpy.lib.format's max_header_size)
_MAX_METADATA = 16 << 20  # bytes of JSON: thousands of layers fit easily
_CHUNK = 16 << 20  # members are inflated piecewise into their final buffer
_NPY_DESCR = re.compile(r"[<>|=]?[biuf][1248]")  # plain numbers; anything else is refused


def _write_npz(f, arrays, metadata):
    text = json.dumps(metadata, allow_nan=False).encode()
    np.savez(f, metadata=np.frombuffer(text, dtype=np.uint8), **arrays)


@contextlib.contextmanager
def _npz_errors(path):
    """Turns every problem with an .npz file's content into a ValueError naming the file."""
    try:
        yield
    except _Invalid as exc:
        raise ValueError(f"{path}: not a valid fastmlp .npz file: {exc}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, OverflowError,
            NotImplementedError) as exc:
        # zipfile reports damage with all of these.
        raise ValueError(f"{path}: damaged or not an .npz file ({exc})") from exc


def _read_npz(f, path, mmap):
    """The metadata and the declared arrays of an .npz file (data not read yet)."""
    with _npz_errors(path):
        if f.read(6) == b"\x93NUMPY":
            raise _Invalid("it is a single .npy array, not an .npz archive")
        f.seek(0)
        zf = zipfile.ZipFile(f)
        members = _npz_members(zf, os.fstat(f.fileno()).st_size)
        if "metadata" not in members:
            raise _Invalid("the 'metadata' array is missing")
        text = _npz_array(zf, members.pop("metadata"), path, False)
        if text.dtype != np.uint8 or text.ndim != 1 or text.shape[0] > _MAX_METADATA:
            raise _Invalid("'metadata' must be a 1-D uint8 array of UTF-8 JSON "
                           f"(at most {_MAX_METADATA} bytes)")
        metadata = _parse_json(text.read().tobytes(), "metadata")
        declared = {name: _npz_array(zf, info, path, mmap) for name, info in members.items()}
    return metadata, declared


def _npz_members(zf, file_size):
    """{array name: ZipInfo}, refusing members fastmlp cannot read safely."""
    members = {}
    for info in zf.infolist():
        name = info.filename[:-4] if info.filename.endswith(".npy") else None
        if name is None or name in members:
            raise _Invalid(f"member {info.filename!r} is not a (unique) .npy array")
        if info.flag_bits & 0x1:
            raise _Invalid(f"member {info.filename!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _Invalid(f"member {info.filename!r} uses compression method "
                           f"{info.compress_type}; fastmlp reads stored or deflate members")
        stored = info.compress_type == zipfile.ZIP_STORED
        most = info.compress_size if stored else _DEFLATE_RATIO * info.compress_size + 64
        if info.file_size > most or info.header_offset + info.compress_size > file_size:
            raise _Invalid(f"member {info.filename!r} claims {info.file_size} bytes from "
                           f"{info.compress_size} stored, more than the file can hold")
        members[name] = info
    return members


def _npz_array(zf, info, path, mmap):
    """The array of one member, declared by its .npy header; its data is read on demand."""
    name = info.filename[:-4]
    with zf.open(info) as member:
        dtype, shape, fortran, header_size = _npy_header(member, name)
    count = math.prod(shape)
    if header_size + count * dtype.itemsize != info.file_size:
        raise _Invalid(f"array {name!r} declares shape {shape} of {dtype} "
                       f"({count * dtype.itemsize} bytes) but its member holds "
                       f"{info.file_size - header_size} bytes of data")
    order = "F" if fortran else "C"

    def read():
        with _npz_errors(path):
            if count == 0:
                return np.empty(shape, dtype, order=order)
            if mmap and info.compress_type == zipfile.ZIP_STORED:
                return _map_npz_member(zf, info, path, header_size, dtype, shape, order)
            return _inflate_npz_member(zf, info, header_size, dtype, count).reshape(
                shape, order=order)

    return _Declared(dtype, shape, read)


def _npy_header(stream, name):
    """(dtype, shape, fortran_order, header size) of the .npy data starting at ``stream``."""
    prefix = stream.read(10)
    if len(prefix) < 10 or prefix[:6] != b"\x93NUMPY":
        raise _Invalid(f"member {name!r} is not .npy data")
    major = prefix[6]
    if major == 1:
        size, start = struct.unpack("<H", prefix[8:10])[0], 10
    elif major in (2, 3):
        extra = stream.read(2)
        if len(extra) < 2:
            raise _Invalid(f"the .npy header of array {name!r} is truncated")
        size, start = struct.unpack("<I", prefix[8:10] + extra)[0], 12
    else:
        raise _Invalid(f"array {name!r} has an unknown .npy version {major}.{prefix[7]}")
    if size > _MAX_NPY_HEADER:
        raise _Invalid(f"the .npy header of array {name!r} claims {size} bytes "
                       f"(more than {_MAX_NPY_HEADER})")
    text = stream.read(size)
    if len(text) < size:
        raise _Invalid(f"the .npy header of array {name!r} is truncated")
    try:
        header = ast.literal_eval(text.decode("utf-8" if major == 3 else "latin-1"))
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError,
            UnicodeDecodeError):
        header = None
    if not (isinstance(header, dict) and set(header) == {"descr", "fortran_order", "shape"}
            and isinstance(header["descr"], str) and type(header["fortran_order"]) is bool
            and isinstance(header["shape"], tuple)
            and all(type(d) is int and d >= 0 for d in header["shape"])):
        raise _Invalid(f"array {name!r} has an unreadable .npy header")
    if not _NPY_DESCR.fullmatch(header["descr"]):
        raise _Invalid(f"array {name!r} holds {header['descr']!r} data; fastmlp reads plain "
                       "numbers only (weights as floats, 'metadata' as a 1-D uint8 array) "
                       "and never unpickles")
    return np.dtype(header["descr"]), header["shape"], header["fortran_order"], start + size


def _inflate_npz_member(zf, info, header_size, dtype, count):
    """The member's data, read (inflated) piecewise into one buffer of the declared size."""
    out = np.empty(count, dtype)
    view = memoryview(out).cast("B")
    with zf.open(info) as member:
        member.read(header_size)
        for begin in range(0, len(view), _CHUNK):
            size = min(_CHUNK, len(view) - begin)
            piece = member.read(size)
            if len(piece) != size:  # a stream that ends early, even with a matching CRC
                raise EOFError(f"member {info.filename!r} ends before its declared size")
            view[begin:begin + size] = piece
        # Reading the declared size in full makes zipfile check the CRC-32.
    return out


def _map_npz_member(zf, info, path, header_size, dtype, shape, order):
    """The data of a stored member as a read-only memmap, after checking its CRC-32."""
    fp = zf.fp
    fp.seek(info.header_offset)
    local = fp.read(30)  # the local file header; its name and extra fields follow
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header for {info.filename!r}")
    name_size, extra_size = struct.unpack("<HH", local[26:30])
    start = info.header_offset + 30 + name_size + extra_size
    member = np.memmap(path, np.uint8, mode="r", offset=start, shape=info.file_size)
    if zlib.crc32(member) != info.CRC:
        raise zipfile.BadZipFile(f"bad CRC-32 for {info.filename!r}")
    return np.memmap(path, dtype, mode="r", offset=start + header_size, shape=shape,
                     order=order)


# -- .safetensors -------------------------------------------------------------------------

_ST_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"),
              # reduced-precision weights: int8 values, bfloat16 bit patterns
              "I8": np.dtype("i1"), "U16": np.dtype("<u2")}
_ST_MAX_HEADER = 100_000_000  # the safetensors format's own limit


def _write_safetensors(f, arrays, metadata):
    from fastmlp.interop._chain import require

    st = require("safetensors.numpy", "safetensors", "saving .safetensors files")
    header = {key: value if isinstance(value, str) else json.dumps(value, allow_nan=False)
              for key, value in metadata.items()}
    f.write(st.save(arrays, metadata=header))


def _read_safetensors(f, path, mmap):
    try:
        return _parse_safetensors(f, path, mmap)
    except _Invalid as exc:
        raise ValueError(f"{path}: not a valid fastmlp .safetensors file: {exc}") from None


def _parse_safetensors(f, path, mmap):
    size = os.fstat(f.fileno()).st_size
    prefix = f.read(8)
    if len(prefix) < 8:
        raise _Invalid(f"only {size} bytes long")
    header_size = int.from_bytes(prefix, "little")
    if header_size > size - 8:
        raise _Invalid(f"the header claims {header_size} bytes but the file has {size - 8} left")
    if header_size > _ST_MAX_HEADER:
        raise _Invalid(f"the header claims {header_size} bytes, more than {_ST_MAX_HEADER}")
    header = _parse_json(f.read(header_size), "header")
    raw = header.pop("__metadata__", None)
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise _Invalid("the header has no __metadata__ of strings")
    metadata = dict(raw)
    for key in ("version", "inputs"):  # numbers, as strings in safetensors' metadata
        if re.fullmatch(r"[0-9]{1,9}", metadata.get(key, "")):
            metadata[key] = int(metadata[key])
    if "layers" in metadata:
        metadata["layers"] = _parse_json(metadata["layers"], "metadata 'layers'")
    data_start, data_size = 8 + header_size, size - 8 - header_size
    return metadata, {name: _safetensors_array(f, path, mmap, name, info, data_start, data_size)
                      for name, info in header.items()}


def _safetensors_array(f, path, mmap, name, info, data_start, data_size):
    """One tensor of the header, checked against the data's size; read on demand."""
    def is_index(d):
        return type(d) is int and d >= 0

    entry = info if isinstance(info, dict) else {}
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not (isinstance(entry.get("dtype"), str) and isinstance(shape, list)
            and all(map(is_index, shape)) and isinstance(offsets, list) and len(offsets) == 2
            and all(map(is_index, offsets))):
        raise _Invalid(f"the header entry of tensor {name!r} is malformed")
    dtype, shape, (begin, end) = _ST_DTYPES.get(entry["dtype"]), tuple(shape), offsets
    if dtype is None:
        raise _Invalid(f"tensor {name!r} has dtype {entry['dtype']}, expected one of "
                       f"{', '.join(_ST_DTYPES)}")
    count = math.prod(shape)
    if not begin <= end <= data_size or end - begin != count * dtype.itemsize:
        raise _Invalid(f"tensor {name!r} does not fit its byte range (truncated file?)")

    def read():
        if count == 0:
            return np.empty(shape, dtype)
        if mmap:
            return np.memmap(path, dtype, mode="r", offset=data_start + begin, shape=shape)
        f.seek(data_start + begin)
        return np.fromfile(f, dtype, count).reshape(shape)

    return _Declared(dtype, shape, read)


# -- both formats -------------------------------------------------------------------------

class _Declared:
    """An array as a file's header declares it (dtype, shape); ``read()`` reads its data."""

    def __init__(self, dtype, shape, read):
        self.dtype, self.shape, self.ndim, self.read = dtype, shape, len(shape), read


def _parse_json(data, what):
    try:
        # Text as it is (a JSON string may hold a lone surrogate, which UTF-8 cannot encode).
        value = json.loads(data if isinstance(data, str) else bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Invalid(f"the {what} is not valid JSON ({exc})") from None
    except RecursionError:
        raise _Invalid(f"the {what} is JSON nested too deeply") from None
    if what in ("metadata", "header") and not isinstance(value, dict):
        raise _Invalid(f"the {what} is not a JSON object")
    return value


def _check_declared(metadata, declared, path):
    """Fails, before any data is read, if the arrays a file declares contradict its metadata."""
    try:
        _schema.check_arrays(metadata, declared)
    except _schema.Invalid as exc:
        raise ValueError(f"{path}: not a valid fastmlp model: {exc}") from None


def _network(metadata, arrays, path):
    try:
        layers, dtype = _schema.layers_of(metadata, arrays)
    except _schema.Invalid as exc:
        raise ValueError(f"{path}: not a valid fastmlp model: {exc}") from None
    import fastmlp

    try:
        return fastmlp.Network(layers, dtype=dtype, precision=_schema.precision_of(metadata),
                               n_inputs=_schema.inputs_of(metadata))
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. a parameter out of range
        raise ValueError(f"{path}: not a valid fastmlp model: {exc}") from exc


__all__ = ["save", "load", "SUFFIXES"]
