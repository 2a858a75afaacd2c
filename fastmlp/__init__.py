"""fastmlp: the forward pass of fully connected networks, in compiled code.

    >>> import fastmlp, numpy as np
    >>> net = fastmlp.Network([np.ones((3, 4)), np.ones((4, 2))], None, ["relu", "identity"])
    >>> net(np.ones(3)).tolist()
    [12.0, 12.0]
"""
import os as _os

from . import _core
from ._activations import ACTIVATION_DEFAULTS, activation_names
from .layers import Activation, Affine, Dense, LayerNorm, Residual
from .network import Network

__version__ = "0.1.0"
__all__ = ["Network", "Dense", "Affine", "LayerNorm", "Activation", "Residual", "activation_names", "ACTIVATION_DEFAULTS", "build_info", "get_include", "load",
           "from_sklearn", "from_torch", "from_keras", "from_onnx", "__version__"]

# The kernel variant is chosen once, here; FASTMLP_KERNEL forces one (generic, avx2, avx512).
_core.select_kernel(_os.environ.get("FASTMLP_KERNEL", "auto").strip().lower() or "auto")


def build_info():
    """What this build runs with: the kernel variant in use, those the CPU supports, whether
    OpenMP supplies the default thread count, and that default."""
    return {
        "version": __version__,
        "kernel": _core.active_kernel(),
        "kernels_supported": _core.supported_kernels(),
        "kernels_built": _core.kernel_names(),
        "openmp": _core.have_openmp(),
        "default_threads": _core.default_threads(),
    }


def get_include():
    """The directory of fastmlp.h, for Cython extensions that cimport fastmlp._core."""
    here = _os.path.dirname(__file__)
    installed = _os.path.join(here, "include")
    # A source checkout keeps the header in csrc/.
    return installed if _os.path.isdir(installed) else _os.path.join(here, "..", "csrc")


# Heavier parts load on first use, so `import fastmlp` costs little more than numpy.
_LAZY = {
    "load": ("io", "load"),
    "from_sklearn": ("interop.sklearn", "from_sklearn"),
    "from_torch": ("interop.torch", "from_torch"),
    "from_keras": ("interop.keras", "from_keras"),
    "from_onnx": ("interop.onnx", "from_onnx"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module_name, attribute = _LAZY[name]
        return getattr(importlib.import_module(f".{module_name}", __name__), attribute)
    raise AttributeError(f"module 'fastmlp' has no attribute {name!r}")
