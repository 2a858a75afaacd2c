"""Serve fitted scikit-learn MLPs (``MLPClassifier`` / ``MLPRegressor``) with fastmlp.

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
"""

import numpy as np

from ._chain import require

# scikit-learn's activation names -> fastmlp's.
_ACTIVATIONS = {
    "identity": "identity",
    "logistic": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "softmax": "softmax",
}


def from_sklearn(estimator):
    """A fitted ``MLPClassifier`` -> :class:`MLPClassifierModel`, ``MLPRegressor`` ->
    :class:`MLPRegressorModel`. Each has ``.network`` (the :class:`fastmlp.Network`) and the
    estimator's prediction methods, with the same results."""
    nn = require("sklearn.neural_network", "sklearn", "from_sklearn")
    if not isinstance(estimator, (nn.MLPClassifier, nn.MLPRegressor)):
        raise TypeError(
            f"from_sklearn expects an MLPClassifier or MLPRegressor, got {type(estimator).__name__}"
        )
    if not hasattr(estimator, "coefs_"):
        raise ValueError(f"this {type(estimator).__name__} is not fitted yet")
    network = _network(estimator)
    if isinstance(estimator, nn.MLPClassifier):
        return MLPClassifierModel(network, estimator)
    return MLPRegressorModel(network)


def _network(estimator):
    import fastmlp

    hidden = _activation(estimator.activation, "hidden activation")
    output = _activation(estimator.out_activation_, "output activation")
    n_layers = len(estimator.coefs_)
    activations = [hidden] * (n_layers - 1) + [output]
    return fastmlp.Network(
        estimator.coefs_, estimator.intercepts_, activations, dtype=estimator.coefs_[0].dtype
    )


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
        # scikit-learn estimators take (n_samples, n_features) only; keep that contract
        # rather than the Network's acceptance of a single 1-D sample.
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"expected a 2-D array (n_samples, n_features), got shape {X.shape}")
        return self.network(X)


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

    def __init__(self, network, estimator):
        super().__init__(network)
        self.classes_ = np.array(estimator.classes_, copy=True)
        # 'binary', 'multiclass' or 'multilabel-indicator': decides how outputs become labels.
        self.target_type_ = estimator._label_binarizer.y_type_
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
