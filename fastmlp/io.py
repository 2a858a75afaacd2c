"""Save and load networks in fastmlp's own file formats, chosen by the file's suffix.

``.npz``
    A plain, uncompressed numpy archive: arrays ``w0, b0, w1, b1, ...`` (weights (N, M) and
    biases (M,) per layer, in the network's dtype) and ``metadata``, the UTF-8 JSON below as a
    uint8 array. Readable with ``numpy.load(path, allow_pickle=False)`` alone; fastmlp never
    unpickles anything.
``.safetensors``
    The same arrays as safetensors tensors, with the metadata as strings in the header's
    ``__metadata__``: ``format``, ``version``, ``dtype``, and ``layers`` (JSON text). Writing
    needs the ``safetensors`` package (``pip install "fastmlp[safetensors]"``); reading needs
    only numpy (the format is a JSON header followed by raw little-endian data).

Metadata: ``{"format": "fastmlp", "version": 1, "dtype": "float32" | "float64",
"layers": [{"activation": name, "params": {name: value}}, ...]}``, with every activation
parameter spelled out; an infinite value (softplus' default threshold) is the string "inf".

``load(path, mmap=True)`` maps the arrays from the file instead of reading them into memory
(numpy cannot memory-map members of an ``.npz``, so fastmlp locates the uncompressed members
itself; compressed members are read normally). The Network still makes its own copies of
the weights, so mapping saves only the temporary in-memory copy of the file's arrays (their
pages stay in the OS cache, which can drop them). The zip CRC of ``.npz`` members is checked
either way; safetensors files carry no checksum.

Any problem with a file's content raises ``ValueError`` saying what is wrong.
"""

import json
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

FORMAT = "fastmlp"
VERSION = 1
SUFFIXES = (".npz", ".safetensors")
_DTYPES = ("float32", "float64")


def save(net, path):
    """Writes ``net`` to ``path`` (.npz or .safetensors), replacing the file atomically."""
    import fastmlp

    if not isinstance(net, fastmlp.Network):
        raise TypeError(f"save expects a fastmlp.Network, got {type(net).__name__}")
    if not net.is_dense_chain:
        raise ValueError("this file format version holds chains of Dense layers only; "
                         "pickle the network to keep Affine, LayerNorm, Activation and "
                         "Residual layers")
    path = Path(path)
    writer = {".npz": _write_npz, ".safetensors": _write_safetensors}[_suffix(path)]
    arrays = {}
    for i, (w, b) in enumerate(zip(net.weights, net.biases)):
        arrays[f"w{i}"] = np.ascontiguousarray(w)
        arrays[f"b{i}"] = np.ascontiguousarray(b)
    metadata = {
        "format": FORMAT,
        "version": VERSION,
        "dtype": np.dtype(net.dtype).name,
        "layers": [
            {"activation": name, "params": {k: _encode_number(v) for k, v in params.items()}}
            for name, params in zip(net.activations, net.activation_params)
        ],
    }
    # Write beside the target and rename, so a crash never leaves a half-written model.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            writer(f, arrays, metadata)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load(path, mmap=False):
    """Reads a network written by :func:`save`; ``mmap=True`` maps the arrays (see module doc)."""
    path = Path(path)
    reader = {".npz": _read_npz, ".safetensors": _read_safetensors}[_suffix(path)]
    with open(path, "rb") as f:  # a missing file stays FileNotFoundError
        metadata, arrays = reader(f, path, mmap)
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


def _encode_number(value):
    # Strict JSON has no Infinity / NaN: spell them as strings.
    return value if math.isfinite(value) else str(value)


# -- .npz ---------------------------------------------------------------------------------

def _write_npz(f, arrays, metadata):
    text = json.dumps(metadata, allow_nan=False).encode()
    np.savez(f, metadata=np.frombuffer(text, dtype=np.uint8), **arrays)


def _read_npz(f, path, mmap):
    try:
        npz = np.load(f, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise _Invalid("it is a single .npy array, not an .npz archive")
        with npz:
            if "metadata" not in npz.files:
                raise _Invalid("the 'metadata' array is missing")
            text = npz["metadata"]
            if text.dtype != np.uint8 or text.ndim != 1:
                raise _Invalid("'metadata' must be a 1-D uint8 array of UTF-8 JSON")
            metadata = _parse_json(text.tobytes(), "metadata")
            arrays = {}
            for name in npz.files:
                if name != "metadata":
                    mapped = _map_npz_member(npz.zip, path, name) if mmap else None
                    arrays[name] = npz[name] if mapped is None else mapped
    except _Invalid as exc:
        raise ValueError(f"{path}: not a valid fastmlp .npz file: {exc}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
            NotImplementedError) as exc:
        # numpy and zipfile report damage with all of these.
        raise ValueError(f"{path}: damaged or not an .npz file ({exc})") from exc
    return metadata, arrays


def _map_npz_member(zf, path, name):
    """The array of an uncompressed member as a read-only memmap (None if compressed)."""
    info = zf.getinfo(f"{name}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)  # the local file header; its name and extra fields follow
        name_size, extra_size = struct.unpack("<HH", local[26:30]) if len(local) == 30 else (0, 0)
        if local[:4] != b"PK\x03\x04" or f.read(name_size) != info.filename.encode():
            raise zipfile.BadZipFile(f"bad local header for {name!r}")
        start = info.header_offset + 30 + name_size + extra_size
        member = np.memmap(path, np.uint8, mode="r", offset=start, shape=info.file_size)
        if zlib.crc32(member) != info.CRC:
            raise zipfile.BadZipFile(f"bad CRC-32 for {name!r}")
        f.seek(start)
        version = np.lib.format.read_magic(f)
        if version != (1, 0):
            return None  # numpy writes 1.0 headers for our arrays; read anything else plainly
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        offset = f.tell()
    if dtype.hasobject or offset - start + dtype.itemsize * math.prod(shape) != info.file_size:
        raise _Invalid(f"array {name!r} has an inconsistent size")
    if math.prod(shape) == 0:
        return np.empty(shape, dtype)
    order = "F" if fortran else "C"
    return np.memmap(path, dtype, mode="r", offset=offset, shape=shape, order=order)


# -- .safetensors -------------------------------------------------------------------------

_ST_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}


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
    header = _parse_json(f.read(header_size), "header")
    raw = header.pop("__metadata__", None)
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise _Invalid("the header has no __metadata__ of strings")
    metadata = dict(raw)
    if metadata.get("version", "").isdigit():
        metadata["version"] = int(metadata["version"])
    if "layers" in metadata:
        metadata["layers"] = _parse_json(metadata["layers"].encode(), "metadata 'layers'")
    data_start, data_size = 8 + header_size, size - 8 - header_size
    arrays = {}
    for name, info in header.items():
        try:
            dtype = _ST_DTYPES.get(info["dtype"])
            shape = tuple(int(d) for d in info["shape"])
            begin, end = (int(o) for o in info["data_offsets"])
        except (TypeError, KeyError, ValueError):
            raise _Invalid(f"the header entry of tensor {name!r} is malformed") from None
        if dtype is None:
            raise _Invalid(f"tensor {name!r} has dtype {info['dtype']}, expected F32 or F64")
        count = math.prod(shape)
        if min(shape, default=0) < 0 or not 0 <= begin <= end <= data_size \
                or end - begin != count * dtype.itemsize:
            raise _Invalid(f"tensor {name!r} does not fit its byte range (truncated file?)")
        if count == 0:
            arrays[name] = np.empty(shape, dtype)
        elif mmap:
            arrays[name] = np.memmap(path, dtype, mode="r", offset=data_start + begin, shape=shape)
        else:
            f.seek(data_start + begin)
            arrays[name] = np.fromfile(f, dtype, count).reshape(shape)
    return metadata, arrays


# -- both formats -------------------------------------------------------------------------

def _parse_json(data, what):
    try:
        value = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Invalid(f"the {what} is not valid JSON ({exc})") from None
    if what in ("metadata", "header") and not isinstance(value, dict):
        raise _Invalid(f"the {what} is not a JSON object")
    return value


def _network(metadata, arrays, path):
    try:
        weights, biases, activations, dtype = _check(metadata, arrays)
    except _Invalid as exc:
        raise ValueError(f"{path}: not a valid fastmlp model: {exc}") from None
    import fastmlp

    try:
        return fastmlp.Network(weights, biases, activations, dtype=dtype)
    except (ValueError, TypeError) as exc:  # e.g. an activation parameter out of range
        raise ValueError(f"{path}: not a valid fastmlp model: {exc}") from exc


def _check(metadata, arrays):
    """Weights, biases, activations and dtype from a file's content, or _Invalid.

    Only what is particular to the file format is checked here; the Network checks the rest
    (shapes that chain, activation names and parameters) with messages naming the layer."""
    if metadata.get("format") != FORMAT:
        raise _Invalid(f"format is {metadata.get('format')!r}, expected {FORMAT!r}")
    version = metadata.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _Invalid(f"bad format version {version!r}")
    if version > VERSION:
        raise _Invalid(f"format version {version} was written by a newer fastmlp; "
                       f"this one reads version {VERSION}")
    dtype = metadata.get("dtype")
    if dtype not in _DTYPES:
        raise _Invalid(f"dtype is {dtype!r}, expected one of {', '.join(_DTYPES)}")
    layers = metadata.get("layers")
    if not isinstance(layers, list) or not layers:
        raise _Invalid("'layers' is missing or empty")
    expected = {f"{kind}{i}" for i in range(len(layers)) for kind in "wb"}
    if set(arrays) != expected:
        missing, extra = sorted(expected - set(arrays)), sorted(set(arrays) - expected)
        raise _Invalid(f"{len(layers)} layers need arrays w0, b0, ...: "
                       + (f"missing {', '.join(missing)}" if missing else "")
                       + ("; " if missing and extra else "")
                       + (f"unexpected {', '.join(extra)}" if extra else ""))
    for name in sorted(arrays):  # the Network would cast silently: hold the file to its word
        ndim = 2 if name[0] == "w" else 1
        if arrays[name].dtype != np.dtype(dtype) or arrays[name].ndim != ndim:
            raise _Invalid(f"array {name} is {arrays[name].ndim}-D {arrays[name].dtype}, "
                           f"expected {ndim}-D {dtype}")
    weights = [arrays[f"w{i}"] for i in range(len(layers))]
    biases = [arrays[f"b{i}"] for i in range(len(layers))]
    return weights, biases, [_activation(layer, i) for i, layer in enumerate(layers)], dtype


def _activation(layer, i):
    """(name, params) of a layer's metadata; "inf"-style strings become floats."""
    if not (isinstance(layer, dict) and isinstance(layer.get("activation"), str)
            and isinstance(layer.get("params", {}), dict)):
        raise _Invalid(f"layer {i}: expected {{'activation': name, 'params': {{...}}}}")
    params = {}
    for key, value in layer.get("params", {}).items():
        try:
            params[key] = float(value) if isinstance(value, str) else value
        except ValueError:
            raise _Invalid(f"layer {i}: parameter {key!r} is not a number") from None
    return layer["activation"], params


__all__ = ["save", "load", "SUFFIXES"]
