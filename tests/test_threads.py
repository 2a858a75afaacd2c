"""One network shared by many Python threads: identical results, GIL released."""
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastmlp
from conftest import random_layers


def test_many_threads_share_one_network():
    rng = np.random.default_rng(11)
    weights, biases = random_layers(rng, [40, 64, 32, 5], np.float32)
    net = fastmlp.Network(weights, biases, ["relu", "tanh", "softmax"])
    inputs = [rng.standard_normal((n, 40)).astype(np.float32) for n in (1, 7, 64, 500, 2000)]
    expected = [net(x) for x in inputs]

    def work(i):
        x, want = inputs[i % len(inputs)], expected[i % len(inputs)]
        threads = 1 + i % 2  # different thread settings at once
        return all(np.array_equal(net(x, threads=threads), want) for _ in range(20))

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(work, range(64)))


def counter_share(work):
    """How fast a pure-Python counter thread counts while `work` runs in this thread, as a share
    of its speed while this thread sleeps (the GIL free). Near 1: `work` leaves the GIL to
    others; near 0: `work` holds it."""

    def rate(job):
        ticks = 0
        done = threading.Event()

        def count():
            nonlocal ticks
            while not done.is_set():
                ticks += 1

        counter = threading.Thread(target=count)
        start = time.perf_counter()
        counter.start()
        try:
            job()
        finally:
            done.set()
            counter.join()
        return ticks / (time.perf_counter() - start)

    free = rate(lambda: time.sleep(0.3))
    return rate(work) / free


def releases_the_gil(work):
    """The check both the network and the control go through."""
    return counter_share(work) > 0.3


def test_gil_is_released_during_compute():
    rng = np.random.default_rng(12)
    weights, biases = random_layers(rng, [512, 1024, 512], np.float64)
    net = fastmlp.Network(weights, biases, "relu", threads=1)
    x = rng.standard_normal((4000, 512))
    net(x)  # warm up
    start = time.perf_counter()
    net(x)
    seconds = time.perf_counter() - start
    calls = max(2, int(0.6 / seconds))
    assert releases_the_gil(lambda: [net(x) for _ in range(calls)]), \
        "the counter thread stalled while the network ran: the GIL was held"

    # The control: one C call that holds the GIL throughout (sum over a range never lets the
    # interpreter switch threads), about as long as the network's calls; it must fail the check.
    n = 1_000_000
    start = time.perf_counter()
    sum(range(n))
    n = int(n * 0.6 / max(time.perf_counter() - start, 1e-6))  # about 0.6 s
    assert not releases_the_gil(lambda: sum(range(n))), \
        "a call that holds the GIL passed the check, so the check cannot tell"


def _default_in_subprocess(omp_num_threads, code=""):
    """build_info() of a fresh interpreter started with OMP_NUM_THREADS (None: unset)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if omp_num_threads is not None:
        env["OMP_NUM_THREADS"] = omp_num_threads
    script = f"import json, fastmlp\n{code}\nprint(json.dumps(fastmlp.build_info()))"
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout.strip().splitlines()[-1])
    return info["default_threads"], info["default_threads_from"]


def test_threadpoolctl_limits_fastmlp_and_restores_the_default():
    threadpoolctl = pytest.importorskip("threadpoolctl", minversion="3.5")
    before = fastmlp.build_info()
    assert before["default_threads_from"] != "threadpoolctl", before
    # A limit equal to the default changes nothing and is not reported as a limit.
    source = "threadpoolctl" if before["default_threads"] != 1 else before["default_threads_from"]
    with threadpoolctl.threadpool_limits(1):
        inside = fastmlp.build_info()
        assert (inside["default_threads"], inside["default_threads_from"]) == (1, source)
    with threadpoolctl.threadpool_limits(1, user_api="fastmlp"):
        assert fastmlp.build_info()["default_threads"] == 1
    after = fastmlp.build_info()
    assert (after["default_threads"], after["default_threads_from"]) == (
        before["default_threads"], before["default_threads_from"])


def test_threadpool_info_lists_fastmlp_once():
    threadpoolctl = pytest.importorskip("threadpoolctl", minversion="3.5")
    ours = [lib for lib in threadpoolctl.threadpool_info() if lib["internal_api"] == "fastmlp"]
    assert len(ours) == 1, ours
    assert os.path.samefile(ours[0]["filepath"], fastmlp._core.__file__)
    assert ours[0]["num_threads"] == fastmlp.build_info()["default_threads"]


def _run_python(code):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_import_fastmlp_does_not_import_threadpoolctl():
    _run_python("import sys, fastmlp\nassert 'threadpoolctl' not in sys.modules, 'imported'")


@pytest.mark.parametrize("first", ["fastmlp", "threadpoolctl"])
def test_threadpoolctl_sees_fastmlp_whichever_is_imported_first(first):
    """fastmlp registers when threadpoolctl is imported, before or after it, and its one-shot
    import hook is gone afterwards."""
    pytest.importorskip("threadpoolctl", minversion="3.5")
    second = "threadpoolctl" if first == "fastmlp" else "fastmlp"
    code = f"""import sys, {first}, {second}
from fastmlp._threadpoolctl import _RegisterOnImport
apis = [lib["internal_api"] for lib in threadpoolctl.threadpool_info()]
assert apis.count("fastmlp") == 1, apis
assert not any(isinstance(f, _RegisterOnImport) for f in sys.meta_path), sys.meta_path
with threadpoolctl.threadpool_limits(1):
    assert fastmlp.build_info()["default_threads"] == 1
"""
    _run_python(code)


def test_a_failing_registration_never_fails_the_import_of_threadpoolctl(monkeypatch):
    from fastmlp import _threadpoolctl

    def broken():
        raise RuntimeError("an unknown threadpoolctl")

    monkeypatch.setattr(_threadpoolctl, "register", broken)
    ran = []

    class Loader:
        def create_module(self, spec):
            return None

        def exec_module(self, module):
            ran.append(module)

    _threadpoolctl._LoaderThenRegister(Loader()).exec_module("module")
    assert ran == ["module"]


def test_controller_refuses_another_packages_core_module():
    threadpoolctl = pytest.importorskip("threadpoolctl", minversion="3.5")
    from fastmlp._threadpoolctl import _controller_class

    controller = _controller_class(threadpoolctl.LibController)
    import _ctypes  # any extension module that is not fastmlp's

    foreign = getattr(_ctypes, "__file__", None)
    if foreign is None:
        pytest.skip("_ctypes is built into this interpreter")
    lib = controller(filepath=foreign, prefix="_core.", parent=None)
    # threadpoolctl keeps a library only when one of check_symbols is found in it.
    assert not any(hasattr(lib.dynlib, name) for name in controller.check_symbols)
    ours = controller(filepath=fastmlp._core.__file__, prefix="_core.", parent=None)
    assert any(hasattr(ours.dynlib, name) for name in controller.check_symbols)


def _cpus():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@pytest.mark.parametrize("value, expected", [
    ("1", 1), ("1,2", 1), (" 1 , 2", 1), ("1 ", 1), ("1000000000000", "cpus"),
    # not a positive integer: ignored, as OpenMP runtimes ignore it
    ("0", None), ("-1", None), ("abc", None), ("1x", None), ("", None), (None, None),
])
def test_omp_num_threads_first_value_sets_the_default(value, expected):
    threads, source = _default_in_subprocess(value)
    if value == "1000000000000":  # valid, larger than any CPU count: capped at the CPUs
        assert (threads, source) == (_cpus(), "OMP_NUM_THREADS")
    elif expected is None:
        assert (threads, source) == (_cpus(), "cpus")
    else:
        assert (threads, source) == (expected, "OMP_NUM_THREADS")


def test_threadpoolctl_overrides_omp_num_threads_and_gives_it_back():
    pytest.importorskip("threadpoolctl", minversion="3.5")
    if _cpus() < 2:
        pytest.skip("needs two CPUs to tell a limit of 2 from OMP_NUM_THREADS=1")
    code = """
import threadpoolctl
with threadpoolctl.threadpool_limits(2):
    inside = fastmlp.build_info()
assert (inside["default_threads"], inside["default_threads_from"]) == (2, "threadpoolctl"), inside
"""
    assert _default_in_subprocess("1", code) == (1, "OMP_NUM_THREADS")
