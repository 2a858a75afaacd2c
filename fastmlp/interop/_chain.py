"""Shared by the importers: collect a framework's layer sequence as fastmlp dense layers.

A fastmlp layer is ``f(x @ W + b)`` with one activation ``f``. Framework models are sequences of
three kinds of steps, which map onto that form exactly:

- dense steps (Linear, Dense, Gemm, MatMul) start a new layer. Two in a row leave an identity
  activation between them, which is exact (folding them into one matrix would round differently);
- per-feature affine steps ``x * scale + shift`` (batch normalisation at inference, a bias Add,
  a Mul by a constant vector) fold into the open layer's outputs (``W * scale``, ``b * scale +
  shift``) or, after an activation, into the next layer's inputs (``scale[:, None] * W``,
  ``b + shift @ W``). With no later dense layer to absorb them they become a diagonal layer;
- activations close the open layer. Two activations in a row, or one before any dense layer,
  have no fastmlp form and are refused.

Folding is done in float64 and the result cast to the model's dtype once, so a float32 model
without folds keeps its weights bit for bit.
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


def model_dtype(dtype_names, what):
    """The one dtype, float32 or float64, that all of a model's parameters have (or None)."""
    names = set(dtype_names)
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
    """Accumulates dense layers, per-feature affine maps and activations, in model order."""

    def __init__(self, width=None):
        self._layers = []  # [weights (N, M) float64, bias (M,) float64, (name, params) or None]
        self._pending = None  # (scale, shift) over the next dense layer's inputs
        self.width = width  # features of the current value, when known

    def dense(self, weights, bias, where):
        """Appends ``x @ weights + bias``; ``weights`` is (inputs, outputs)."""
        w = np.array(weights, dtype=np.float64)
        if w.ndim != 2:
            raise ValueError(f"{where}: weights must be 2-D, got shape {w.shape}")
        n, m = w.shape
        if self.width is not None and n != self.width:
            raise ValueError(f"{where}: expects {n} input features but receives {self.width}")
        b = np.zeros(m) if bias is None else self._vector(bias, m, where, "bias")
        if self._pending is not None:
            scale, shift = (self._vector(v, n, where, "folded affine") for v in self._pending)
            b = b + shift @ w
            w = scale[:, None] * w
            self._pending = None
        self._layers.append([w, b, None])
        self.width = m

    def affine(self, scale, shift, where):
        """Applies ``x * scale + shift`` per feature (scalars or vectors; None means 1 / 0)."""
        scale = self._per_feature(1.0 if scale is None else scale, where)
        shift = self._per_feature(0.0 if shift is None else shift, where)
        if self._layers and self._layers[-1][2] is None and self._pending is None:
            layer = self._layers[-1]
            m = layer[0].shape[1]
            scale = self._vector(scale, m, where, "scale")
            shift = self._vector(shift, m, where, "shift")
            layer[0] = layer[0] * scale
            layer[1] = layer[1] * scale + shift
        elif self._pending is None:
            self._pending = (scale, shift)
        else:
            old_scale, old_shift = self._pending
            if scale.size > 1 and old_scale.size > 1 and scale.size != old_scale.size:
                raise ValueError(f"{where}: per-feature constants of different lengths")
            self._pending = (old_scale * scale, old_shift * scale + shift)

    def _per_feature(self, value, where):
        """A scalar, or a vector with one value per feature of the current value."""
        value = np.asarray(value, dtype=np.float64)
        if value.size == 1:
            return value.reshape(())
        if value.ndim != 1 or (self.width is not None and len(value) != self.width):
            expected = f"{self.width} values" if self.width is not None else "a vector"
            raise ValueError(
                f"{where}: expected a per-feature constant ({expected}), got shape {value.shape}"
            )
        return value

    def activation(self, name, params, where):
        """Sets the open layer's activation (``name`` is a fastmlp activation name)."""
        if name == "identity":
            return
        if self._pending is not None:
            self._flush_pending(where)
        if not self._layers:
            raise ValueError(
                f"{where}: {name} before any dense layer cannot be represented "
                "(a fastmlp layer applies its activation after its weights)"
            )
        layer = self._layers[-1]
        if layer[2] is not None:
            raise ValueError(
                f"{where}: {name} right after {layer[2][0]} cannot be represented "
                "(fastmlp applies one activation per dense layer)"
            )
        layer[2] = (name, dict(params or {}))

    def build(self, dtype, what):
        """The fastmlp.Network of everything collected so far."""
        import fastmlp

        if self._pending is not None:
            self._flush_pending(f"the end of {what}")
        if not self._layers:
            raise ValueError(f"{what} has no dense layer (Linear / Dense / Gemm / MatMul)")
        weights, biases, activations = zip(*self._layers)
        activations = [a if a is not None else "identity" for a in activations]
        return fastmlp.Network(list(weights), list(biases), activations, dtype=dtype)

    def _flush_pending(self, where):
        # An affine map with no dense layer to fold into becomes a diagonal layer: the matrix
        # product sums x*s with exact zeros, so for finite x this stays exact.
        scale, shift = self._pending
        width = self.width if self.width is not None else max(scale.size, shift.size)
        if width == 1 and self.width is None:
            raise ValueError(f"{where}: cannot tell how many features a scalar affine map spans")
        self._pending = None
        scale = self._vector(scale, width, where, "scale")
        self._layers.append([np.diag(scale), self._vector(shift, width, where, "shift"), None])
        self.width = width

    @staticmethod
    def _vector(value, length, where, what):
        value = np.asarray(value, dtype=np.float64)
        if value.ndim == 0 or value.shape == (1,):
            return np.full(length, value.reshape(()))
        if value.shape != (length,):
            raise ValueError(f"{where}: {what} has shape {value.shape}, expected ({length},)")
        return value
