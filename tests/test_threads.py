"""One network shared by many Python threads: identical results, GIL released."""
import threading
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


def test_gil_is_released_during_compute():
    rng = np.random.default_rng(12)
    weights, biases = random_layers(rng, [512, 1024, 512], np.float64)
    net = fastmlp.Network(weights, biases, "relu", threads=1)
    x = rng.standard_normal((4000, 512))
    ticks = 0
    done = threading.Event()

    def count():
        nonlocal ticks
        while not done.is_set():
            ticks += 1

    counter = threading.Thread(target=count)
    counter.start()
    try:
        for _ in range(3):
            net(x)
    finally:
        done.set()
        counter.join()
    # A held GIL would leave the counter only the interpreter's switch slices.
    assert ticks > 1000


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
