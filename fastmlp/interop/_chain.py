"""Shared by the importers: collect a framework's steps as the layer list of a fastmlp.Network.

Framework models are sequences of a few kinds of steps, each kept as the fastmlp layer that
computes it the way the framework does:

- dense steps (Linear, Dense, Gemm, MatMul) become ``Dense`` layers. Two in a row leave an
  identity activation between them (folding them into one matrix would round differently);
- an activation right after a dense step becomes that layer's activation; anywhere else (after
  an affine map, a layer norm, a residual block, another activation) it is an ``Activation``;
- a per-feature shift right after a dense step with no activation yet (a bias Add, as ONNX
  writes ``MatMul`` + ``Add``) is added to that layer's bias. Every other per-feature affine map
  ``x * scale + shift`` (batch normalisation at inference, input scalers, a Mul by a constant)
  stays an ``Affine`` step: folding a scale into a matrix changes the rounding, and an
  identity-like matrix would turn one infinite feature into NaN in every output;
- layer normalisation becomes ``LayerNorm``, ``x + f(x)`` a ``Residual`` of f's steps.

Everything is kept in float64 and cast to the model's dtype once, when the Network is built,
so a float32 model keeps its weights bit for bit. A chain of dense steps only builds
``Network(weights, biases, activations)``; any other step needs :mod:`fastmlp.layers`.
"""

import numpy as np


def require(module_name, extra, feature):
    """Imports a framework, or says which pip command installs it."""
    import importlib

    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"{feature} needs the {module_name.split('.')[0]!r} module, "
            f'which this command installs: pip install "fastmlp[{extra}]"'
        ) from exc


# Reduced-precision parameters are read exactly into float32, which holds every value of both.
_WIDENED = {"float16": "float32", "bfloat16": "float32"}


def model_dtype(dtype_names, what):
    """The one dtype, float32 or float64, a model's parameters have (or None when it has none);
    float16 and bfloat16 parameters count as float32."""
    names = {_WIDENED.get(name, name) for name in dtype_names}
    unsupported = sorted(names - {"float32", "float64"})
    if unsupported:
        raise ValueError(
            f"{what} has {', '.join(unsupported)} parameters; fastmlp computes in float32 or "
            "float64 (convert the model to one of them first)"
        )
    if len(names) > 1:
        raise ValueError(f"{what} mixes float32 and float64 parameters; convert it to one dtype")
    return np.dtype(names.pop()) if names else None


class DenseChain:
    """Accumulates a model's steps in order; :meth:`build` makes the Network.

    ``steps`` is the list collected so far, each a tuple naming its kind:
    ``("dense", weights (N, M), bias (M,), activation or None)``, ``("affine", scale, shift)``,
    ``("layernorm", weight, bias, eps, width)``, ``("activation", activation)`` and
    ``("residual", steps)``; an activation is a ``(name, params)`` pair.
    """

    def __init__(self, width=None):
        self.steps = []
        self.width = width  # features of the current value, when known
        self.n_inputs = width
        self._sealed = 0  # steps before this index are read by a residual Add: never changed

    def dense(self, weights, bias, where):
        """Appends ``x @ weights + bias``; ``weights`` is (inputs, outputs)."""
        w = np.array(weights, dtype=np.float64)
        if w.ndim != 2:
            raise ValueError(f"{where}: weights must be 2-D, got shape {w.shape}")
        n, m = w.shape
        if self.width is not None and n != self.width:
            raise ValueError(f"{where}: expects {n} input features but receives {self.width}")
        b = np.zeros(m) if bias is None else _vector(bias, m, where, "bias")
        self.steps.append(["dense", w, b, None])
        self.width = m

    def affine(self, scale, shift, where):
        """Applies ``x * scale + shift`` per feature (scalars or vectors; None means 1 / 0)."""
        scale = None if scale is None else self._per_feature(scale, where, "scale")
        shift = None if shift is None else self._per_feature(shift, where, "shift")
        if scale is not None and shift is not None and scale.size > 1 and shift.size > 1 \
                and scale.size != shift.size:
            raise ValueError(f"{where}: scale and shift have {scale.size} and {shift.size} values")
        if scale is None and shift is None:
            return
        dense = self._open_dense()
        if scale is None and dense is not None:
            dense[2] = dense[2] + _vector(shift, dense[1].shape[1], where, "shift")
            return
        self.steps.append(("affine", scale, shift))
        if self.width is None:
            self.width = next((v.size for v in (scale, shift) if v is not None and v.size > 1),
                              None)

    def layer_norm(self, weight, bias, eps, where):
        """Normalises each row over its features, then ``* weight + bias`` (None: 1 / 0)."""
        weight = None if weight is None else self._per_feature(weight, where, "weight", vector=True)
        bias = None if bias is None else self._per_feature(bias, where, "bias", vector=True)
        width = next((v.size for v in (weight, bias) if v is not None), self.width)
        if width is None:
            raise ValueError(f"{where}: cannot tell how many features it normalises")
        self.width = width
        self.steps.append(("layernorm", weight, bias, float(eps), width))

    def activation(self, name, params, where):
        """Applies an activation (``name`` is a fastmlp activation name)."""
        if name == "identity":
            return
        spec = (name, dict(params or {}))
        dense = self._open_dense()
        if dense is not None:
            dense[3] = spec
        else:
            self.steps.append(("activation", spec))

    def mark(self):
        """Where a residual branch starts: the steps so far are sealed (nothing later folds
        into them), and the position is returned for :meth:`residual_since`."""
        self._sealed = len(self.steps)
        return len(self.steps), self.width

    def residual_since(self, mark, where):
        """Turns the steps after ``mark`` into ``x + f(x)``, x the value at ``mark``."""
        start, width = mark
        body = self.steps[start:]
        if not body:
            raise ValueError(f"{where}: the residual branch computes nothing (x + x)")
        if width is not None and self.width is not None and width != self.width:
            raise ValueError(f"{where}: the residual branch maps {width} features to "
                             f"{self.width}; x + f(x) needs the same width")
        del self.steps[start:]
        self.steps.append(("residual", body))
        self.width = width if width is not None else self.width
        self._sealed = len(self.steps)

    def _open_dense(self):
        """The last step when it is a dense layer with no activation yet that may still change."""
        if len(self.steps) > self._sealed and self.steps[-1][0] == "dense" \
                and self.steps[-1][3] is None:
            return self.steps[-1]
        return None

    def _per_feature(self, value, where, what, vector=False):
        """A scalar (unless ``vector``), or one value per feature of the current value."""
        value = np.array(value, dtype=np.float64)
        if value.size == 1 and not vector:
            return value.reshape(())
        if value.ndim == 2 and value.shape[0] == 1:
            value = value[0]
        if value.ndim != 1 or (self.width is not None and len(value) != self.width):
            expected = f"{self.width} values" if self.width is not None else "a vector"
            raise ValueError(
                f"{where}: expected the {what} per feature ({expected}), got shape {value.shape}"
            )
        return value

    def build(self, dtype, what):
        """The fastmlp.Network of everything collected so far (float64 when dtype is None)."""
        import fastmlp

        if not any(step[0] == "dense" for step in _flat(self.steps)):
            raise ValueError(f"{what} has no dense layer (Linear / Dense / Gemm / MatMul)")
        dtype = np.dtype(np.float64) if dtype is None else dtype
        if all(step[0] == "dense" for step in self.steps):
            weights, biases, activations = zip(*(step[1:] for step in self.steps))
            activations = [a if a is not None else "identity" for a in activations]
            return fastmlp.Network(list(weights), list(biases), activations, dtype=dtype)
        layers = _layers(self.steps)
        # An Activation / Residual / scalar Affine first does not tell the width: say it.
        n_inputs = None if _width_of(self.steps[0]) else (
            self.n_inputs or _input_width(self.steps))
        return fastmlp.Network(layers, dtype=dtype, n_inputs=n_inputs)


def _width_of(step):
    """The input width a step shows the Network, or None."""
    kind = step[0]
    if kind == "dense":
        return step[1].shape[0]
    if kind == "affine":
        return next((v.size for v in step[1:] if v is not None and v.ndim == 1), None)
    if kind == "layernorm":
        return step[4]
    return None


def _input_width(steps):
    """The model's input width, from the first step that tells it (all before keep it)."""
    for step in steps:
        width = _width_of(step) if step[0] != "residual" else _input_width(step[1])
        if width is not None:
            return width
    raise ValueError("cannot tell how many inputs the model takes")


def _flat(steps):
    for step in steps:
        yield step
        if step[0] == "residual":
            yield from _flat(step[1])


def _layers(steps):
    """fastmlp.layers objects for a list of steps."""
    from fastmlp import layers

    built = []
    for step in steps:
        kind = step[0]
        if kind == "dense":
            built.append(layers.Dense(step[1], step[2], step[3] or "identity"))
        elif kind == "affine":
            built.append(layers.Affine(scale=step[1], shift=step[2]))
        elif kind == "layernorm":
            built.append(layers.LayerNorm(step[1], step[2], eps=step[3], width=step[4]))
        elif kind == "activation":
            built.append(layers.Activation(step[1]))
        else:
            built.append(layers.Residual(_layers(step[1])))
    return built


def _vector(value, length, where, what):
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 0 or value.shape == (1,):
        return np.full(length, value.reshape(()))
    if value.shape != (length,):
        raise ValueError(f"{where}: {what} has shape {value.shape}, expected ({length},)")
    return value
