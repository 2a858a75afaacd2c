"""The cimportable C-level API: a Cython extension built here checks the API version at
import, then calls the network through the module-level functions without the GIL."""
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastmlp

pytest.importorskip("Cython")
setuptools = pytest.importorskip("setuptools")

EXTENSION = textwrap.dedent("""
    # cython: language_level=3
    from fastmlp._core cimport (CompiledNetwork, check_c_api, forward_f32, forward_f64,
                                is_double, n_inputs, n_outputs, FM_ERR_DTYPE)

    check_c_api()

    def run(CompiledNetwork net, float[:, ::1] x, float[:, ::1] out, int threads=0):
        cdef int rc
        with nogil:
            rc = forward_f32(net, &x[0, 0], x.shape[0], &out[0, 0], threads)
        return rc

    def run64(CompiledNetwork net, double[:, ::1] x, double[:, ::1] out):
        cdef int rc
        with nogil:
            rc = forward_f64(net, &x[0, 0], x.shape[0], &out[0, 0], 0)
        return rc

    def describe(CompiledNetwork net):
        return n_inputs(net), n_outputs(net), bool(is_double(net)), FM_ERR_DTYPE
""")

SETUP = textwrap.dedent("""
    import fastmlp
    from Cython.Build import cythonize
    from setuptools import Extension, setup

    setup(name="uses_fastmlp", ext_modules=cythonize(
        [Extension("uses_fastmlp", ["uses_fastmlp.pyx"], include_dirs=[fastmlp.get_include()])],
        include_path=[__import__("os").path.dirname(fastmlp.__path__[0])]))
""")


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="needs a C compiler")
def test_cython_extension_cimports_compiled_network(tmp_path):
    (tmp_path / "uses_fastmlp.pyx").write_text(EXTENSION)
    (tmp_path / "setup.py").write_text(SETUP)
    build = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-3000:]
    code = textwrap.dedent("""
        import numpy as np, fastmlp, uses_fastmlp
        rng = np.random.default_rng(0)
        net = fastmlp.Network([rng.standard_normal((5, 7)).astype(np.float32),
                               rng.standard_normal((7, 3)).astype(np.float32)], None, "tanh")
        x = rng.standard_normal((4, 5)).astype(np.float32)
        out = np.empty((4, 3), np.float32)
        assert uses_fastmlp.run(net, x, out) == 0
        assert np.array_equal(out, net(x))
        assert uses_fastmlp.run(net, x, out, 2) == 0 and np.array_equal(out, net(x))
        assert uses_fastmlp.describe(net) == (5, 3, False, -2)
        double = fastmlp.Network([np.eye(5)], None, "relu")
        assert uses_fastmlp.describe(double) == (5, 5, True, -2)
        assert uses_fastmlp.run(double, x, np.empty((4, 5), np.float32)) == -2
        x64, out64 = x.astype(np.float64), np.empty((4, 5))
        assert uses_fastmlp.run64(double, x64, out64) == 0
        assert np.array_equal(out64, double(x64))
        print("ok")
    """)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr[-3000:]
