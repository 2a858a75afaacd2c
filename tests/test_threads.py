"""One network shared by many Python threads: identical results, GIL released."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

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


def test_threadpoolctl_and_omp_num_threads_set_the_default():
    threadpoolctl = __import__("pytest").importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert fastmlp.build_info()["default_threads"] == 1
    import os
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1")
    code = "import fastmlp; print(fastmlp.build_info()['default_threads'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "1", out.stderr
