"""fastmlp: the forward pass of fully connected networks, in compiled code.

    >>> import fastmlp, numpy as np
    >>> net = fastmlp.Network([np.ones((3, 4)), np.ones((4, 2))], None, ["relu", "identity"])
    >>> net(np.ones(3)).tolist()
    [12.0, 12.0]
"""
import os as _os
from typing import Any as _Any, Dict as _Dict, List as _List

try:
    from . import _core
except ImportError:  # e.g. `python -m fastmlp` in a clone's root: no compiled core here
    raise ImportError(
        f"fastmlp's compiled core (fastmlp/_core) is not built in {_os.path.dirname(__file__)}: "
        "this is probably a source checkout shadowing the installed fastmlp; run from another "
        "directory, or build it here with `pip install -e .`") from None
from . import _threadpoolctl
from ._activations import ACTIVATION_DEFAULTS, activation_names
from .layers import Activation, Affine, Dense, LayerNorm, Residual
from .network import Network

__version__ = "0.1.0"
__all__ = ["Network", "Dense", "Affine", "LayerNorm", "Activation", "Residual",
           "activation_names", "ACTIVATION_DEFAULTS", "build_info", "get_include", "load",
           "predict_file", "from_sklearn", "from_torch", "from_keras", "from_onnx",
           "__version__"]


def _select_kernel(requested: str) -> None:
    """The kernel variant is chosen once, at import; FASTMLP_KERNEL forces one (generic, avx2,
    avx512). One this build or CPU does not have warns and falls back to the automatic choice,
    so a stale setting never makes `import fastmlp` fail."""
    name = requested.strip().lower() or "auto"
    try:
        _core.select_kernel(name)
    except ValueError as error:
        import warnings

        warnings.warn(f"FASTMLP_KERNEL={requested!r} ignored: {error}; choosing automatically",
                      RuntimeWarning, stacklevel=3)
        _core.select_kernel("auto")


_select_kernel(_os.environ.get("FASTMLP_KERNEL", "auto"))
# threadpoolctl (when installed) sees fastmlp's pool: threadpool_limits(n) limits it.
_threadpoolctl.register_when_imported()


def build_info() -> _Dict[str, _Any]:
    """What this build runs with: the kernel variant in use, those the CPU supports, the
    default thread count and where it comes from ("cpus", "OMP_NUM_THREADS" or
    "threadpoolctl"); emulated_isa is True only in a test build whose AVX-512, AVX-VNNI and AMX
    instructions are emulated (correct, slow, never shipped)."""
    return {
        "version": __version__,
        "kernel": _core.active_kernel(),
        "kernels_supported": _core.supported_kernels(),
        "kernels_built": _core.kernel_names(),
        "default_threads": _core.default_threads(),
        "default_threads_from": _core.default_threads_source(),
        "emulated_isa": _core.emulated_isa(),
    }


def get_include() -> str:
    """The directory of fastmlp.h, for Cython extensions that cimport fastmlp._core."""
    here = _os.path.dirname(__file__)
    installed = _os.path.join(here, "include")
    # A source checkout keeps the header in csrc/.
    return installed if _os.path.isdir(installed) else _os.path.join(here, "..", "csrc")


# Heavier parts load on first use, so `import fastmlp` costs little more than numpy.
_LAZY = {
    "load": ("io", "load"),
    "predict_file": ("tabular", "predict_file"),
    "from_sklearn": ("interop.sklearn", "from_sklearn"),
    "from_torch": ("interop.torch", "from_torch"),
    "from_keras": ("interop.keras", "from_keras"),
    "from_onnx": ("interop.onnx", "from_onnx"),
}


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        import importlib

        module_name, attribute = _LAZY[name]
        return getattr(importlib.import_module(f".{module_name}", __name__), attribute)
    raise AttributeError(f"module 'fastmlp' has no attribute {name!r}")


def __dir__() -> _List[str]:
    return sorted(set(globals()) | set(_LAZY))
