"""from_keras on Keras 3 (torch backend): activations, layers, folding, chains, refusals."""
import functools
import os

import numpy as np
import pytest

os.environ["KERAS_BACKEND"] = "torch"  # before keras is first imported
pytest.importorskip("torch")
keras = pytest.importorskip("keras")
from keras import layers  # noqa: E402

import fastmlp  # noqa: E402
from fastmlp.interop import from_keras  # noqa: E402

DTYPES = ["float32", "float64"]


def need(*names):
    """Skips until the core has these activations (they land on main from another branch)."""
    missing = sorted(set(names) - set(fastmlp.activation_names()))
    if missing:
        pytest.skip(f"this fastmlp core lacks {', '.join(missing)}")
# Keras' own convert_to_numpy calls np.array(torch tensor), which numpy 2 flags.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy")


def check(model, dtype="float32", scale=3.0):
    """Converts ``model`` and compares it with Keras (inference) on random inputs."""
    net = from_keras(model)
    assert net.dtype == np.dtype(dtype)
    x = (np.random.default_rng(0).normal(size=(64, net.n_inputs)) * scale).astype(dtype)
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    # Keras 3 promotes float64 to float32 in its ops on non-TensorFlow backends (as JAX does),
    # so even a float64 model agrees with Keras to float32 precision only; the float64 weights
    # themselves are kept exactly (test_float64_weights_are_kept_exactly).
    tol = 1e-5
    np.testing.assert_allclose(net(x), expected, rtol=tol, atol=tol * np.abs(expected).max())
    return net


def sequential(*stack, n_inputs=5, dtype="float32"):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((n_inputs,), dtype=dtype), *stack])


ACTIVATIONS = [
    ("linear", "identity", {}),
    ("relu", "relu", {}),
    ("sigmoid", "sigmoid", {}),
    ("tanh", "tanh", {}),
    ("softmax", "softmax", {}),
    ("elu", "elu", {"alpha": 1.0}),
    ("gelu", "gelu", {}),
    ("silu", "silu", {}),
    ("swish", "silu", {}),
    ("softplus", "softplus", {"beta": 1.0, "threshold": 20.0}),  # torch backend's softplus
    ("leaky_relu", "leaky_relu", {"negative_slope": 0.2}),  # Keras 3's default
    (functools.partial(keras.activations.leaky_relu, negative_slope=0.05), "leaky_relu",
     {"negative_slope": 0.05}),
    (functools.partial(keras.activations.relu, negative_slope=0.1), "leaky_relu",
     {"negative_slope": 0.1}),
    (functools.partial(keras.activations.elu, alpha=0.3), "elu", {"alpha": 0.3}),
    (functools.partial(keras.activations.gelu, approximate=True), "gelu_tanh", {}),
    (functools.partial(keras.activations.softmax, axis=1), "softmax", {}),
    ("selu", "selu", {}),
    ("celu", "celu", {"alpha": 1.0}),
    (functools.partial(keras.activations.celu, alpha=0.6), "celu", {"alpha": 0.6}),
    ("mish", "mish", {}),
    ("softsign", "softsign", {}),
    ("relu6", "relu6", {}),
    ("hard_sigmoid", "hardsigmoid", {"alpha": 1 / 6, "beta": 0.5}),
    ("hard_silu", "hardswish", {}),
    ("hard_swish", "hardswish", {}),
    ("log_softmax", "log_softmax", {}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation, name, params", ACTIVATIONS, ids=lambda v: str(v)[:40])
def test_dense_activations(dtype, activation, name, params):
    need(name)
    model = sequential(layers.Dense(7, activation=activation, dtype=dtype),
                       layers.Dense(3, dtype=dtype), layers.Activation(activation, dtype=dtype),
                       dtype=dtype)
    net = check(model, dtype, scale=10.0)  # large inputs reach softplus' threshold
    assert net.activations == (name, name)
    assert net.activation_params[0] == (params or fastmlp.ACTIVATION_DEFAULTS[name])


ACTIVATION_LAYERS = [
    (layers.ReLU(), "relu", {}),
    (layers.ReLU(negative_slope=0.25), "leaky_relu", {"negative_slope": 0.25}),
    (layers.LeakyReLU(), "leaky_relu", {"negative_slope": 0.3}),
    (layers.LeakyReLU(negative_slope=0.1), "leaky_relu", {"negative_slope": 0.1}),
    (layers.ELU(alpha=0.5), "elu", {"alpha": 0.5}),
    (layers.Softmax(), "softmax", {}),
    (layers.Softmax(axis=1), "softmax", {}),
    (layers.ReLU(max_value=6.0), "hardtanh", {"min_val": 0.0, "max_val": 6.0}),
]


@pytest.mark.parametrize("layer, name, params", ACTIVATION_LAYERS, ids=lambda v: str(v)[:30])
def test_activation_layers(layer, name, params):
    need(name)
    net = check(sequential(layers.Dense(6), layer, layers.Dense(2)))
    assert net.activations == (name, "identity")
    assert net.activation_params[0] == (params or fastmlp.ACTIVATION_DEFAULTS[name])


@pytest.mark.parametrize("dtype", DTYPES)
def test_prelu_layer_has_one_slope_per_feature(dtype):
    need("prelu")
    prelu = layers.PReLU(alpha_initializer=keras.initializers.RandomUniform(0.0, 0.5),
                         dtype=dtype)
    net = check(sequential(layers.Dense(6, dtype=dtype), prelu, layers.Dense(2, dtype=dtype),
                           dtype=dtype), dtype)
    np.testing.assert_array_equal(net.activation_params[0]["slope"],
                                  prelu.alpha.numpy().astype(dtype))


def randomized(bn, n):
    bn.build((None, n))
    rng = np.random.default_rng(n)
    values = {"gamma": rng.uniform(0.5, 1.5, n), "beta": rng.uniform(-0.5, 0.5, n),
              "moving_mean": rng.uniform(-1, 1, n), "moving_variance": rng.uniform(0.5, 1.5, n)}
    for name, value in values.items():
        variable = getattr(bn, name, None)
        if variable is not None:
            variable.assign(value.astype(variable.dtype))
    return bn


@pytest.mark.parametrize("dtype", DTYPES)
def test_batchnormalization_folding(dtype):
    def bn(n, **kw):
        return randomized(layers.BatchNormalization(dtype=dtype, **kw), n)

    model = sequential(
        bn(5), layers.Dense(6, dtype=dtype), bn(6, epsilon=0.1), layers.Activation("tanh"),
        bn(6, center=False), bn(6, scale=False), layers.Dense(4, activation="relu", dtype=dtype),
        bn(4), dtype=dtype)
    net = check(model, dtype)
    # Each BatchNormalization an Affine step: never folded into a matrix.
    assert net.shapes == [(5, 6), (6, 4)]
    assert [type(layer).__name__ for layer in net.layers].count("Affine") == 5


@pytest.mark.parametrize("dtype", DTYPES)
def test_functional_chain_with_no_op_layers(dtype):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((4,), dtype=dtype)
    h = layers.Flatten()(inputs)
    h = layers.Dense(8, use_bias=False, dtype=dtype)(h)
    h = layers.Dropout(0.5)(h)
    h = layers.Activation("gelu")(h)
    h = layers.Identity()(h)
    outputs = layers.Dense(3, activation="softmax", dtype=dtype)(h)
    net = check(keras.Model(inputs, outputs), dtype)
    assert net.activations == ("gelu", "softmax")
    assert not net.biases[0].any()


def test_nested_models_and_a_shared_layer():
    keras.utils.set_random_seed(2)
    inputs = keras.Input((4,))
    shared = layers.Dense(4, activation="tanh")
    inner = keras.Model(inputs, shared(shared(inputs)))  # the same layer applied twice
    model = sequential(inner, keras.Sequential([layers.Dense(3), layers.ELU()]), n_inputs=4)
    net = check(model)
    assert net.activations == ("tanh", "tanh", "elu")
    np.testing.assert_array_equal(net.weights[0], net.weights[1])


def test_float64_weights_are_kept_exactly():
    model = sequential(layers.Dense(3, dtype="float64"), layers.Dense(2, use_bias=False,
                                                                      dtype="float64"),
                       dtype="float64")
    net = from_keras(model)
    assert net.dtype == np.float64
    for got, variable in zip([net.weights[0], net.biases[0], net.weights[1]], model.weights):
        expected = keras.ops.convert_to_numpy(variable.value)
        assert expected.dtype == np.float64 and np.array_equal(got, expected)


def test_kernel_is_copied_without_transposing():
    model = sequential(layers.Dense(3), n_inputs=2)
    net = from_keras(model)
    kernel = keras.ops.convert_to_numpy(model.layers[0].kernel.value)
    np.testing.assert_array_equal(net.weights[0], kernel)


def test_a_single_dense_layer():
    layer = layers.Dense(2, activation="sigmoid")
    layer.build((None, 3))
    net = from_keras(layer)
    assert net.shapes == [(3, 2)] and net.activations == ("sigmoid",)


def refusal(model, *fragments):
    with pytest.raises(ValueError) as info:
        from_keras(model)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_refuses_unsupported_activations_listing_the_supported():
    refusal(sequential(layers.Dense(3, activation="sparse_plus", name="d1")),
            "layer 'd1' (Dense): activation 'sparse_plus' is not supported",
            "supported: linear, relu")
    refusal(sequential(layers.Dense(3), layers.Activation(lambda x: x * 2, name="a1")),
            "layer 'a1' (Activation)", "'<lambda>' is not supported")
    refusal(sequential(layers.Dense(3), layers.ReLU(max_value=6.0, negative_slope=0.1,
                                                    name="r6")), "layer 'r6' (ReLU)",
            "max_value=6.0")
    refusal(sequential(layers.Dense(3), layers.Activation(
        functools.partial(keras.activations.relu, threshold=1.0))), "threshold=1.0")
    refusal(sequential(layers.Dense(3), layers.Softmax(axis=0, name="s0")), "layer 's0'",
            "axis 0")


def test_refuses_unsupported_layers_and_compositions():
    refusal(sequential(layers.Dense(3), layers.UnitNormalization(name="un")),
            "layer 'un' (UnitNormalization): unsupported layer", "supported: Dense")
    refusal(sequential(layers.Dense(3), layers.ReLU(threshold=0.5, name="r")),
            "layer 'r'", "threshold=0.5")
    refusal(sequential(layers.Dense(3), layers.Activation("log_softmax", name="l"),
                       layers.Softmax(axis=0, name="s")), "layer 's'", "axis 0")


def test_refuses_non_chains():
    inputs = keras.Input((4,))
    a, b = layers.Dense(3)(inputs), layers.Dense(3)(inputs)
    refusal(keras.Model(inputs, layers.Add(name="add")([a, b])),
            "operation 'add' (Add) adds two branches")
    refusal(keras.Model(inputs, [a, b]), "1 inputs and 2 outputs")
    second = keras.Input((4,))
    refusal(keras.Model([inputs, second], layers.Concatenate()([inputs, second])),
            "2 inputs and 1 outputs")
    refusal(keras.Model(inputs, layers.Dense(2)(keras.ops.relu(layers.Dense(3)(inputs)))),
            "unsupported layer")


def test_refuses_subclassed_unbuilt_and_higher_rank_models():
    class Custom(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(2)

        def call(self, x):
            return self.dense(x) * 2

    custom = Custom()
    custom(np.zeros((1, 3), "float32"))
    refusal(custom, "subclassed Model")
    refusal(keras.Sequential([layers.Dense(2, name="lazy")]), "layer 'lazy'", "not built")
    refusal(keras.Sequential([keras.Input((3, 4)), layers.Dense(2)]),
            "inputs of shape (None, 3, 4)")
    with pytest.raises(TypeError, match="Keras model or layer"):
        from_keras("model.keras")


def test_half_precision_is_read_as_float32():
    model = sequential(layers.Dense(4, activation="relu", dtype="float16"),
                       layers.Dense(2, dtype="float16"), dtype="float16")
    net = from_keras(model)
    assert net.dtype == np.float32
    np.testing.assert_array_equal(net.weights[0], model.layers[0].kernel.numpy().astype("f4"))


def test_top_level_name():
    assert fastmlp.from_keras(sequential(layers.Dense(2))).shapes == [(5, 2)]


# -- input scaling, layer normalisation, residual blocks, training-only layers -----------

@pytest.mark.parametrize("dtype", DTYPES)
def test_normalization_and_rescaling_inputs_on_real_data(dtype):
    from sklearn.datasets import load_breast_cancer

    X, _ = load_breast_cancer(return_X_y=True)
    X = X.astype(dtype)
    norm = layers.Normalization(dtype=dtype)
    norm.adapt(X)
    inverse = layers.Normalization(invert=True, dtype=dtype)
    inverse.adapt(X[:, :8])
    model = sequential(norm, layers.Dense(8, activation="tanh", dtype=dtype), inverse,
                       layers.Rescaling(0.01, offset=0.5, dtype=dtype),
                       layers.Dense(2, activation="softmax", dtype=dtype),
                       n_inputs=X.shape[1], dtype=dtype)
    net = from_keras(model)
    expected = keras.ops.convert_to_numpy(model(X, training=False))
    np.testing.assert_allclose(net(X), expected, rtol=1e-5, atol=1e-6)
    assert [type(layer).__name__ for layer in net.layers][:2] == ["Affine", "Dense"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_normalization(dtype):
    keras.utils.set_random_seed(3)
    model = sequential(layers.Dense(6, dtype=dtype),
                       randomized_ln(layers.LayerNormalization(dtype=dtype), 6),
                       layers.Activation("relu", dtype=dtype),
                       randomized_ln(layers.LayerNormalization(epsilon=0.1, center=False,
                                                               dtype=dtype), 6),
                       layers.LayerNormalization(scale=False, dtype=dtype),
                       layers.Dense(2, dtype=dtype), dtype=dtype)
    net = check(model, dtype)
    assert [type(layer).__name__ for layer in net.layers].count("LayerNorm") == 3


def randomized_ln(ln, n):
    ln.build((None, n))
    rng = np.random.default_rng(n)
    for variable in (getattr(ln, "gamma", None), getattr(ln, "beta", None)):
        if variable is not None:
            variable.assign(rng.uniform(0.5, 1.5, n).astype(variable.dtype))
    return ln


@pytest.mark.parametrize("dtype", DTYPES)
def test_residual_blocks_and_training_only_layers(dtype):
    keras.utils.set_random_seed(4)
    inputs = keras.Input((5,), dtype=dtype)
    x = layers.Dense(8, activation="relu", dtype=dtype)(inputs)
    x = layers.GaussianNoise(0.3)(x)
    for _ in range(2):
        h = layers.LayerNormalization(dtype=dtype)(x)
        h = layers.Dense(16, activation="gelu", dtype=dtype)(h)
        h = layers.GaussianDropout(0.2)(h)
        h = layers.AlphaDropout(0.1)(layers.ActivityRegularization(0.01)(h))
        x = layers.Add()([x, layers.Dense(8, dtype=dtype)(h)])
    inner = layers.Dense(8, activation="tanh", dtype=dtype)(x)
    x = layers.Add()([layers.Add()([inner, layers.Dense(8, dtype=dtype)(inner)]), x])  # nested
    outputs = layers.Dense(3, activation="softmax", dtype=dtype)(x)
    net = check(keras.Model(inputs, outputs), dtype)
    assert [type(layer).__name__ for layer in net.layers].count("Residual") == 3
