"""DenseChain, the importers' shared builder: which maps fold into a dense layer (only a bias-like
add), which become Affine / Activation / Residual steps, and the Networks it builds."""
import numpy as np
import pytest

import fastmlp
from fastmlp.interop._chain import DenseChain, model_dtype


def kinds(chain):
    return [step[0] for step in chain.steps]


def test_a_shift_right_after_a_dense_layer_is_added_to_its_bias():
    chain = DenseChain()
    chain.dense(np.ones((2, 3)), [1.0, 2.0, 3.0], "d")
    chain.affine(None, [0.5, 0.25, 0.0], "add")
    assert kinds(chain) == ["dense"]
    np.testing.assert_array_equal(chain.steps[0][2], [1.5, 2.25, 3.0])


@pytest.mark.parametrize("scale, shift", [(2.0, None), ([1.0, 2.0, 3.0], 1.0)])
def test_a_scale_is_never_folded_into_the_matrix(scale, shift):
    chain = DenseChain()
    chain.dense(np.ones((2, 3)), None, "d")
    chain.affine(scale, shift, "bn")
    assert kinds(chain) == ["dense", "affine"]
    np.testing.assert_array_equal(chain.steps[0][1], np.ones((2, 3)))


def test_activations_close_a_dense_layer_once_then_are_steps():
    chain = DenseChain()
    chain.activation("relu", {}, "a0")  # before any dense layer
    chain.dense(np.eye(2), None, "d")
    chain.activation("identity", {}, "no-op")
    chain.activation("tanh", {}, "a1")
    chain.activation("sigmoid", {}, "a2")  # after another activation
    chain.affine(None, 1.0, "shift")  # after an activation: not a bias any more
    assert kinds(chain) == ["activation", "dense", "activation", "affine"]
    assert chain.steps[1][3] == ("tanh", {})


def test_a_marked_branch_point_is_never_changed_by_later_steps():
    chain = DenseChain()
    chain.dense(np.eye(2), None, "d")
    mark = chain.mark()  # x = the dense layer's output, read again by the residual Add
    chain.activation("relu", {}, "r")
    chain.affine(None, 1.0, "shift")
    assert chain.steps[0][3] is None and not chain.steps[0][2].any()
    chain.residual_since(mark, "add")
    assert kinds(chain) == ["dense", "residual"]
    assert [s[0] for s in chain.steps[1][1]] == ["activation", "affine"]


def test_residual_refusals():
    chain = DenseChain(width=2)
    mark = chain.mark()
    with pytest.raises(ValueError, match="add: the residual branch computes nothing"):
        chain.residual_since(mark, "add")
    chain.dense(np.ones((2, 3)), None, "d")
    with pytest.raises(ValueError, match="maps 2 features to 3"):
        chain.residual_since(mark, "add")


def test_shape_refusals_name_the_step():
    chain = DenseChain(width=4)
    with pytest.raises(ValueError, match="d: expects 3 input features but receives 4"):
        chain.dense(np.ones((3, 2)), None, "d")
    with pytest.raises(ValueError, match=r"bn: expected the scale per feature \(4 values\)"):
        chain.affine(np.ones(3), None, "bn")
    with pytest.raises(ValueError, match="ln: cannot tell how many features"):
        DenseChain().layer_norm(None, None, 1e-5, "ln")
    with pytest.raises(ValueError, match="the model has no dense layer"):
        DenseChain(width=2).build(None, "the model")


def test_dense_only_chains_keep_float32_weights_bit_for_bit():
    w = np.random.default_rng(0).normal(size=(3, 2)).astype(np.float32)
    chain = DenseChain()
    chain.dense(w, None, "d")
    chain.activation("relu", {}, "r")
    net = chain.build(np.dtype(np.float32), "m")
    np.testing.assert_array_equal(net.weights[0], w)
    assert net.activations == ("relu",)


def test_built_steps_compute_what_they_describe():
    rng = np.random.default_rng(1)
    w1, w2 = rng.normal(size=(3, 4)), rng.normal(size=(4, 4))
    scale, gamma = rng.uniform(0.5, 2, 3), rng.uniform(0.5, 2, 4)
    chain = DenseChain()
    chain.affine(scale, -1.0, "scaler")
    chain.dense(w1, None, "d1")
    mark = chain.mark()
    chain.layer_norm(gamma, None, 1e-5, "ln")
    chain.dense(w2, None, "d2")
    chain.activation("tanh", {}, "t")
    chain.residual_since(mark, "add")
    chain.activation("relu", {}, "r")
    net = chain.build(None, "m")
    assert [type(layer).__name__ for layer in net.layers] == [
        "Affine", "Dense", "Residual", "Activation"]
    x = rng.normal(size=(5, 3))
    h = (x * scale - 1.0) @ w1
    n = (h - h.mean(1, keepdims=True)) / np.sqrt(h.var(1, keepdims=True) + 1e-5) * gamma
    np.testing.assert_allclose(net(x), np.maximum(h + np.tanh(n @ w2), 0), rtol=1e-12,
                               atol=1e-12)


def test_a_leading_activation_gets_the_input_width_from_the_first_dense_layer():
    chain = DenseChain()
    chain.activation("relu", {}, "r")
    chain.dense(np.eye(3), None, "d")
    net = chain.build(None, "m")
    assert net.n_inputs == 3
    np.testing.assert_array_equal(net(np.array([[-1.0, 0.5, 2.0]])), [[0.0, 0.5, 2.0]])


def test_model_dtype():
    assert model_dtype(["float32", "float16", "bfloat16"], "m") == np.float32
    assert model_dtype(["float64"], "m") == np.float64 and model_dtype([], "m") is None
    with pytest.raises(ValueError, match="m mixes float32 and float64"):
        model_dtype(["float16", "float64"], "m")
    with pytest.raises(ValueError, match="m has int8 parameters"):
        model_dtype(["int8"], "m")


def test_the_dtype_defaults_to_float64():
    chain = DenseChain()
    chain.dense(np.eye(2), None, "d")
    assert chain.build(None, "m").dtype == np.float64 == fastmlp.Network(
        [np.eye(2)], None, "identity").dtype
