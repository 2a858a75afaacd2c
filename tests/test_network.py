"""The Network API: shapes, dtypes, copies, out=, trace, pickling, and every bad input."""
import pickle

import numpy as np
import pytest

import fastmlp
from reference import forward


def make(widths=(3, 4, 2), dtype=np.float64, activations="relu", seed=0):
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal((n, m)).astype(dtype) for n, m in zip(widths[:-1], widths[1:])]
    biases = [rng.standard_normal(m).astype(dtype) for m in widths[1:]]
    return fastmlp.Network(weights, biases, activations), weights, biases


# -- construction and description ------------------------------------------------------

def test_description():
    net, _, _ = make((3, 5, 4, 2), activations=["relu", "tanh", "softmax"])
    assert (net.n_inputs, net.n_outputs, len(net)) == (3, 2, 3)
    assert net.shapes == [(3, 5), (5, 4), (4, 2)]
    assert net.activations == ("relu", "tanh", "softmax")
    assert net.dtype == np.float64
    assert repr(net) == "Network(3 -> 5 -> 4 -> 2, activations=[relu, tanh, softmax], dtype=float64)"


def test_dtype_inference_and_override():
    w32 = [np.ones((2, 2), np.float32)]
    assert fastmlp.Network(w32, None, "relu").dtype == np.float32
    assert fastmlp.Network([np.ones((2, 2))], None, "relu").dtype == np.float64
    assert fastmlp.Network([np.ones((2, 2), int)], None, "relu").dtype == np.float64
    assert fastmlp.Network(w32, None, "relu", dtype=np.float64).dtype == np.float64
    assert fastmlp.Network([np.ones((2, 2))], None, "relu", dtype="float32").dtype == np.float32


def test_aliases_and_parameters():
    net = fastmlp.Network([np.eye(2)] * 4, None,
                          ["linear", "logistic", "swish", ("leaky_relu", {"negative_slope": 0.2})])
    assert net.activations == ("identity", "sigmoid", "silu", "leaky_relu")
    assert net.activation_params == ({}, {}, {}, {"negative_slope": 0.2})
    assert fastmlp.ACTIVATION_DEFAULTS["elu"] == {"alpha": 1.0}
    assert "gelu_tanh" in fastmlp.activation_names()


def test_bias_shapes_and_none():
    w = [np.ones((3, 4)), np.ones((4, 2))]
    x = np.arange(3.0)
    ref = fastmlp.Network(w, [np.full(4, 0.5), np.zeros(2)], "identity")(x)
    for b0 in (np.full((4, 1), 0.5), np.full((1, 4), 0.5), [0.5] * 4):
        assert np.array_equal(fastmlp.Network(w, [b0, None], "identity")(x), ref)
    assert np.array_equal(fastmlp.Network(w, None, "identity")(x), x.sum() * 4 * np.ones(2))


def test_parameters_are_copied():
    w = [np.ones((2, 2))]
    b = [np.zeros(2)]
    net = fastmlp.Network(w, b, "identity")
    before = net([1.0, 2.0]).copy()
    w[0][:] = 100
    b[0][:] = 100
    assert np.array_equal(net([1.0, 2.0]), before)
    assert not net.weights[0].flags.writeable


def test_rebuild_from_attributes():
    net = fastmlp.Network([np.eye(2)], None, ("elu", {"alpha": 0.5}))
    again = fastmlp.Network(net.weights, net.biases,
                            list(zip(net.activations, net.activation_params)), dtype=net.dtype)
    x = np.array([-1.0, 2.0])
    assert np.array_equal(net(x), again(x))


def test_pickle_round_trip():
    net, _, _ = make((4, 6, 3), dtype=np.float32, activations=["gelu", ("softplus", {"beta": 2.0})])
    again = pickle.loads(pickle.dumps(net))
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    assert np.array_equal(net(x), again(x))
    assert again.activation_params == net.activation_params and again.dtype == np.float32


# -- forward ----------------------------------------------------------------------------

def test_shapes_of_results():
    net, w, b = make((3, 4, 2))
    assert net(np.ones(3)).shape == (2,)
    assert net(np.ones((7, 3))).shape == (7, 2)
    assert net.forward(np.ones((0, 3))).shape == (0, 2)


@pytest.mark.parametrize("convert", [
    lambda x: x.tolist(),
    lambda x: x.astype(np.int64),
    lambda x: x.astype(np.float32),
    lambda x: x.astype(">f8"),
    lambda x: np.asfortranarray(x),
    lambda x: np.repeat(x, 2, axis=1)[:, ::2],
    lambda x: x[::-1][::-1],
])
def test_any_array_like_input(convert):
    net, w, b = make((3, 4, 2))
    x = np.arange(12, dtype=np.float64).reshape(4, 3) - 5
    want = net(np.ascontiguousarray(x))
    np.testing.assert_allclose(net(convert(x)), want, rtol=1e-6 if np.asarray(convert(x)).dtype == np.float32 else 0)


def test_read_only_input_is_not_modified():
    net, _, _ = make((3, 4, 2))
    x = np.ones((2, 3))
    x.setflags(write=False)
    net(x)
    assert np.array_equal(x, np.ones((2, 3)))


def test_out_is_filled_and_returned():
    net, w, b = make((3, 4, 2))
    x = np.ones((5, 3))
    out = np.empty((5, 2))
    assert net.forward(x, out=out) is out
    assert np.array_equal(out, net(x))
    out1 = np.empty(2)
    assert net.forward(np.ones(3), out1) is out1


def test_out_overlapping_input():
    net = fastmlp.Network([np.eye(3) * 2], None, "identity")
    x = np.arange(6.0).reshape(2, 3)
    net.forward(x, out=x)
    assert np.array_equal(x, 2 * np.arange(6.0).reshape(2, 3))


def test_trace_matches_forward():
    net, w, b = make((3, 5, 2), activations=["tanh", "sigmoid"])
    x = np.random.default_rng(2).standard_normal((4, 3))
    steps = net.trace(x)
    assert len(steps) == 2
    z1, a1 = steps[0]
    np.testing.assert_allclose(z1, x @ w[0] + b[0], rtol=1e-12)
    np.testing.assert_allclose(a1, np.tanh(z1), rtol=1e-12)
    assert np.array_equal(steps[-1][1], net(x))
    assert net.trace(x[0])[0][0].shape == (5,)


def test_threads_argument():
    net, _, _ = make((30, 40, 5))
    x = np.random.default_rng(3).standard_normal((3000, 30))
    assert np.array_equal(net(x, threads=1), net(x, threads=2))
    with pytest.raises(ValueError, match="threads"):
        net(x, threads=0)
    with pytest.raises(ValueError, match="threads"):
        fastmlp.Network([np.eye(2)], None, "relu", threads=-1)


# -- bad input: clear errors before any compute ------------------------------------------

def err(exc, match, fn, *args, **kwargs):
    with pytest.raises(exc, match=match):
        fn(*args, **kwargs)


def test_layer_chain_mismatch_names_layer_and_sizes():
    err(ValueError, r"layer 1 has 5 inputs.*layer 0 has 4 outputs",
        fastmlp.Network, [np.ones((3, 4)), np.ones((5, 2))], None, "relu")


def test_construction_errors():
    N = fastmlp.Network
    err(ValueError, "at least one layer", N, [], None, "relu")
    err(ValueError, "must be 2-D", N, [np.ones(3)], None, "relu")
    err(ValueError, "at least one input", N, [np.ones((0, 3))], None, "relu")
    err(ValueError, r"bias of layer 0 has shape \(3,\).*expected \(4,\)", N, [np.ones((2, 4))],
        [np.ones(3)], "relu")
    err(ValueError, "got 1 biases for 2 layers", N, [np.ones((2, 2))] * 2, [None], "relu")
    err(ValueError, "NaN or infinity", N, [np.array([[1.0, np.nan]])], None, "relu")
    err(ValueError, "NaN or infinity", N, [np.ones((1, 2))], [[np.inf, 0]], "relu")
    err(ValueError, "got 2 activations for 3 layers", N, [np.eye(2)] * 3, None, ["relu", "tanh"])
    err(ValueError, r"unknown activation 'relu7'; valid names: .*elu.*sigmoid", N, [np.eye(2)],
        None, "relu7")
    err(ValueError, "no parameter 'slope'", N, [np.eye(2)], None, ("leaky_relu", {"slope": 1}))
    err(ValueError, "must be float32 or float64", N, [np.eye(2)], None, "relu", dtype=np.int32)
    err(TypeError, "real numbers", N, [np.eye(2).astype(complex)], None, "relu")
    err(TypeError, "real numbers", N, [[["a", "b"]]], None, "relu")
    err(TypeError, "list or tuple", N, np.ones((2, 2)), None, "relu")


def test_input_errors():
    net, _, _ = make((3, 4, 2))
    err(ValueError, r"input has 4 values per sample but the network takes 3", net, np.ones(4))
    err(ValueError, r"must be 1-D .* or 2-D", net, np.ones((2, 2, 3)))
    err(ValueError, r"must be 1-D .* or 2-D", net, 3.0)
    err(TypeError, "real numbers", net, np.ones(3, dtype=complex))
    err(TypeError, "real numbers", net, ["a", "b", "c"])
    err(TypeError, "real numbers", net, np.array([1, 2, None], dtype=object))
    err(ValueError, "rectangular", net, [[1, 2, 3], [1, 2]])


def test_out_errors():
    net, _, _ = make((3, 4, 2))
    x = np.ones((5, 3))
    err(ValueError, r"out has shape \(5, 3\)", net.forward, x, np.empty((5, 3)))
    err(ValueError, "out has dtype float32", net.forward, x, np.empty((5, 2), np.float32))
    err(ValueError, "C-contiguous", net.forward, x, np.empty((2, 5)).T)
    ro = np.empty((5, 2))
    ro.setflags(write=False)
    err(ValueError, "read-only", net.forward, x, ro)
    err(TypeError, "numpy array", net.forward, x, [[0, 0]] * 5)


def test_nan_and_inf_propagate_as_numpy():
    acts = ["relu", "tanh", "sigmoid", "leaky_relu", "elu", "gelu", "gelu_tanh", "silu",
            "softplus", "identity"]
    for act in acts:
        net = fastmlp.Network([np.eye(3)], None, act)
        out = net([np.nan, np.inf, -np.inf])
        want = forward([np.eye(3)], [np.zeros(3)], [act], np.array([np.nan, np.inf, -np.inf]))
        assert np.isnan(out[0]), act
        np.testing.assert_array_equal(out[1:], want[1:], err_msg=act)
    soft = fastmlp.Network([np.eye(3)], None, "softmax")
    assert np.isnan(soft([np.nan, 0, 1])).all()


# -- regressions of issue 13 (items 4, 7, 8) ------------------------------------------------

def test_huge_thread_counts_are_capped_not_overflowing():
    net = fastmlp.Network([np.ones((3, 2))], None, "relu", threads=2**31)
    x = np.ones((5, 3))
    want = net(x, threads=1)
    for threads in (2**31, 2**63, 10**30):
        assert np.array_equal(net(x, threads=threads), want), threads
        assert np.array_equal(net(x.astype(np.float32), threads=threads), want), threads


def test_weights_that_overflow_float32_are_refused():
    with pytest.raises(ValueError, match="weights of layer 0 holds 1e.300, which overflows float32"):
        fastmlp.Network([np.full((2, 2), 1e300)], None, "identity", dtype="float32")
    with pytest.raises(ValueError, match="bias of layer 0 holds 1e.300, which overflows float32"):
        fastmlp.Network([np.ones((2, 2))], [np.full(2, 1e300)], "identity", dtype="float32")
    net = fastmlp.Network([np.full((2, 2), 1e300)], None, "identity", dtype="float64")
    assert np.isfinite(net.weights[0]).all()


@pytest.mark.parametrize("spec", [("elu", {"alpha": 1e300}),
                                  ("leaky_relu", {"negative_slope": 1e300}),
                                  ("softplus", {"beta": 1e50})])
def test_activation_parameters_that_overflow_float32_are_refused(spec):
    with pytest.raises(ValueError, match=f"{spec[0]} parameter .* overflows float32"):
        fastmlp.Network([np.ones((2, 2), np.float32)], None, spec)
    from reference import activate

    net = fastmlp.Network([np.ones((2, 2))], None, spec, dtype="float64")
    want = activate(spec[0], np.zeros(2), spec[1])  # 0, or log(2) / beta for softplus
    np.testing.assert_allclose(net(np.zeros(2)), want, rtol=1e-15)


def test_init_twice_is_refused_and_changes_nothing():
    net = fastmlp.Network([np.ones((3, 2))], None, "relu")
    before = (net.shapes, net.activations, repr(net))
    with pytest.raises(RuntimeError, match="cannot be initialised twice"):
        net.__init__([np.ones((4, 5))], None, "tanh")
    assert (net.shapes, net.activations, repr(net)) == before
    assert net(np.ones(3)).tolist() == [3.0, 3.0]
