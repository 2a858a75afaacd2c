"""Without their frameworks the importers say what to install; importing them loads none."""
import subprocess
import sys

import numpy as np
import pytest

import fastmlp
from fastmlp import interop, io


@pytest.mark.parametrize("convert, module, extra", [
    (interop.from_sklearn, "sklearn.neural_network", "sklearn"),
    (interop.from_torch, "torch", "torch"),
    (interop.from_keras, "keras", "keras"),
    (interop.from_onnx, "onnx", "onnx"),
])
def test_missing_framework_names_the_pip_command(monkeypatch, convert, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(ImportError, match=rf'pip install "fastmlp\[{extra}\]"'):
        convert(object())


def test_saving_safetensors_without_the_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    net = fastmlp.Network([np.eye(2)], None, "relu")
    with pytest.raises(ImportError, match=r'pip install "fastmlp\[safetensors\]"'):
        io.save(net, tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_importing_loads_no_framework():
    code = ("import sys, fastmlp, fastmlp.io, fastmlp.interop\n"
            "heavy = {'torch', 'keras', 'onnx', 'sklearn', 'safetensors'} & set(sys.modules)\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True)
