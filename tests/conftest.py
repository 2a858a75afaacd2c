import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/reference.py, when run from anywhere

from reference import forward  # noqa: E402


def random_layers(rng, widths, dtype):
    """Weights scaled by 1/sqrt(fan-in), so values keep their size through the layers."""
    weights = [(rng.uniform(-1, 1, (n, m)) / np.sqrt(n)).astype(dtype)
               for n, m in zip(widths[:-1], widths[1:])]
    biases = [rng.uniform(-0.5, 0.5, m).astype(dtype) for m in widths[1:]]
    return weights, biases


@pytest.fixture(autouse=True)
def _outside_the_source_tree(tmp_path_factory, monkeypatch):
    """Child processes (python -m fastmlp, python -c) start in a scratch directory, so a
    source checkout's fastmlp/ (with no compiled core) never shadows the installed one."""
    monkeypatch.chdir(tmp_path_factory.getbasetemp())


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def small_net():
    import fastmlp

    rng = np.random.default_rng(7)
    weights, biases = random_layers(rng, [5, 8, 3], np.float64)
    return fastmlp.Network(weights, biases, ["tanh", "identity"]), weights, biases


def skip_unless_runnable(kernel):
    """Skips, naming what this CPU lacks, a kernel variant it cannot run."""
    import fastmlp
    missing = fastmlp._core.kernel_missing(kernel)
    if missing:
        pytest.skip(f"the {kernel} kernel needs {', '.join(missing)}, which this CPU lacks")


__all__ = ["forward", "random_layers", "skip_unless_runnable"]
