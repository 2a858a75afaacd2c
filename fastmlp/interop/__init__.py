"""Load models trained with other frameworks into a :class:`fastmlp.Network`.

Each importer imports its framework only when called, so ``import fastmlp`` stays light:

- :func:`from_sklearn` -- a fitted ``MLPClassifier`` / ``MLPRegressor``
- :func:`from_torch` -- an ``nn.Sequential`` of ``nn.Linear`` and activations
- :func:`from_keras` -- a Keras 3 Sequential or functional chain of ``Dense`` layers
- :func:`from_onnx` -- an ONNX graph that is a chain of Gemm / MatMul + Add and activations

Every importer copies the weights exactly (the only arithmetic is the folding of batch
normalisation and similar per-feature affine maps into the adjacent dense layer) and raises
``ValueError`` naming the layer or node it cannot represent, and why.
"""
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..network import Network


def from_sklearn(estimator: Any) -> "Network":
    """Wrap a fitted scikit-learn MLP; see :func:`fastmlp.interop.sklearn.from_sklearn`."""
    from .sklearn import from_sklearn as convert

    return convert(estimator)


def from_torch(module: Any) -> "Network":
    """Convert a PyTorch ``nn.Sequential``; see :func:`fastmlp.interop.torch.from_torch`."""
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
