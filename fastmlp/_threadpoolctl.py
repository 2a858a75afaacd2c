"""fastmlp's thread pool as a threadpoolctl library, so that ``threadpool_limits(n)`` limits
fastmlp and ``threadpool_info()`` lists it, whether or not any OpenMP runtime is loaded.

threadpoolctl finds libraries among the shared objects loaded in the process by file name
and by an exported symbol. fastmlp's extension exports only its module init function,
``PyInit__core``, which every extension module named ``_core`` has, so the controller also
checks the file itself and makes threadpoolctl drop any other ``_core`` it is offered.
The limit is process-wide, like OpenBLAS's.

Registration waits for threadpoolctl to be imported (register_when_imported): importing it,
with its dataclasses and ctypes, took 4-7 ms, more than the rest of ``import fastmlp``, in
every program, also those that never use it.
"""
from __future__ import annotations

import os
import sys

from . import _core

# threadpoolctl checks the controller's symbols only from 3.5 on; older versions would take
# every extension module named _core for fastmlp.
MINIMUM_THREADPOOLCTL = (3, 5)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


class _NoSymbols:
    """Stands in for a foreign library so that threadpoolctl's symbol check rejects it."""


def _controller_class(base):
    class FastmlpController(base):
        user_api = "fastmlp"
        internal_api = "fastmlp"
        filename_prefixes = ("_core.",)
        check_symbols = ("PyInit__core",)

        def set_additional_attributes(self):
            if not _same_file(self.filepath, _core.__file__):
                self.dynlib = _NoSymbols()  # another package's _core extension

        def get_num_threads(self):
            return _core.default_threads()

        def set_num_threads(self, num_threads):
            _core.set_thread_limit(int(num_threads))

        def get_version(self):
            from . import __version__

            return __version__

    return FastmlpController


def register() -> bool:
    """Registers the controller with threadpoolctl if a recent enough one is installed.
    Returns whether it did."""
    try:
        import threadpoolctl
    except ImportError:
        return False
    version = tuple(int(p) for p in threadpoolctl.__version__.split(".")[:2] if p.isdigit())
    if version < MINIMUM_THREADPOOLCTL or not hasattr(threadpoolctl, "register"):
        return False
    threadpoolctl.register(_controller_class(threadpoolctl.LibController))
    return True


def _register_quietly() -> None:
    """register(), whose failure must never fail the caller's `import threadpoolctl`."""
    try:
        register()
    except Exception:  # noqa: BLE001 - an unknown threadpoolctl: fastmlp stays unlisted
        pass


class _LoaderThenRegister:
    """threadpoolctl's own loader, which registers fastmlp once the module has run."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):  # create_module, get_code, ...: the loader's own
        return getattr(self._loader, name)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _register_quietly()


class _RegisterOnImport:
    """A one-shot import hook: the first import of threadpoolctl finds it as usual (through
    the finders after this one), and its loader registers fastmlp after running it."""

    def find_spec(self, name, path=None, target=None):
        if name != "threadpoolctl":
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _LoaderThenRegister(spec.loader)
        return spec


def register_when_imported() -> None:
    """Registers now if threadpoolctl is imported, else as soon as it is."""
    if "threadpoolctl" in sys.modules:
        _register_quietly()
    elif not any(isinstance(finder, _RegisterOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterOnImport())
