"""Load models trained with other frameworks into a :class:`fastmlp.Network`.

Each importer imports its framework only when called, so ``import fastmlp`` stays light:

- :func:`from_sklearn` -- a fitted ``MLPClassifier`` / ``MLPRegressor``, or a Pipeline of
  scalers ending in one
- :func:`from_torch` -- an ``nn.Module`` whose forward is a (residual) chain, read by torch.fx
- :func:`from_keras` -- a Keras 3 Sequential or functional model (residual ``Add`` blocks too)
- :func:`from_onnx` -- an ONNX graph that is a (residual) chain, or a skl2onnx classifier

Every importer copies the weights exactly, keeps per-feature maps, layer norms and residual
blocks as their own steps (see :mod:`fastmlp.interop._chain`) and raises ``ValueError`` naming
the layer or node it cannot represent, and why.
"""
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..network import Network


def from_sklearn(estimator: Any) -> "Network":
    """Wrap a fitted scikit-learn MLP; see :func:`fastmlp.interop.sklearn.from_sklearn`."""
    from .sklearn import from_sklearn as convert

    return convert(estimator)


def from_torch(module: Any) -> "Network":
    """Convert a PyTorch ``nn.Module``; see :func:`fastmlp.interop.torch.from_torch`."""
    from .torch import from_torch as convert

    return convert(module)


def from_keras(model: Any) -> "Network":
    """Convert a Keras 3 model; see :func:`fastmlp.interop.keras.from_keras`."""
    from .keras import from_keras as convert

    return convert(model)


def from_onnx(model: Any) -> "Network":
    """Convert an ONNX model; see :func:`fastmlp.interop.onnx.from_onnx`."""
    from .onnx import from_onnx as convert

    return convert(model)


__all__ = ["from_sklearn", "from_torch", "from_keras", "from_onnx"]
