"""Convert a Keras 3 model (Sequential, or a functional chain of layers with residual ``Add``
blocks) to a Network."""

import functools
import inspect

import numpy as np

from ._chain import DenseChain, model_dtype, require

SUPPORTED_LAYERS = (
    "Dense, Activation, ReLU, LeakyReLU, PReLU, ELU, Softmax, BatchNormalization, "
    "LayerNormalization, Normalization (adapted), Rescaling, Add (x + f(x)), Dropout, "
    "GaussianNoise, GaussianDropout, AlphaDropout, SpatialDropout, ActivityRegularization, "
    "Identity, Flatten, InputLayer and nested Sequential / functional models"
)
SUPPORTED_ACTIVATIONS = (
    "linear, relu (without threshold), relu6, leaky_relu, elu, celu, selu, gelu, silu / swish, "
    "mish, softplus, softsign, sigmoid, hard_sigmoid, hard_silu / hard_swish, tanh, softmax and "
    "log_softmax (last axis)"
)
# Layers that only act in training: identities at inference.
_INFERENCE_NO_OPS = ("Dropout", "InputLayer", "Identity", "Flatten", "GaussianNoise",
                     "GaussianDropout", "AlphaDropout", "ActivityRegularization",
                     "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D")


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
    _convert_all(chain, _chain_layers(model, keras), keras, dtypes)
    return chain.build(model_dtype(dtypes, "the model"), "the model")


def _convert_all(chain, items, keras, dtypes):
    for item in items:
        if isinstance(item, _Residual):
            mark = chain.mark()
            _convert_all(chain, item.body, keras, dtypes)
            chain.residual_since(mark, f"layer {item.add.name!r} (Add)")
            continue
        where = f"layer {item.name!r} ({type(item).__name__})"
        if hasattr(item, "built") and not item.built:
            raise ValueError(f"{where}: not built yet; call the model on data or build() it")
        _convert(chain, item, where, keras, dtypes)


class _Residual:
    """``Add()([x, f(x)])``: ``body`` the layers of f, in call order."""

    def __init__(self, body, add):
        self.body, self.add = body, add


def _chain_layers(model, keras):
    """The model's layers in call order, with nested models expanded."""
    if isinstance(model, keras.Sequential):
        _check_input_rank(model, keras)
        for layer in model.layers:
            yield from _chain_layers(layer, keras)
    elif isinstance(model, keras.Model):
        yield from _expand(_functional_chain(model, keras), keras)
    else:
        yield model


def _expand(items, keras):
    for item in items:
        if isinstance(item, _Residual):
            yield _Residual(list(_expand(item.body, keras)), item.add)
        else:
            yield from _chain_layers(item, keras)


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
    return _walk_back(outputs[0], inputs[0], where, keras)


class _Unreachable(Exception):
    """The walk back from a tensor met the model input before the tensor it looked for."""


def _walk_back(tensor, stop, where, keras, model_input=None):
    """The operations from ``stop`` to ``tensor``, in call order; Add([x, f(x)]) as _Residual."""
    model_input = stop if model_input is None else model_input
    items = []
    while tensor is not stop:
        if tensor is model_input:
            raise _Unreachable()
        op, node_index, _ = tensor._keras_history
        parents = op._inbound_nodes[node_index].input_tensors
        if len(parents) == 1:
            items.append(op)
            tensor = parents[0]
            continue
        if _plain(op, keras.layers.Add) and len(parents) == 2:
            for skip, body in (parents, parents[::-1]):
                try:
                    inner = _walk_back(body, skip, where, keras, model_input)
                except _Unreachable:
                    continue
                items.append(_Residual(inner, op))
                tensor = skip
                break
            else:
                raise ValueError(f"{where}: operation {op.name!r} (Add) adds two branches, "
                                 "not x + f(x); only chains and residual blocks are supported")
            continue
        raise ValueError(f"{where}: operation {op.name!r} ({type(op).__name__}) takes "
                         f"{len(parents)} inputs; only a chain of layers (and residual Adds) "
                         "is supported")
    return items[::-1]


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
    elif _plain(layer, L.LayerNormalization):
        _layer_norm(chain, layer, where, keras, dtypes)
    elif _plain(layer, L.Normalization):
        chain.affine(*_normalization(layer, where, keras, dtypes), where)
    elif _plain(layer, L.Rescaling):
        chain.affine(_constant(layer.scale, keras), _constant(layer.offset, keras), where)
    elif _plain(layer, L.PReLU):
        chain.activation("prelu", {"slope": _slope(layer, where, keras, dtypes)}, where)
    elif any(_plain(layer, getattr(L, name)) for name in _INFERENCE_NO_OPS):
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


def _features_axis(axis, where):
    axis = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
    if axis not in ((-1,), (1,)):
        raise ValueError(f"{where}: works over axis {axis}, not the features")


def _layer_norm(chain, layer, where, keras, dtypes):
    """(x - mean) / sqrt(var + epsilon) * gamma + beta over each row's features."""
    _features_axis(layer.axis, where)
    if getattr(layer, "rms_scaling", False):
        raise ValueError(f"{where}: rms_scaling=True is not supported")
    gamma = _numpy(layer.gamma, keras, dtypes) if layer.scale else None
    beta = _numpy(layer.beta, keras, dtypes) if layer.center else None
    chain.layer_norm(gamma, beta, layer.epsilon, where)


def _normalization(layer, where, keras, dtypes):
    """(scale, shift) of an adapted Normalization: (x - mean) / max(sqrt(var), epsilon)."""
    _features_axis(layer.axis, where)
    if getattr(layer, "mean", None) is None:
        raise ValueError(f"{where}: not adapted yet (call adapt() or give mean and variance)")
    mean = _constant(layer.mean, keras).reshape(-1)
    deviation = np.maximum(np.sqrt(_constant(layer.variance, keras).reshape(-1)),
                           keras.backend.epsilon())
    dtypes.append(keras.backend.standardize_dtype(layer.dtype))
    if layer.invert:
        return deviation, mean
    return 1.0 / deviation, -mean / deviation


def _constant(value, keras):
    """A layer's constant (a number, list, tensor or variable) as float64 numpy."""
    if not isinstance(value, (int, float, list, tuple)):
        value = keras.ops.convert_to_numpy(value)
    return np.asarray(value, dtype=np.float64)


def _slope(layer, where, keras, dtypes):
    if layer.shared_axes:
        raise ValueError(f"{where}: shared_axes={layer.shared_axes} on (batch, features) input")
    slope = _numpy(layer.alpha, keras, dtypes).reshape(-1)
    return float(slope[0]) if slope.size == 1 else slope


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
    if threshold != 0 or (max_value is not None and negative_slope):
        raise ValueError(f"{where}: relu with max_value={max_value}, threshold={threshold}, "
                         f"negative_slope={negative_slope} has no fastmlp equivalent")
    if max_value is not None:  # min(max(x, 0), max_value)
        return "hardtanh", {"min_val": 0.0, "max_val": float(max_value)}
    if negative_slope:
        return "leaky_relu", {"negative_slope": float(negative_slope)}
    return "relu", {}


def _softmax(axis, where, name="softmax"):
    if axis not in (-1, 1):
        raise ValueError(f"{where}: {name} over axis {axis} is not over the features "
                         f"(fastmlp applies {name} over each row)")
    return name, {}


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
        A.selu: lambda p: ("selu", {}),
        A.celu: lambda p: ("celu", {"alpha": p["alpha"]}),
        A.mish: lambda p: ("mish", {}),
        A.softsign: lambda p: ("softsign", {}),
        A.relu6: lambda p: ("relu6", {}),
        A.hard_sigmoid: lambda p: ("hardsigmoid", {"alpha": 1.0 / 6.0, "beta": 0.5}),
        A.hard_silu: lambda p: ("hardswish", {}),
        A.log_softmax: lambda p: _softmax(p["axis"], where, "log_softmax"),
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
