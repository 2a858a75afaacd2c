"""Serve fitted scikit-learn MLPs (``MLPClassifier`` / ``MLPRegressor``, alone or at the end of
a ``Pipeline`` of scalers) with fastmlp.

:func:`from_sklearn` returns a small drop-in model object for both kinds of estimator:

- ``MLPRegressorModel``: ``.network`` outputs ``(n_samples, n_outputs)`` -- always 2-D, also
  for a single output -- while ``.predict`` returns what ``MLPRegressor.predict`` does, which
  ravels a single output to ``(n_samples,)``.
- ``MLPClassifierModel``: ``.network`` outputs the output layer's probabilities (one logistic
  column for a binary problem, one per label for multilabel, a softmax row for multiclass);
  ``.predict_proba``, ``.predict_log_proba`` and ``.predict`` return what the estimator's do,
  with the estimator's ``classes_`` (labels of the original type and dtype).

Neither needs scikit-learn at prediction time, and both pickle. They compute in the dtype the
estimator was fitted in (``coefs_[0].dtype``), so the output is float32 for a model fitted on
float32 data even when ``X`` is float64 (scikit-learn would upcast to float64 there), and
multilabel predictions are a dense indicator matrix even for an estimator fitted on a sparse one.
Input is checked as scikit-learn checks it: 2-D, no NaN or infinity (ValueError), and
scipy.sparse matrices accepted, made dense a bounded block of rows at a time.
"""

import sys

import numpy as np

from ._chain import DenseChain, require

# scikit-learn's activation names -> fastmlp's.
_ACTIVATIONS = {
    "identity": "identity",
    "logistic": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "softmax": "softmax",
}


# The scalers a Pipeline may start with: each is the per-feature map x * scale + shift.
SUPPORTED_STEPS = "StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler"


def from_sklearn(estimator):
    """A fitted ``MLPClassifier`` -> :class:`MLPClassifierModel`, ``MLPRegressor`` ->
    :class:`MLPRegressorModel`. Each has ``.network`` (the :class:`fastmlp.Network`) and the
    estimator's prediction methods, with the same results.

    ``estimator`` may also be a fitted ``Pipeline`` (or ``make_pipeline``) of the scalers in
    :data:`SUPPORTED_STEPS` (and ``"passthrough"`` steps) ending in one of the two; the
    scalers become ``Affine`` steps at the start of the network."""
    nn = require("sklearn.neural_network", "sklearn", "from_sklearn")
    pipeline = require("sklearn.pipeline", "sklearn", "from_sklearn")
    scalers = []
    if isinstance(estimator, pipeline.Pipeline):
        *scalers, (_, estimator) = _fitted_steps(estimator)
    if not isinstance(estimator, (nn.MLPClassifier, nn.MLPRegressor)):
        what = "a Pipeline ending in" if scalers else "an"
        raise TypeError(f"from_sklearn expects {what} MLPClassifier or MLPRegressor, "
                        f"got {type(estimator).__name__}")
    if not hasattr(estimator, "coefs_"):
        raise ValueError(f"this {type(estimator).__name__} is not fitted yet")
    network = _network(estimator, scalers)
    if isinstance(estimator, nn.MLPClassifier):
        target_type = estimator._label_binarizer.y_type_
        return MLPClassifierModel(network, estimator.classes_, target_type)
    return MLPRegressorModel(network)


def _fitted_steps(pipe):
    """The pipeline's (name, estimator) steps, without passthrough ones; the last kept."""
    steps = [(name, step) for name, step in pipe.steps if step not in (None, "passthrough")]
    if not steps:
        raise ValueError("the Pipeline has no steps other than passthrough")
    return steps


def _network(estimator, scalers):
    chain = DenseChain()
    for name, scaler in scalers:
        _scaler(chain, scaler, f"pipeline step {name!r} ({type(scaler).__name__})")
    hidden = _activation(estimator.activation, "hidden activation")
    output = _activation(estimator.out_activation_, "output activation")
    for index, (w, b) in enumerate(zip(estimator.coefs_, estimator.intercepts_)):
        where = f"layer {index} of the {type(estimator).__name__}"
        chain.dense(w, b, where)
        chain.activation(output if index == len(estimator.coefs_) - 1 else hidden, {}, where)
    return chain.build(estimator.coefs_[0].dtype, f"the {type(estimator).__name__}")


def _scaler(chain, scaler, where):
    """Adds a fitted scaler's per-feature map to the chain (as its transform computes it)."""
    import sklearn.preprocessing as pre

    kind = next((cls for cls in (pre.StandardScaler, pre.MinMaxScaler, pre.MaxAbsScaler,
                                 pre.RobustScaler) if type(scaler) is cls), None)
    if kind is None:
        raise ValueError(f"{where}: not supported; a Pipeline may have {SUPPORTED_STEPS} "
                         "steps before its MLPClassifier / MLPRegressor")
    if not hasattr(scaler, "n_features_in_"):
        raise ValueError(f"{where}: not fitted yet")
    if kind is pre.StandardScaler:  # mean_ is fitted even with with_mean=False
        center = scaler.mean_ if scaler.with_mean else None
        divisor = scaler.scale_ if scaler.with_std else None
    elif kind is pre.RobustScaler:
        center = scaler.center_ if scaler.with_centering else None
        divisor = scaler.scale_ if scaler.with_scaling else None
    elif kind is pre.MaxAbsScaler:
        center, divisor = None, scaler.scale_
    else:  # MinMaxScaler: x * scale_ + min_, then clipped to feature_range when clip=True
        chain.affine(scaler.scale_, scaler.min_, where)
        if scaler.clip:
            low, high = scaler.feature_range
            chain.activation("hardtanh", {"min_val": float(low), "max_val": float(high)}, where)
        return
    # (x - center) / divisor as x * (1 / divisor) + (-center / divisor): one rounding apart.
    scale = None if divisor is None else 1.0 / np.asarray(divisor, dtype=np.float64)
    shift = None
    if center is not None:
        shift = -np.asarray(center, dtype=np.float64) * (1.0 if scale is None else scale)
    chain.affine(scale, shift, where)


def _activation(name, what):
    if name not in _ACTIVATIONS:
        raise ValueError(
            f"{what} {name!r} has no fastmlp equivalent; supported: {', '.join(_ACTIVATIONS)}"
        )
    return _ACTIVATIONS[name]


class _MLPModel:
    """What both wrappers share: the Network and the estimator's size attributes."""

    def __init__(self, network):
        self.network = network

    @property
    def n_features_in_(self):
        return self.network.n_inputs

    @property
    def n_outputs_(self):
        return self.network.n_outputs

    def _outputs(self, X):
        """The network's outputs for X, validated as scikit-learn validates it: 2-D, finite,
        and scipy.sparse matrices made dense a bounded block of rows at a time."""
        sparse = sys.modules.get("scipy.sparse")  # X cannot be sparse unless scipy is loaded
        if sparse is not None and sparse.issparse(X):
            return self._sparse_outputs(X.tocsr())
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"expected a 2-D array (n_samples, n_features), got shape {X.shape}")
        rows = _block_rows(X.shape[1])
        for start in range(0, len(X), rows):
            _check_finite(X[start:start + rows])
        return self.network(X)

    def _sparse_outputs(self, X):
        n_samples, n_features = X.shape
        if n_features != self.network.n_inputs:
            raise ValueError(f"X has {n_features} features, but this model is expecting "
                             f"{self.network.n_inputs} features as input")
        _check_finite(X.data)
        out = np.empty((n_samples, self.network.n_outputs), dtype=self.network.dtype)
        rows = _block_rows(n_features)
        for start in range(0, n_samples, rows):
            stop = min(start + rows, n_samples)
            self.network(X[start:stop].toarray(), out=out[start:stop])
        return out


# A block of rows checked for NaN or made dense holds about this many values (8 MiB of float64).
_BLOCK_VALUES = 1 << 20


def _block_rows(n_features):
    return max(1, _BLOCK_VALUES // max(1, n_features))


def _check_finite(values):
    """ValueError, worded as scikit-learn's, when values holds NaN or infinity."""
    if values.dtype.kind not in "fc" or np.isfinite(values).all():
        return
    if np.isnan(values).any():
        raise ValueError("Input X contains NaN.")
    raise ValueError(f"Input X contains infinity or a value too large for {values.dtype!r}.")


class MLPRegressorModel(_MLPModel):
    """Drop-in for a fitted ``MLPRegressor``'s ``predict``; ``.network`` is the Network."""

    def predict(self, X):
        """Like ``MLPRegressor.predict``: ``(n_samples,)`` for one output, else 2-D."""
        y = self._outputs(X)
        return y.ravel() if y.shape[1] == 1 else y

    def __repr__(self):
        return f"MLPRegressorModel({self.network!r})"


class MLPClassifierModel(_MLPModel):
    """Drop-in for a fitted ``MLPClassifier``'s ``predict``, ``predict_proba`` and
    ``predict_log_proba``; ``.network`` is the Network giving the output layer's values."""

    def __init__(self, network, classes, target_type):
        super().__init__(network)
        self.classes_ = np.array(classes, copy=True)
        # 'binary', 'multiclass' or 'multilabel-indicator': decides how outputs become labels.
        self.target_type_ = target_type
        if self.target_type_ not in ("binary", "multiclass", "multilabel-indicator"):
            raise ValueError(f"unsupported classification target type {self.target_type_!r}")

    def predict_proba(self, X):
        """Class probabilities; ``[1 - p, p]`` columns for a binary problem."""
        p = self._outputs(X)
        if self.target_type_ == "binary":
            p = p[:, 0]
            return np.stack([1 - p, p], axis=1)
        return p

    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))

    def predict(self, X):
        """Labels from ``classes_`` (0/1 int indicator matrix for multilabel problems)."""
        p = self._outputs(X)
        # The same decisions as LabelBinarizer.inverse_transform: argmax for multiclass
        # (first maximum on ties), probability > 0.5 otherwise.
        if self.target_type_ == "multiclass":
            return self.classes_[np.argmax(p, axis=1)]
        chosen = (p > 0.5).astype(np.intp)
        if self.target_type_ == "binary":
            return self.classes_[chosen[:, 0]]
        return chosen

    def __repr__(self):
        return (
            f"MLPClassifierModel({self.target_type_}, classes={self.classes_.tolist()!r}, "
            f"{self.network!r})"
        )


__all__ = ["from_sklearn", "MLPClassifierModel", "MLPRegressorModel"]
