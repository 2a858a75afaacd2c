"""Hypothesis strategies for hostile inputs: model files (valid ones mutated structurally,
truncated, or with handcrafted headers) and Network / forward arguments. Shared by the
fuzz tests and the atheris entry points."""
import functools
import io
import json
import os
import struct
import tempfile
import zipfile

import numpy as np
from hypothesis import strategies as st

import fastmlp

ACTIVATIONS = ["identity", "relu", "tanh", "sigmoid", "softmax", "leaky_relu", "elu", "gelu",
               "gelu_tanh", "silu", "softplus"]
PARAMETERS = ["alpha", "negative_slope", "beta", "threshold", "slope"]


@functools.lru_cache(maxsize=None)
def seed_network(dtype=np.float64):
    rng = np.random.default_rng(5)
    weights = [rng.normal(size=(4, 5)), rng.normal(size=(5, 3))]
    biases = [rng.normal(size=5), rng.normal(size=3)]
    return fastmlp.Network(weights, biases, ["tanh", ("softplus", {"beta": 2.0})], dtype=dtype)


@functools.lru_cache(maxsize=None)
def seed_file(suffix):
    """The bytes of seed_network() saved as ``suffix`` (.onnx: seed_onnx())."""
    if suffix == ".onnx":
        return seed_onnx().SerializeToString()
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "seed" + suffix)
        seed_network().save(path)
        with open(path, "rb") as f:
            return f.read()


def _json_values():
    scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
               | st.text(max_size=8) | st.sampled_from(["inf", "nan", "fastmlp", "float32",
                                                         "float64", "relu", "1", "²"]))
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


JSON_VALUES = _json_values()


@st.composite
def metadata(draw, n_layers=2):
    """fastmlp metadata, with some fields replaced by arbitrary JSON values."""
    layers = [{"activation": draw(st.sampled_from(ACTIVATIONS)), "params": {}}
              for _ in range(n_layers)]
    meta = {"format": "fastmlp", "version": 1, "dtype": "float64", "layers": layers}
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(["format", "version", "dtype", "layers", "extra",
                                      "layer", "params"]))
        value = draw(JSON_VALUES)
        if where == "layer":
            layers[draw(st.integers(0, n_layers - 1))] = value
        elif where == "params":
            layer = layers[draw(st.integers(0, n_layers - 1))]
            if isinstance(layer, dict):  # an earlier draw may have replaced it by any value
                layer["params"] = {draw(st.sampled_from(PARAMETERS)): value}
        else:
            meta[where] = value
    return meta


def npy_header(descr, shape, fortran=False, version=1):
    text = repr({"descr": descr, "fortran_order": fortran, "shape": shape}).encode()
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    size = struct.pack("<H" if version == 1 else "<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + size + text


def npy(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


SHAPES = st.lists(st.integers(0, 8) | st.sampled_from([2**31, 2**40, 10**30]), max_size=3)
DESCRS = st.sampled_from(["<f8", "<f4", ">f8", "|u1", "<i8", "|b1", "<f2", "|O", "<U3", "V8"])


@st.composite
def npy_member(draw, array):
    """The .npy bytes of ``array``, or a handcrafted or damaged variant."""
    how = draw(st.sampled_from(["same", "same", "header", "truncated", "garbage", "version"]))
    data = npy(array)
    if how == "header":  # a handcrafted header, with or without data after it
        shape = tuple(draw(SHAPES))
        header = npy_header(draw(DESCRS), shape, draw(st.booleans()),
                            draw(st.sampled_from([1, 2, 3])))
        return header + array.tobytes()[: draw(st.integers(0, 200))]
    if how == "truncated":
        return data[: draw(st.integers(0, len(data)))]
    if how == "garbage":
        return draw(st.binary(max_size=64))
    if how == "version":
        return data[:6] + bytes([draw(st.integers(0, 255)), draw(st.integers(0, 255))]) + data[8:]
    return data




def mostly(valid, hostile, odds=3):
    """``valid`` ``odds`` times out of ``odds + 1``, else ``hostile``: inputs with one or two
    things wrong reach deeper than inputs with everything wrong."""
    return st.integers(0, odds).flatmap(lambda k: hostile if k == 0 else valid)


METHODS = [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
NPZ_CHANGES = ["member", "member", "metadata", "drop", "rename", "add", "method", "size",
               "flags", "crc", "deep"]


@st.composite
def npz_files(draw):
    """An .npz built member by member from a valid model's arrays, with up to three
    structured changes: members dropped, renamed, added or replaced by handcrafted .npy data,
    compressed with any method, central-directory fields that lie, deep or odd metadata."""
    net = seed_network()
    arrays = {f"w{i}": w for i, w in enumerate(net.weights)}
    arrays.update({f"b{i}": b for i, b in enumerate(net.biases)})
    members = {f"{name}.npy": npy(array) for name, array in arrays.items()}
    meta, text = metadata_of(net), None
    methods = {name: draw(st.sampled_from(METHODS[:2])) for name in ["metadata.npy", *members]}
    lies = {}
    for change in draw(st.lists(st.sampled_from(NPZ_CHANGES), max_size=3)):
        name = draw(st.sampled_from(sorted(members)))
        if change == "member":
            members[name] = draw(npy_member(arrays.get(name[:-4], np.zeros(2))))
        elif change == "metadata":
            meta = draw(metadata())
        elif change == "deep":
            text = draw(st.sampled_from([b"[" * 50_000, b'{"a":' * 50_000, b"\xff", b""]))
        elif change == "drop":
            members.pop(name)
        elif change == "rename":
            new = draw(st.sampled_from(["w2.npy", "b9.npy", "x", "w0", "metadata.npy"]))
            members[new] = members.pop(name)
        elif change == "add":
            members["w2.npy"] = draw(npy_member(np.zeros((3, 2))))
        elif change == "method":
            methods[name] = draw(st.sampled_from(METHODS))
        else:
            lies[name] = change
    text = json.dumps(meta).encode() if text is None else text
    members["metadata.npy"] = npy(np.frombuffer(text, np.uint8))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data,
                        compress_type=methods.get(name, zipfile.ZIP_STORED))
        for info in zf.infolist():  # the central directory is written from these at close
            if lies.get(info.filename) == "size":
                info.file_size = draw(st.sampled_from([0, 1, 10**6, 2**40]))
            elif lies.get(info.filename) == "flags":
                info.flag_bits |= draw(st.sampled_from([0x1, 0x8, 0x20, 0x40, 0x800]))
            elif lies.get(info.filename) == "crc":
                info.CRC ^= 1
    return draw(mostly(st.just(buffer.getvalue()), damaged(buffer.getvalue())))


def metadata_of(net):
    return {"format": "fastmlp", "version": 1, "dtype": np.dtype(net.dtype).name,
            "layers": [{"activation": name, "params": {k: str(v) if v in (np.inf,) else v
                                                       for k, v in params.items()}}
                       for name, params in zip(net.activations, net.activation_params)]}


@st.composite
def damaged(draw, data):
    """``data`` unchanged, truncated, or with a few bytes overwritten, inserted or deleted."""
    data = bytearray(data)
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 4]))):
        at = draw(st.integers(0, len(data)))
        how = draw(st.sampled_from(["set", "insert", "delete", "truncate"]))
        if how == "set" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif how == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        else:
            del data[at:]
    return bytes(data)


@st.composite
def safetensors_files(draw):
    """A .safetensors file from a valid model's arrays with a structurally changed header
    (entries with arbitrary JSON, metadata strings, a header length that lies)."""
    net = seed_network()
    arrays = {f"w{i}": w for i, w in enumerate(net.weights)}
    arrays.update({f"b{i}": b for i, b in enumerate(net.biases)})
    header, data, offset = {}, b"", 0
    for name, array in arrays.items():
        raw = array.tobytes()
        header[name] = {"dtype": "F64", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        data, offset = data + raw, offset + len(raw)
    meta = draw(mostly(st.just(metadata_of(net)), metadata()))
    header["__metadata__"] = {k: v if isinstance(v, str) else json.dumps(v)
                              for k, v in meta.items()}
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(sorted(header)))
        field = draw(st.sampled_from(["dtype", "shape", "data_offsets", "entry", "meta"]))
        value = draw(JSON_VALUES | st.sampled_from(["F32", "I64", [2**40, 2**40], [1e308 * 10]]))
        if field == "entry":
            header[name] = value
        elif field == "meta":
            header["__metadata__"] = draw(st.dictionaries(
                st.sampled_from(["format", "version", "dtype", "layers"]),
                st.text(max_size=8)
                | st.sampled_from(["²", "1", "[" * 10_000, "fastmlp", "\ud800"])))
        elif isinstance(header[name], dict):
            header[name][field] = value
    text = json.dumps(header).replace("Infinity", "1e400").encode()
    size = draw(st.sampled_from([len(text)] * 5 + [0, len(text) + 1, 2**63, 10**6]))
    data = size.to_bytes(8, "little") + text + data
    return draw(mostly(st.just(data), damaged(data)))


NODE_OPS = ["Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "BatchNormalization", "Relu", "Tanh",
            "Sigmoid", "Softmax", "LeakyRelu", "Elu", "Gelu", "Softplus", "Identity",
            "Dropout", "Flatten", "Reshape", "Where", "Greater", "Constant", "Conv"]
ATTRIBUTES = ["alpha", "beta", "transA", "transB", "axis", "approximate", "epsilon",
              "training_mode", "allowzero", "value", "value_float", "value_ints"]
ATTRIBUTE_VALUES = st.sampled_from([1.5, 0, 1, 2**40, -1, "none", "tanh", "\xff", [1.0, 2.0],
                                    [1, 2], float("nan"), 1e300])


def seed_onnx():
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Gemm", ["x", "W1", "B1"], ["h"], name="gemm", transB=1),
             helper.make_node("Sigmoid", ["h"], ["s"], name="sig"),
             helper.make_node("Mul", ["h", "s"], ["a"], name="silu"),
             helper.make_node("MatMul", ["a", "W2"], ["m"], name="mm"),
             helper.make_node("Add", ["m", "B2"], ["z"], name="add"),
             helper.make_node("Gelu", ["z"], ["y"], name="gelu", approximate="tanh")]
    inits = {"W1": rng.normal(size=(6, 4)), "B1": rng.normal(size=6),
             "W2": rng.normal(size=(6, 3)), "B2": rng.normal(size=3)}
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", 1, ["batch", 4])],
        [helper.make_tensor_value_info("y", 1, [None, None])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


@st.composite
def onnx_files(draw):
    """A valid ONNX chain with structural changes: rewired, dropped, duplicated or retyped
    nodes, cycles, attributes of any type, initializers whose dims or data lie."""
    import onnx
    from onnx import helper

    model = onnx.ModelProto()
    model.ParseFromString(seed_file(".onnx"))
    graph, nodes = model.graph, model.graph.node
    values = ["x", "h", "s", "a", "m", "z", "y", "W1", "B1", "W2", "B2", ""]
    for _ in range(draw(st.integers(0, 3))):
        change = draw(st.sampled_from(["rewire", "drop", "duplicate", "op", "attribute",
                                       "mute", "cycle", "initializer", "input", "opset"]))
        node = nodes[draw(st.integers(0, len(nodes) - 1))] if len(nodes) else None
        if change == "rewire" and node is not None:
            names = node.input if draw(st.booleans()) else node.output
            if len(names):
                names[draw(st.integers(0, len(names) - 1))] = draw(st.sampled_from(values))
            else:
                names.append(draw(st.sampled_from(values)))
        elif change == "drop" and node is not None:
            nodes.remove(node)
        elif change == "duplicate" and node is not None:
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            nodes.insert(draw(st.integers(0, len(nodes))), copy)
        elif change == "op" and node is not None:
            node.op_type = draw(st.sampled_from(NODE_OPS))
        elif change == "attribute" and node is not None:
            node.attribute.append(helper.make_attribute(draw(st.sampled_from(ATTRIBUTES)),
                                                        draw(ATTRIBUTE_VALUES)))
        elif change == "mute" and node is not None:
            del node.output[:]
        elif change == "cycle":
            a, b = draw(st.sampled_from(values[:6])), draw(st.sampled_from(values[:6]))
            nodes.insert(draw(st.integers(0, len(nodes))),
                         helper.make_node("Identity", [a], [b], name="cycle"))
        elif change == "initializer":
            tensor = graph.initializer[draw(st.integers(0, len(graph.initializer) - 1))]
            how = draw(st.sampled_from(["dims", "type", "data"]))
            if how == "dims":
                del tensor.dims[:]
                tensor.dims.extend(draw(st.lists(st.sampled_from([0, 1, 3, 4, 6, 2**40]),
                                                 max_size=3)))
            elif how == "type":
                tensor.data_type = draw(st.sampled_from([0, 1, 7, 10, 11, 16, 99]))
            else:
                tensor.raw_data = tensor.raw_data[: draw(st.integers(0, len(tensor.raw_data)))]
        elif change == "input":
            tensor_type = graph.input[0].type.tensor_type
            how = draw(st.sampled_from(["type", "width", "rank"]))
            if how == "type":
                tensor_type.elem_type = draw(st.sampled_from([0, 1, 7, 11, 99]))
            elif how == "width":
                tensor_type.shape.dim[1].dim_value = draw(st.sampled_from([0, 3, 4, 2**40]))
            else:
                tensor_type.shape.dim.add().dim_value = 2
        elif change == "opset":
            model.opset_import[0].version = draw(st.sampled_from([1, 6, 13, 20, 99, -1]))
    data = model.SerializeToString()
    return draw(mostly(st.just(data), damaged(data)))


# -- Network / forward arguments ----------------------------------------------------------

DTYPES = st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.int8, np.bool_,
                          np.complex128, np.uint8])
SIZES = st.integers(0, 5)
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, 1.0, -1.0, 1e300, -1e300, 3.4e38, 1e-310, 5e-324])


@st.composite
def arrays(draw, ndim=None):
    ndim = draw(st.integers(0, 3)) if ndim is None else ndim
    shape = tuple(draw(SIZES) for _ in range(ndim))
    dtype = draw(DTYPES)
    values = draw(st.lists(FLOATS, min_size=1, max_size=4))
    with np.errstate(all="ignore"):
        flat = np.resize(np.array(values), int(np.prod(shape))).astype(dtype)
    return flat.reshape(shape)


def junk():
    return st.none() | st.integers() | st.text(max_size=4) | st.just([[1.0, 2.0], [3.0]]) \
        | st.just({"w": 1}) | FLOATS


@st.composite
def layer_stack(draw):
    """Weights that chain (mostly), with biases to match (mostly)."""
    widths = draw(st.lists(st.integers(1, 6), min_size=2, max_size=4))
    dtype = draw(mostly(st.sampled_from([np.float64, np.float32]), DTYPES))
    weights = []
    for n, m in zip(widths[:-1], widths[1:]):
        values = draw(mostly(st.just([0.5, -0.25, 1.0]), st.lists(FLOATS, min_size=1, max_size=3)))
        with np.errstate(all="ignore"):
            weights.append(draw(arrays(2)) if draw(st.integers(0, 9)) == 0 else
                           np.resize(np.array(values), (n, m)).astype(dtype))
    biases = draw(mostly(st.none() | st.just([np.full(m, 0.5) for m in widths[1:]]),
                         st.lists(st.none() | arrays(1) | junk(), max_size=4)))
    return weights, biases, widths[0]


ACTIVATION_SPECS = mostly(
    st.sampled_from(ACTIVATIONS),
    st.sampled_from(["swish", "", "RELU"])
    | st.tuples(st.sampled_from(ACTIVATIONS),
                st.dictionaries(st.sampled_from(PARAMETERS),
                                FLOATS | junk() | st.integers(-2**70, 2**70), max_size=2)))
THREADS = mostly(st.none() | st.integers(1, 8),
                 st.integers(-2, 0) | st.sampled_from([2**31, 2**63, 2**64, 10**30])
                 | st.sampled_from([True, 2.0, "2", np.int64(3), np.uint64(2**63)]))
DTYPE_ARGUMENTS = mostly(st.sampled_from([None, "float32", "float64", np.float32]),
                         st.sampled_from(["float16", "int", 3, object, np.int8, "f8"]))


@st.composite
def network_calls(draw):
    """(args, kwargs, inputs, call_kwargs) for Network(*args, **kwargs).forward(x, ...)."""
    weights, biases, n_inputs = draw(layer_stack())
    weights = draw(mostly(st.just(weights), st.lists(arrays() | junk(), max_size=3) | junk()))
    activations = draw(mostly(ACTIVATION_SPECS, st.lists(ACTIVATION_SPECS, max_size=4) | junk()))
    kwargs = {}
    if draw(st.booleans()):
        kwargs["dtype"] = draw(DTYPE_ARGUMENTS)
    if draw(st.booleans()):
        kwargs["threads"] = draw(THREADS)
    inputs = []
    for _ in range(draw(st.integers(0, 3))):
        x = draw(mostly(st.just(np.resize(np.linspace(-3, 3, 7),
                                          (draw(st.integers(0, 70)), n_inputs))),
                        arrays() | junk()))
        inputs.append((x, draw(st.sampled_from(["C", "F", "strided"]))))
    call_kwargs = {}
    if draw(st.booleans()):
        call_kwargs["threads"] = draw(THREADS)
    return (weights, biases, activations), kwargs, inputs, call_kwargs
