"""Convert a Keras 3 model (Sequential or a functional chain of Dense layers) to a Network."""

import functools
import inspect

import numpy as np

from ._chain import DenseChain, model_dtype, require

SUPPORTED_LAYERS = (
    "Dense, Activation, ReLU, LeakyReLU, ELU, Softmax, BatchNormalization, Dropout, Identity, "
    "Flatten, InputLayer and nested Sequential / functional models"
)
SUPPORTED_ACTIVATIONS = (
    "linear, relu (without max_value / threshold), leaky_relu, elu, gelu, silu / swish, "
    "softplus, sigmoid, tanh, softmax (last axis)"
)


def from_keras(model):
    """Returns a :class:`fastmlp.Network` computing ``model.predict(x)`` for 2-D ``x``.

    ``model`` is a Keras 3 ``Sequential``, a functional model whose layers form a chain (one
    input, one output, every layer fed by the previous one), or a single layer. Dense kernels
    are (inputs, outputs) already; each Dense's own ``activation`` is kept, and an
    ``Activation`` layer after a linear Dense becomes that layer's activation.
    BatchNormalization (its moving statistics, as at inference) is folded into the adjacent
    Dense; Dropout is a no-op. The dtype is the variables' (float32 or float64). Note that
    Keras 3 itself computes the ops of a float64 model in float32 on its non-TensorFlow
    backends (it promotes like JAX), so there the Network is the more precise of the two.

    Raises ``ValueError`` naming the layer when it cannot be represented.
    """
    keras = require("keras", "keras", "from_keras")
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"from_keras expects a Keras model or layer, got {type(model).__name__}")
    chain = DenseChain()
    dtypes = []
    for layer in _chain_layers(model, keras):
        where = f"layer {layer.name!r} ({type(layer).__name__})"
        if hasattr(layer, "built") and not layer.built:
            raise ValueError(f"{where}: not built yet; call the model on data or build() it")
        _convert(chain, layer, where, keras, dtypes)
    return chain.build(model_dtype(dtypes, "the model"), "the model")


def _chain_layers(model, keras):
    """The model's layers in call order, with nested models expanded."""
    if isinstance(model, keras.Sequential):
        _check_input_rank(model, keras)
        for layer in model.layers:
            yield from _chain_layers(layer, keras)
    elif isinstance(model, keras.Model):
        for op in _functional_chain(model, keras):
            yield from _chain_layers(op, keras)
    else:
        yield model


def _check_input_rank(model, keras):
    try:
        inputs = model.inputs  # an unbuilt Sequential has none yet
    except AttributeError:
        return
    if inputs and len(inputs[0].shape) != 2:
        raise ValueError(
            f"model {model.name!r} takes inputs of shape {tuple(inputs[0].shape)}; fastmlp "
            "networks take (batch, features)"
        )


def _functional_chain(model, keras):
    """Operations from the input to the output of a functional model that is a chain."""
    where = f"model {model.name!r}"
    try:
        inputs, outputs = model.inputs, model.outputs
    except AttributeError:
        raise ValueError(
            f"{where}: a subclassed Model (custom call()) cannot be converted; "
            "use a Sequential or functional model"
        ) from None
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"{where}: has {len(inputs)} inputs and {len(outputs)} outputs; "
                         "only single-input, single-output chains are supported")
    _check_input_rank(model, keras)
    ops = []
    tensor = outputs[0]
    while tensor is not inputs[0]:
        op, node_index, _ = tensor._keras_history
        parents = op._inbound_nodes[node_index].input_tensors
        if len(parents) != 1:
            raise ValueError(f"{where}: operation {op.name!r} ({type(op).__name__}) takes "
                             f"{len(parents)} inputs; only a chain of layers is supported")
        ops.append(op)
        tensor = parents[0]
    return ops[::-1]


def _numpy(variable, keras, dtypes):
    dtypes.append(keras.backend.standardize_dtype(variable.dtype))
    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float64)


def _convert(chain, layer, where, keras, dtypes):
    L = keras.layers
    if _plain(layer, L.Dense):
        if getattr(layer, "quantization_mode", None):
            raise ValueError(f"{where}: quantized ({layer.quantization_mode}) Dense layers "
                             "are not supported")
        bias = _numpy(layer.bias, keras, dtypes) if layer.use_bias else None
        chain.dense(_numpy(layer.kernel, keras, dtypes), bias, where)
        chain.activation(*_activation(layer.activation, where, keras), where)
    elif _plain(layer, L.Activation):
        chain.activation(*_activation(layer.activation, where, keras), where)
    elif _plain(layer, L.BatchNormalization):
        chain.affine(*_batchnorm(layer, where, keras, dtypes), where)
    elif any(_plain(layer, cls) for cls in (L.Dropout, L.InputLayer, L.Identity, L.Flatten)):
        pass  # no-ops at inference (Flatten keeps the batch axis of a 2-D input)
    else:
        chain.activation(*_activation_layer(layer, where, keras), where)


def _plain(layer, cls):
    """True when ``layer`` behaves as ``cls``: a subclass overriding call may do anything."""
    return isinstance(layer, cls) and type(layer).call is cls.call


def _batchnorm(layer, where, keras, dtypes):
    """(scale, shift) at inference: (x - moving_mean) / sqrt(moving_variance + eps) * g + b."""
    if layer.axis not in (-1, 1):
        raise ValueError(f"{where}: normalises axis {layer.axis}, not the features")
    mean = _numpy(layer.moving_mean, keras, dtypes)
    scale = 1.0 / np.sqrt(_numpy(layer.moving_variance, keras, dtypes) + layer.epsilon)
    if layer.scale:
        scale = scale * _numpy(layer.gamma, keras, dtypes)
    shift = -mean * scale
    if layer.center:
        shift = shift + _numpy(layer.beta, keras, dtypes)
    return scale, shift


def _activation_layer(layer, where, keras):
    """(fastmlp name, params) of a dedicated activation layer, or ValueError."""
    L = keras.layers
    if _plain(layer, L.ReLU):
        return _relu(layer.negative_slope, layer.max_value, layer.threshold, where)
    if _plain(layer, L.LeakyReLU):
        return "leaky_relu", {"negative_slope": float(layer.negative_slope)}
    if _plain(layer, L.ELU):
        return "elu", {"alpha": float(layer.alpha)}
    if _plain(layer, L.Softmax):
        return _softmax(layer.axis, where)
    raise ValueError(f"{where}: unsupported layer; supported: {SUPPORTED_LAYERS}")


def _relu(negative_slope, max_value, threshold, where):
    if max_value is not None or threshold != 0:
        raise ValueError(f"{where}: relu with max_value={max_value}, threshold={threshold} "
                         "has no fastmlp equivalent")
    if negative_slope:
        return "leaky_relu", {"negative_slope": float(negative_slope)}
    return "relu", {}


def _softmax(axis, where):
    if axis not in (-1, 1):
        raise ValueError(f"{where}: softmax over axis {axis} is not over the features "
                         "(fastmlp applies softmax over each row)")
    return "softmax", {}


def _activation(fn, where, keras):
    """(fastmlp name, params) of a Keras activation function (maybe a functools.partial)."""
    kwargs = {}
    if isinstance(fn, functools.partial) and not fn.args:
        fn, kwargs = fn.func, dict(fn.keywords)
    A = keras.activations
    convert = {  # each from the function's keyword arguments (defaults filled in)
        A.linear: lambda p: ("identity", {}),
        A.relu: lambda p: _relu(p["negative_slope"], p["max_value"], p["threshold"], where),
        A.leaky_relu: lambda p: ("leaky_relu", {"negative_slope": p["negative_slope"]}),
        A.elu: lambda p: ("elu", {"alpha": p["alpha"]}),
        A.gelu: lambda p: ("gelu_tanh" if p["approximate"] else "gelu", {}),
        A.silu: lambda p: ("silu", {}),
        A.sigmoid: lambda p: ("sigmoid", {}),
        A.tanh: lambda p: ("tanh", {}),
        A.softmax: lambda p: _softmax(p["axis"], where),
        A.softplus: lambda p: ("softplus", _softplus_params(keras)),
    }
    if fn not in convert:
        name = getattr(fn, "__name__", repr(fn))
        raise ValueError(f"{where}: activation {name!r} is not supported; supported: "
                         f"{SUPPORTED_ACTIVATIONS}")
    params = {  # the function's defaults, then the partial's keywords
        name: p.default
        for name, p in inspect.signature(fn).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    unknown = set(kwargs) - set(params)
    if unknown:
        raise ValueError(f"{where}: unknown arguments {sorted(unknown)} for {fn.__name__}")
    params.update(kwargs)
    return convert[fn](params)


def _softplus_params(keras):
    # softplus is log(1 + exp(x)) on every backend but torch, whose F.softplus returns x
    # itself above 20; match the backend the model runs on.
    threshold = 20.0 if keras.backend.backend() == "torch" else float("inf")
    return {"beta": 1.0, "threshold": threshold}


__all__ = ["from_keras"]
