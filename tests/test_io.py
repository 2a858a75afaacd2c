"""fastmlp.io: save / load round trips in .npz and .safetensors, and every kind of bad file."""
import json
import math

import numpy as np
import pytest

import fastmlp
import fastmlp.io as fio

# Every activation, with its parameters away from their defaults where it has any.
ACTIVATIONS = [
    ("identity", {}), ("relu", {}), ("tanh", {}), ("sigmoid", {}), ("softmax", {}),
    ("leaky_relu", {"negative_slope": 0.2}), ("elu", {"alpha": 0.7}), ("gelu", {}),
    ("gelu_tanh", {}), ("silu", {}), ("softplus", {"beta": 2.0, "threshold": 15.0}),
    ("softplus", {}),  # threshold=inf must survive JSON
]
SUFFIXES = [".npz", ".safetensors"]


def make_net(dtype=np.float64, activations=(("tanh", {}), ("softplus", {"beta": 2.0}))):
    rng = np.random.default_rng(3)
    widths = [4, 6, 5, 3][: len(activations) + 1]
    weights = [rng.normal(size=(n, m)) for n, m in zip(widths[:-1], widths[1:])]
    biases = [rng.normal(size=m) for m in widths[1:]]
    return fastmlp.Network(weights, biases, list(activations), dtype=dtype)


def assert_same(a, b):
    assert a.dtype == b.dtype
    assert a.activations == b.activations
    assert a.activation_params == b.activation_params
    for x, y in zip(a.weights + a.biases, b.weights + b.biases):
        assert x.dtype == y.dtype and np.array_equal(x, y)
    x = np.random.default_rng(0).normal(size=(7, a.n_inputs)) * 3
    assert np.array_equal(a(x), b(x))


def needs(suffix):
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: f"{a[0]}{a[1] or ''}")
def test_round_trip_every_activation(tmp_path, suffix, dtype, activation):
    needs(suffix)
    net = make_net(dtype, [activation, ("relu", {}), activation])
    path = tmp_path / f"model{suffix}"
    fio.save(net, path)
    for mmap in (False, True):
        assert_same(net, fio.load(path, mmap=mmap))


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_network_save_method_and_top_level_load(tmp_path, suffix):
    needs(suffix)
    net = make_net()
    path = tmp_path / f"m{suffix}"
    net.save(str(path))
    assert_same(net, fastmlp.load(str(path)))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_save_replaces_an_existing_file(tmp_path, suffix):
    needs(suffix)
    path = tmp_path / f"m{suffix}"
    fio.save(make_net(activations=[("relu", {})] * 3), path)
    net = make_net(np.float32)
    fio.save(net, path)
    assert_same(net, fio.load(path))


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_mmap_load_passes_mapped_arrays_to_the_network(tmp_path, suffix, monkeypatch):
    needs(suffix)
    path = tmp_path / f"m{suffix}"
    fio.save(make_net(), path)
    seen = []
    real = fastmlp.Network

    def spy(layers, *args, **kwargs):
        seen.extend(type(a) for layer in layers for a in (layer.weights, layer.bias))
        return real(layers, *args, **kwargs)

    monkeypatch.setattr(fastmlp, "Network", spy)
    fio.load(path, mmap=True)
    assert seen and all(t is np.memmap for t in seen)
    seen.clear()
    fio.load(path)
    assert seen and not any(t is np.memmap for t in seen)


def test_npz_is_plain_numpy(tmp_path):
    net = make_net(np.float32)
    path = tmp_path / "m.npz"
    fio.save(net, path)
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["b0", "b1", "metadata", "w0", "w1"]
        meta = json.loads(npz["metadata"].tobytes())
        assert np.array_equal(npz["w1"], net.weights[1]) and npz["w1"].dtype == np.float32
    assert meta == {
        "format": "fastmlp", "version": 1, "dtype": "float32",
        "layers": [{"activation": "tanh", "params": {}},
                   {"activation": "softplus", "params": {"beta": 2.0, "threshold": "inf"}}],
    }


def test_compressed_npz_loads_with_and_without_mmap(tmp_path):
    net = make_net()
    plain, packed = tmp_path / "plain.npz", tmp_path / "packed.npz"
    fio.save(net, plain)
    with np.load(plain) as npz:
        np.savez_compressed(packed, **dict(npz))
    for mmap in (False, True):
        assert_same(net, fio.load(packed, mmap=mmap))


def test_safetensors_is_standard(tmp_path):
    st = pytest.importorskip("safetensors")
    from safetensors.numpy import load_file

    net = make_net()
    path = tmp_path / "m.safetensors"
    fio.save(net, path)
    tensors = load_file(path)
    assert sorted(tensors) == ["b0", "b1", "w0", "w1"]
    assert np.array_equal(tensors["w0"], net.weights[0])
    with st.safe_open(path, framework="np") as f:
        meta = f.metadata()
    assert (meta["format"], meta["version"], meta["dtype"]) == ("fastmlp", "1", "float64")
    assert json.loads(meta["layers"])[1] == {
        "activation": "softplus", "params": {"beta": 2.0, "threshold": "inf"}}


def test_save_refuses_other_objects_and_suffixes(tmp_path):
    with pytest.raises(TypeError, match="fastmlp.Network"):
        fio.save([np.eye(2)], tmp_path / "m.npz")
    for name in ("m.pt", "m", "m.npy"):
        with pytest.raises(ValueError, match=r"supported: \.npz, \.safetensors"):
            fio.save(make_net(), tmp_path / name)
        with pytest.raises(ValueError, match=r"supported: \.npz, \.safetensors"):
            fio.load(tmp_path / name)


def test_missing_file_is_file_not_found(tmp_path):
    for suffix in SUFFIXES:
        with pytest.raises(FileNotFoundError):
            fio.load(tmp_path / f"absent{suffix}")


# -- malformed files ------------------------------------------------------------------------

def good_metadata(dtype="float64", n_layers=2):
    layers = [{"activation": "relu", "params": {}}] * n_layers
    return {"format": "fastmlp", "version": 1, "dtype": dtype, "layers": layers}


def good_arrays(dtype=np.float64):
    rng = np.random.default_rng(1)
    return {"w0": rng.normal(size=(3, 4)).astype(dtype), "b0": np.zeros(4, dtype),
            "w1": rng.normal(size=(4, 2)).astype(dtype), "b1": np.zeros(2, dtype)}


def write(path, metadata, arrays):
    """A file in either format with exactly the given content (however wrong)."""
    if path.suffix == ".npz":
        text = json.dumps(metadata).encode()
        np.savez(path, metadata=np.frombuffer(text, np.uint8), **arrays)
    else:
        from safetensors.numpy import save_file

        save_file(arrays, str(path), metadata={
            k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()})
    return path


def load_error(path, mmap=False):
    with pytest.raises(ValueError) as info:
        fio.load(path, mmap=mmap)
    message = str(info.value)
    assert str(path) in message
    return message


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_written_helper_is_loadable(tmp_path, suffix):
    # The malformed cases below each change one thing of this valid file.
    needs(suffix)
    net = fio.load(write(tmp_path / f"ok{suffix}", good_metadata(), good_arrays()))
    assert net.shapes == [(3, 4), (4, 2)]


MALFORMED = {
    "newer version": (dict(version=3), None, "newer fastmlp"),
    "version zero": (dict(version=0), None, "bad format version"),
    "version text": (dict(version="one"), None, "bad format version"),
    "other format": (dict(format="keras"), None, "format is 'keras'"),
    "empty format": (dict(format=""), None, "format is ''"),
    "bad dtype name": (dict(dtype="float16"), None, "dtype is 'float16'"),
    "no layers": (dict(layers=[]), None, "'layers' is missing"),
    "unknown activation": (
        dict(layers=[{"activation": "swoosh", "params": {}}] * 2), None,
        "unknown activation 'swoosh'; valid names"),
    "layer not a dict": (dict(layers=["relu", "relu"]), None, "layer 0: expected"),
    "text parameter": (
        dict(layers=[{"activation": "elu", "params": {"alpha": "big"}}] * 2), None, "not a number"),
    "parameter the network refuses": (
        dict(layers=[{"activation": "softplus", "params": {"beta": -1.0}}] * 2), None, "beta"),
    "unknown parameter": (
        dict(layers=[{"activation": "relu", "params": {"slope": 1.0}}] * 2), None,
        "relu has no parameter 'slope'"),
    "list parameter": (
        dict(layers=[{"activation": "elu", "params": {"alpha": [1]}}] * 2), None,
        "must be a number"),
    "not finite weights": (None, lambda a: a["w1"].__setitem__((0, 0), np.nan),
                           "layer 1: weights contains NaN"),
    "more layers than arrays": (dict(layers=[{"activation": "relu", "params": {}}] * 3), None,
                                "the array w2 is missing"),
    "missing array": (None, lambda a: a.pop("b1"), "the array b1 is missing"),
    "extra array": (None, lambda a: a.update(w9=np.eye(2)), "unexpected w9"),
    "shapes do not chain": (None, lambda a: a.update(w1=np.ones((5, 2))),
                            "layer 1 has 5 inputs"),
    "bias of wrong length": (None, lambda a: a.update(b0=np.zeros(3)),
                             "bias of layer 0 has shape (3,)"),
    "1-D weights": (None, lambda a: a.update(w0=np.ones(12)), "array w0 is 1-D"),
    "arrays of another dtype": (None, lambda a: a.update(w0=a["w0"].astype(np.float32)),
                                "array w0 is 2-D float32, expected 2-D float64"),
    "integer arrays": (None, lambda a: a.update(b1=np.zeros(2, np.int64)), "array b1"),
}


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("case", MALFORMED, ids=str)
def test_inconsistent_content_is_explained(tmp_path, suffix, case):
    needs(suffix)
    meta_change, array_change, expected = MALFORMED[case]
    metadata, arrays = good_metadata(), good_arrays()
    metadata.update(meta_change or {})
    if array_change:
        array_change(arrays)
    if suffix == ".safetensors" and "b1" in arrays and arrays["b1"].dtype.kind == "i":
        expected = "dtype I64"  # the reader refuses non-float tensors up front
    path = write(tmp_path / f"bad{suffix}", metadata, arrays)
    for mmap in (False, True):
        assert expected in load_error(path, mmap)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_truncated_files(tmp_path, suffix):
    needs(suffix)
    good = tmp_path / f"good{suffix}"
    fio.save(make_net(), good)
    data = good.read_bytes()
    bad = tmp_path / f"bad{suffix}"
    for size in (0, 4, 8, 20, len(data) // 3, len(data) // 2, len(data) - 40, len(data) - 1):
        bad.write_bytes(data[:size])
        for mmap in (False, True):
            load_error(bad, mmap)


def test_flipped_bytes_in_npz_are_caught_by_the_zip_checksums(tmp_path):
    good = tmp_path / "good.npz"
    fio.save(make_net(), good)
    data = good.read_bytes()
    bad = tmp_path / "bad.npz"
    # Every 7th byte: headers, metadata, array headers and weight data all get hit.
    for i in range(0, len(data), 7):
        flipped = bytearray(data)
        flipped[i] ^= 0x5A
        bad.write_bytes(bytes(flipped))
        for mmap in (False, True):
            try:
                loaded = fio.load(bad, mmap=mmap)
            except ValueError as exc:
                assert str(bad) in str(exc)
            else:  # only bytes the zip format ignores (e.g. timestamps) may go unnoticed
                assert_same(make_net(), loaded)


def test_flipped_bytes_in_safetensors_header(tmp_path):
    pytest.importorskip("safetensors")
    good = tmp_path / "good.safetensors"
    fio.save(make_net(), good)
    data = good.read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    bad = tmp_path / "bad.safetensors"
    for i in range(0, header_end, 3):
        flipped = bytearray(data)
        flipped[i] ^= 0x5A
        bad.write_bytes(bytes(flipped))
        try:
            loaded = fio.load(bad)
        except ValueError as exc:
            assert str(bad) in str(exc)
        else:  # a flip inside JSON text may still leave a valid file
            assert loaded.shapes == make_net().shapes


@pytest.mark.parametrize("content, expected", [
    (b"", "damaged or not an .npz"),
    (b"hello, this is not a model", "damaged or not an .npz"),
    (b"\x80\x04\x95pickled", "damaged or not an .npz"),
])
def test_npz_that_is_not_a_zip(tmp_path, content, expected):
    path = tmp_path / "m.npz"
    path.write_bytes(content)
    assert expected in load_error(path)


def test_npy_renamed_npz(tmp_path):
    path = tmp_path / "m.npz"
    with open(path, "wb") as f:
        np.save(f, np.eye(3))
    assert "single .npy array" in load_error(path)


def test_npz_without_or_with_bad_metadata(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, **good_arrays())
    assert "'metadata' array is missing" in load_error(path)
    np.savez(path, metadata=np.array(json.dumps(good_metadata())), **good_arrays())
    assert "uint8 array" in load_error(path)
    np.savez(path, metadata=np.frombuffer(b"{not json", np.uint8), **good_arrays())
    assert "not valid JSON" in load_error(path)
    np.savez(path, metadata=np.frombuffer(b"[1, 2]", np.uint8), **good_arrays())
    assert "not a JSON object" in load_error(path)


def test_npz_with_pickled_member_is_refused_not_unpickled(tmp_path):
    path = tmp_path / "m.npz"
    arrays = good_arrays()
    arrays["w0"] = np.array([{"evil": True}], dtype=object)
    write(path, good_metadata(), arrays)
    for mmap in (False, True):
        load_error(path, mmap)


def test_safetensors_without_fastmlp_metadata(tmp_path):
    pytest.importorskip("safetensors")
    from safetensors.numpy import save_file

    path = tmp_path / "m.safetensors"
    save_file(good_arrays(), str(path))
    assert "no __metadata__" in load_error(path)
    save_file({"x": np.zeros(2, np.float16)}, str(path), metadata={"format": "fastmlp"})
    assert "dtype F16" in load_error(path)


def test_safetensors_header_length_beyond_the_file(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes((10**6).to_bytes(8, "little") + b"{}")
    assert "header claims" in load_error(path)
    path.write_bytes((4).to_bytes(8, "little") + b"{]}x")
    assert "not valid JSON" in load_error(path)


def test_infinite_parameters_are_strict_json(tmp_path):
    net = make_net(activations=[("softplus", {})] * 2)
    assert math.isinf(net.activation_params[0]["threshold"])
    fio.save(net, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as npz:
        text = npz["metadata"].tobytes().decode()
    assert "Infinity" not in text and '"inf"' in text


# -- hostile files (issue 13): each is refused with a ValueError naming the file, before any
# data is read or inflated, and within bounded memory.

def npy_bytes(array):
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def npy_header(shape, descr="<f8", version=b"\x01\x00"):
    text = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    text += b" " * (63 - (len(text) + 10) % 64) + b"\n"
    return b"\x93NUMPY" + version + len(text).to_bytes(2, "little") + text


def raw_npy(text):
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text


def zip_members(path, members, compression=None, change=None):
    """An .npz of ``members`` (name -> .npy bytes); ``change(infos)`` edits the central
    directory (not the local headers) before it is written."""
    import zipfile

    method = zipfile.ZIP_STORED if compression is None else compression
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if change:
            change(zf.infolist())
    return path


def good_members(**replace):
    members = {"metadata.npy": npy_bytes(np.frombuffer(json.dumps(good_metadata()).encode(),
                                                         np.uint8))}
    members.update({f"{k}.npy": npy_bytes(v) for k, v in good_arrays().items()})
    members.update(replace)
    return members


def test_zip_members_helper_is_loadable(tmp_path):
    import zipfile

    for method in (None, zipfile.ZIP_DEFLATED):
        assert fio.load(zip_members(tmp_path / "ok.npz", good_members(), method)).shapes == [
            (3, 4), (4, 2)]


@pytest.mark.parametrize("method, name", [(12, "bzip2"), (14, "lzma")])
def test_bzip2_and_lzma_members_are_refused_unread(tmp_path, method, name):
    # Issue 13: a 2.3 KB bzip2 file was inflated to 8.2 GiB; a corrupt LZMA member gave
    # LZMAError. Neither method is written by numpy or fastmlp.
    path = zip_members(tmp_path / f"{name}.npz", good_members(), method)
    assert f"uses compression method {method}" in load_error(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # corrupt the compressed data as well: same answer
    path.write_bytes(bytes(data))
    assert str(path) in load_error(path)


def test_deflate_member_claiming_more_than_deflate_can_produce(tmp_path):
    import zipfile

    def lie(infos):
        infos[1].file_size = 10**12

    path = zip_members(tmp_path / "bomb.npz", good_members(), zipfile.ZIP_DEFLATED, lie)
    assert "more than the file can hold" in load_error(path)


def test_shapes_are_checked_before_a_deflate_member_is_inflated(tmp_path, monkeypatch):
    # Issue 13: a 783 KB deflate file grew to 2.5 GiB before the error about the bias.
    import zipfile

    members = good_members(**{"w0.npy": npy_bytes(np.zeros((3, 2**19))),
                              "b0.npy": npy_bytes(np.zeros(3))})
    path = zip_members(tmp_path / "bomb.npz", members, zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 100_000

    inflated, real = [], fio._inflate_npz_member

    def inflate(zf, info, *args):
        inflated.append(info.filename)
        return real(zf, info, *args)

    monkeypatch.setattr(fio, "_inflate_npz_member", inflate)
    assert "bias of layer 0 has shape (3,)" in load_error(path)
    assert inflated == ["metadata.npy"]


def test_header_claiming_2_40_values(tmp_path):
    # Issue 13: MemoryError.
    path = zip_members(tmp_path / "m.npz", good_members(**{"w0.npy": npy_header((2**20, 2**20))}))
    for mmap in (False, True):
        assert "declares shape (1048576, 1048576)" in load_error(path, mmap)


def test_encrypted_member(tmp_path):
    # Issue 13: RuntimeError ("password required").
    def encrypt(infos):
        infos[2].flag_bits |= 0x1

    path = zip_members(tmp_path / "m.npz", good_members(), change=encrypt)
    assert "is encrypted" in load_error(path)


@pytest.mark.parametrize("name, data, expected", [
    ("w0.npy", b"this is not npy data", "is not .npy data"),  # issue 13: AttributeError
    ("notes.txt", b"hello", "'notes.txt' is not a (unique) .npy array"),
    ("w0.npy", npy_header((3, 4))[:40], "is truncated"),
    ("w0.npy", raw_npy(b"{'descr': '<f8', 'fortran_order': False, 'sha\n"),
     "unreadable .npy header"),  # issue 13: tokenize.TokenError
    ("w0.npy", npy_header((3, 4), version=b"\x09\x00"), "unknown .npy version 9.0"),
    ("w0.npy", npy_header((3.5, 4)), "unreadable .npy header"),
    ("w0.npy", npy_header((-3, 4)), "unreadable .npy header"),
    ("w0.npy", b"\x93NUMPY\x01\x00" + b"\xff\xff" + b" " * 65535, "claims 65535 bytes"),
    ("w0.npy", npy_header((3, 4), descr=[("a", "<f8")]), "unreadable .npy header"),
    ("w0.npy", npy_header((3, 4), descr="|O"), "never unpickles"),
])
def test_members_that_are_not_plain_npy(tmp_path, name, data, expected):
    path = zip_members(tmp_path / "m.npz", good_members(**{name: data}))
    for mmap in (False, True):
        assert expected in load_error(path, mmap)


def test_deeply_nested_json(tmp_path):
    # Issue 13: RecursionError, from .npz metadata and from a .safetensors header.
    deep = b"[" * 100_000
    path = zip_members(tmp_path / "m.npz",
                       good_members(**{"metadata.npy": npy_bytes(np.frombuffer(deep, np.uint8))}))
    assert "nested too deeply" in load_error(path)
    path = tmp_path / "m.safetensors"
    path.write_bytes(len(deep).to_bytes(8, "little") + deep)
    assert "nested too deeply" in load_error(path)


def safetensors_file(path, header, data=b""):
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return path


def test_safetensors_numbers_that_are_not_indices(tmp_path):
    # Issue 13: a shape [1e400, 4] gave OverflowError.
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in good_metadata().items()}
    for shape, offsets in (([1e400, 4], [0, 96]), ([3.0, 4], [0, 96]), ([True, 4], [0, 96]),
                           ([-3, 4], [0, 96]), ([3, 4], [0, "96"]), ([3, 4], [96])):
        header = {"__metadata__": meta, "w0": {"dtype": "F64", "shape": shape,
                                               "data_offsets": offsets}}
        text = json.dumps(header).replace("Infinity", "1e400")
        path = tmp_path / "m.safetensors"
        path.write_bytes(len(text).to_bytes(8, "little") + text.encode() + bytes(96))
        assert "header entry of tensor 'w0' is malformed" in load_error(path)


def test_safetensors_version_that_only_looks_like_a_number(tmp_path):
    # Issue 13: "²".isdigit() is true but int("²") fails, with no path in the message.
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in good_metadata().items()}
    for version in ("²", "٣", "1" * 5000):
        path = safetensors_file(tmp_path / "m.safetensors",
                                {"__metadata__": dict(meta, version=version)})
        assert "bad format version" in load_error(path)


def test_deflate_member_ending_before_its_declared_size(tmp_path):
    # The stream ends early and its CRC matches what is there: zipfile returns the short
    # data without complaint; the loader must not hand on a partly uninitialised buffer.
    import zipfile

    full = npy_bytes(good_arrays()["w0"])
    short = full[: len(full) - 40]

    def claim_full_size(infos):
        infos[1].file_size = len(full)

    path = zip_members(tmp_path / "m.npz", good_members(**{"w0.npy": short}),
                       zipfile.ZIP_DEFLATED, claim_full_size)
    assert "ends before its declared size" in load_error(path)


def test_safetensors_metadata_with_a_lone_surrogate(tmp_path):
    # Found by the fuzz tests: a JSON "\ud800" in the layers string gave UnicodeEncodeError
    # without the file's name.
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in good_metadata().items()}
    for key in ("layers", "format"):
        path = safetensors_file(tmp_path / "m.safetensors",
                                {"__metadata__": dict(meta, **{key: "\ud800"})})
        load_error(path)
