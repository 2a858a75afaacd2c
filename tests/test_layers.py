"""Networks made of layer objects: Affine, LayerNorm, Activation, Residual beside Dense,
against the float64 reference, with the same guarantees as dense chains."""
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastmlp
from fastmlp.layers import Activation, Affine, Dense, LayerNorm, Residual
from reference import forward_layers, tolerance

HERE = os.path.dirname(__file__)


def mixed_layers(rng, dtype, n_in=7, hidden=12):
    """One of every kind, a nested residual block and parameters of every form."""
    def w(n, m):
        return (rng.uniform(-1, 1, (n, m)) / np.sqrt(n)).astype(dtype)

    def v(n, low=-0.5, high=0.5):
        return rng.uniform(low, high, n).astype(dtype)

    return [
        Affine(scale=v(n_in, 0.5, 2), shift=v(n_in)),
        Dense(w(n_in, hidden), v(hidden), "relu"),
        Residual([
            LayerNorm(v(hidden, 0.5, 1.5), v(hidden)),
            Dense(w(hidden, 2 * hidden), v(2 * hidden), "gelu"),
            Dense(w(2 * hidden, hidden), None),
            Residual([Activation("tanh"), Affine(scale=0.5)]),
        ]),
        Activation(("leaky_relu", {"negative_slope": 0.1})),
        LayerNorm(width=hidden, eps=1e-3),
        Affine(shift=v(hidden)),
        Dense(w(hidden, 5), v(5), "softmax"),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_layer_kind_matches_the_reference(dtype):
    rng = np.random.default_rng(1)
    layers = mixed_layers(rng, dtype)
    net = fastmlp.Network(layers)
    assert net.dtype == dtype
    assert (net.n_inputs, net.n_outputs) == (7, 5)
    x = rng.standard_normal((300, 7)).astype(dtype)
    rtol, atol = tolerance(dtype)
    np.testing.assert_allclose(net(x), forward_layers(layers, x), rtol=rtol * 10, atol=atol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_get_the_same_bits_whatever_the_batch(dtype):
    rng = np.random.default_rng(2)
    net = fastmlp.Network(mixed_layers(rng, dtype))
    x = rng.standard_normal((2100, 7)).astype(dtype)
    whole = net(x, threads=2)
    assert np.array_equal(whole, net(x, threads=1))
    for start, stop in [(0, 1), (3, 4), (5, 70), (1000, 1333), (2099, 2100)]:
        assert np.array_equal(net(x[start:stop]), whole[start:stop]), (start, stop)
        assert np.array_equal(net(x[start], threads=2), whole[start]), start


@pytest.mark.parametrize("kernel", fastmlp.build_info()["kernels_built"])
def test_every_kernel_variant_runs_the_layers(kernel):
    missing = fastmlp._core.kernel_missing(kernel)
    if missing:
        pytest.skip(f"the {kernel} kernel needs {', '.join(missing)}, which this CPU lacks")
    code = textwrap.dedent(f"""
        import sys, numpy as np, fastmlp
        sys.path.insert(0, {HERE!r})
        from test_layers import mixed_layers
        from reference import forward_layers
        assert fastmlp.build_info()["kernel"] == {kernel!r}
        for dtype, tol in ((np.float32, 1e-4), (np.float64, 1e-11)):
            rng = np.random.default_rng(3)
            layers = mixed_layers(rng, dtype, n_in=33, hidden=40)
            net = fastmlp.Network(layers)
            x = rng.standard_normal((700, 33)).astype(dtype)
            got = net(x)
            np.testing.assert_allclose(got, forward_layers(layers, x), rtol=tol, atol=tol)
            for rows in (1, 2, 9, 25, 97, 699):
                assert np.array_equal(net(x[:rows], threads=2), got[:rows]), rows
        print("ok")
    """)
    env = dict(os.environ, FASTMLP_KERNEL=kernel)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.stdout.strip() == "ok", result.stderr[-3000:]


def test_an_affine_step_keeps_infinite_activations_out_of_other_features():
    """Batch norm after a ReLU used to become a diagonal dense layer, where inf * 0 turned a
    whole row into NaN; as an Affine step each feature stays its own (PyTorch: [1, .964, 0])."""
    net = fastmlp.Network([
        Dense(np.eye(3), None, "relu"),
        Affine(scale=[1e-38, 0.5, 1.0], shift=[0.0, 1.0, -1.0]),
        Activation("tanh"),
    ], dtype="float32")
    got = net(np.array([[3e38, 2.0, 1.0]], np.float32))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, np.tanh([[3.0, 2.0, 0.0]]), rtol=1e-6)


def test_layernorm_of_a_row_with_nan_or_inf_is_nan_and_others_unharmed():
    net = fastmlp.Network([LayerNorm(width=4)])
    x = np.array([[1.0, 2.0, 3.0, 4.0], [np.nan, 0, 0, 0], [np.inf, 0, 0, 0], [5, 5, 5, 5]])
    got = net(x)
    np.testing.assert_allclose(got[0], forward_layers(net.layers, x[:1])[0], rtol=1e-12)
    assert np.isnan(got[1]).all() and np.isnan(got[2]).all()
    assert np.array_equal(got[3], np.zeros(4))  # a constant row: (x - mean) = 0


def test_classic_and_layer_forms_give_the_same_network():
    rng = np.random.default_rng(4)
    w = [rng.standard_normal((4, 6)), rng.standard_normal((6, 2))]
    b = [rng.standard_normal(6), None]
    classic = fastmlp.Network(w, b, ["tanh", "identity"])
    layered = fastmlp.Network([Dense(w[0], b[0], "tanh"), Dense(w[1])])
    x = rng.standard_normal((50, 4))
    assert np.array_equal(classic(x), layered(x))
    assert classic.is_dense_chain and layered.is_dense_chain
    assert classic.layers == layered.layers
    assert repr(classic) == repr(layered)


def test_layers_are_read_only_copies_in_the_network_dtype():
    scale = np.array([1.0, 2.0])
    net = fastmlp.Network([Affine(scale, 0.5), Dense(np.ones((2, 3)), None, "relu")],
                          dtype="float32")
    affine = net.layers[0]
    assert affine.scale.dtype == np.float32 and not affine.scale.flags.writeable
    assert affine.shift.tolist() == [0.5, 0.5]
    scale[0] = 100  # the caller's array is the caller's
    assert net(np.ones(2)).tolist() == [(1 + 0.5) + (2 + 0.5)] * 3
    assert net.weights[0].shape == (2, 3) and net.activations == ("relu",)
    assert len(net) == 2 and not net.is_dense_chain


def test_pickle_and_trace_of_a_layered_network():
    rng = np.random.default_rng(5)
    net = fastmlp.Network(mixed_layers(rng, np.float64), threads=1)
    x = rng.standard_normal((20, 7))
    copy = pickle.loads(pickle.dumps(net))
    assert np.array_equal(copy(x), net(x)) and copy.layers == net.layers
    assert copy.threads == 1
    steps = net.trace(x)
    # 7 top-level layers; the residual adds 4 inner + 2 (nested) + 1 (its sum)
    assert len(steps) == 1 + 1 + (3 + (2 + 1) + 1) + 4
    assert np.array_equal(steps[-1][1], net(x))
    z, a = steps[1]  # the first Dense: relu(z) == a
    assert np.array_equal(np.maximum(z, 0), a)
    assert net.trace(x[0])[-1][1].shape == (5,)


def err(exc, match, *args, **kwargs):
    with pytest.raises(exc, match=match):
        fastmlp.Network(*args, **kwargs)


def test_bad_layer_lists_name_the_layer():
    d = Dense(np.ones((3, 4)))
    err(ValueError, r"layer 1 \(Dense with weights of shape \(5, 2\)\) takes 5 features but "
        r"the layer before it gives 4", [d, Dense(np.ones((5, 2)))])
    err(ValueError, r"layer 1: its layers turn 4 features into 2", [d, Residual([Dense(
        np.ones((4, 2)))])])
    err(ValueError, r"layer 1.0 \(Dense .*\) takes 3 features but the layer before it gives 4",
        [d, Residual([Dense(np.ones((3, 4)))])])
    err(ValueError, "an Activation first needs a layer that sets the width", [Activation("relu"), d])
    err(ValueError, "cannot tell how many features", [Affine(2.0, 1.0), d])
    err(ValueError, r"layer 0: eps must be a finite number >= 0", [LayerNorm(width=3, eps=-1)])
    err(ValueError, r"layer 1: weight must be a vector", [d, LayerNorm(2.0)])
    err(ValueError, r"layer 1 \(4 per-feature values\) takes 4 features but the layer before "
        "it gives 2", [Dense(np.ones((3, 2))), Affine([1, 2, 3, 4])])
    err(ValueError, r"layer 1: unknown activation 'nope'", [d, Activation("nope")])
    err(ValueError, "a Residual needs a non-empty list", [d, Residual([])])
    err(ValueError, r"layer 0: weights contains NaN", [Dense(np.full((2, 2), np.nan))])
    err(ValueError, r"layer 0: scale holds 1e\+300, which overflows float32",
        [Affine(np.full(2, 1e300))], dtype="float32")
    err(TypeError, "takes no biases or activations", [d], None, "relu")
    err(TypeError, "needs activations", [np.ones((2, 2))], None)


def test_c_api_version_is_exposed():
    assert fastmlp._core.c_api() == 1


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
@pytest.mark.parametrize("mmap", [False, True])
def test_layered_networks_round_trip_through_model_files(tmp_path, suffix, mmap):
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")
    rng = np.random.default_rng(6)
    net = fastmlp.Network(mixed_layers(rng, np.float32))
    path = tmp_path / f"m{suffix}"
    net.save(path)
    back = fastmlp.load(path, mmap=mmap)
    assert back.layers == net.layers and back.dtype == net.dtype
    x = rng.standard_normal((40, 7)).astype(np.float32)
    assert np.array_equal(back(x), net(x))


def test_dense_chains_are_still_written_as_version_1(tmp_path):
    import json

    net = fastmlp.Network([np.ones((2, 3)), np.ones((3, 1))], None, ["relu", "identity"])
    net.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as z:
        assert json.loads(z["metadata"].tobytes())["version"] == 1
        assert sorted(z.files) == ["b0", "b1", "metadata", "w0", "w1"]


def rewrite_metadata(path, change):
    import json

    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop("metadata").tobytes())
    change(meta, arrays)
    text = json.dumps(meta).encode()
    np.savez(path, metadata=np.frombuffer(text, np.uint8), **arrays)


@pytest.mark.parametrize("change, message", [
    (lambda m, a: m["layers"][1].update(kind="conv"), "layer 1: unknown kind 'conv'"),
    (lambda m, a: a.update({"l0.scale": np.ones(3, np.float32)}),
     r"layer 0 takes 3 features but the layer before it gives 4"),
    (lambda m, a: a.update({"l9.weights": np.ones((2, 2), np.float32)}), "unexpected l9.weights"),
    (lambda m, a: m["layers"][2]["layers"][0].update(eps=-1), r"layer 2.0: eps must be"),
    (lambda m, a: m["layers"][2].update(layers=[]), "expected a non-empty list of layers"),
])
def test_damaged_version_2_files_are_explained(tmp_path, change, message):
    rng = np.random.default_rng(7)
    layers = [Affine(np.ones(4, np.float32)), Dense(np.ones((4, 4), np.float32)),
              Residual([LayerNorm(width=4), Dense(np.ones((4, 4), np.float32))])]
    path = tmp_path / "m.npz"
    fastmlp.Network(layers).save(path)
    rewrite_metadata(path, change)
    with pytest.raises(ValueError, match=message):
        fastmlp.load(path)


@pytest.mark.parametrize("precision", [None, "bfloat16", "int8"])
def test_prelu_with_one_slope_per_feature(tmp_path, precision):
    slopes = np.array([0.1, 0.2, 0.3, 0.4])
    net = fastmlp.Network([Dense(np.eye(4), None, ("prelu", {"slope": slopes})),
                           Activation(("prelu", {"slope": slopes[::-1]})),
                           Dense(np.ones((4, 3)), None, "log_softmax")], precision=precision)
    x = np.array([[-1.0, -2.0, 3.0, -4.0]], dtype=net.dtype)
    hidden = np.where(x > 0, x, slopes * x)
    hidden = np.where(hidden > 0, hidden, slopes[::-1] * hidden)
    np.testing.assert_allclose(net.trace(x)[1][1], hidden, rtol=1e-2 if precision else 1e-12)
    net.save(tmp_path / "m.npz")
    back = fastmlp.load(tmp_path / "m.npz")
    assert np.array_equal(back(x), net(x)) and back.layers == net.layers
    with pytest.raises(ValueError, match="layer 0: prelu slope has 3 values for 4 features"):
        fastmlp.Network([Dense(np.eye(4), None, ("prelu", {"slope": slopes[:3]}))])


def test_a_network_may_start_with_an_activation_or_a_residual(tmp_path):
    net = fastmlp.Network([Activation("tanh"), Residual([Dense(np.eye(3) * 2)]),
                           Dense(np.ones((3, 1)))], n_inputs=3)
    x = np.array([[0.5, -1.0, 2.0]])
    want = forward_layers(net.layers, x)
    np.testing.assert_allclose(net(x), want, rtol=1e-15)
    net.save(tmp_path / "m.npz")
    assert np.array_equal(fastmlp.load(tmp_path / "m.npz")(x), net(x))
    assert np.array_equal(pickle.loads(pickle.dumps(net))(x), net(x))
    assert np.array_equal(net.quantize("bf16").astype("float64")(x).shape, (1, 1))
    with pytest.raises(ValueError, match="an Activation first needs a layer that sets the width"):
        fastmlp.Network([Activation("tanh"), Dense(np.eye(3))])
    with pytest.raises(ValueError, match=r"layer 0 \(Dense .*\) takes 3 features but the layer "
                                         "before it gives 4"):
        fastmlp.Network([Dense(np.eye(3))], n_inputs=4)
