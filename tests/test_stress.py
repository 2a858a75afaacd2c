"""Stress: many Python threads on shared networks, and memory over many calls.

Sized to run in seconds (and under the sanitizers, .ci/sanitize). Every row gets the same
bits whatever its batch, its position and the thread count, so each thread's results are
compared bit for bit with one single-threaded pass over all rows."""
import gc
import os
import threading

import numpy as np
import pytest

import fastmlp
from conftest import random_layers

N_ROWS = 600


def shared_networks():
    rng = np.random.default_rng(21)
    nets = []
    for dtype, widths, activations in (
            (np.float32, [24, 48, 40, 6], ["relu", "gelu", "softmax"]),
            (np.float64, [24, 33, 17], [("leaky_relu", {"negative_slope": 0.1}), "tanh"]),
            (np.float32, [24, 64, 8], ["silu", ("softplus", {"beta": 2.0})])):
        weights, biases = random_layers(rng, widths, dtype)
        nets.append(fastmlp.Network(weights, biases, activations, threads=2))
    x = rng.standard_normal((N_ROWS, 24))
    return [(net, x.astype(net.dtype), net(x.astype(net.dtype), threads=1)) for net in nets]


def test_many_threads_mixed_batches_and_thread_counts_match_single_threaded():
    cases = shared_networks()
    failures, n_calls = [], [0] * 16
    start = threading.Barrier(16)

    def work(seed):
        rng = np.random.default_rng(seed)
        start.wait()  # all at once
        for _ in range(120):
            net, x, expected = cases[rng.integers(len(cases))]
            begin = int(rng.integers(N_ROWS))
            size = int(rng.choice([1, 2, 3, 7, 16, 63, 64, 65, 200, N_ROWS]))
            rows = slice(begin, min(N_ROWS, begin + size))
            threads = [None, 1, 2, 3, 4][rng.integers(5)]
            if rng.integers(2):
                got = net(x[rows], threads=threads)
            else:
                got = np.empty((rows.stop - rows.start, net.n_outputs), net.dtype)
                net.forward(x[rows], out=got, threads=threads)
            n_calls[seed] += 1
            if not np.array_equal(got, expected[rows]):
                failures.append((seed, rows, threads))

    pool = [threading.Thread(target=work, args=(seed,)) for seed in range(16)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert not failures, failures[:5]
    assert n_calls == [120] * 16


def test_networks_built_and_dropped_while_others_compute():
    net, x, expected = shared_networks()[0]
    stop, failures = threading.Event(), []

    def compute():
        while not stop.is_set():
            if not np.array_equal(net(x[:100], threads=2), expected[:100]):
                failures.append("shared network changed its answer")

    def churn(seed):
        rng = np.random.default_rng(seed)
        for _ in range(60):
            weights, biases = random_layers(rng, [24, 16, 4], np.float64)
            fresh = fastmlp.Network(weights, biases, "tanh", threads=int(rng.integers(1, 4)))
            fresh(x[:50].astype(np.float64))
            del fresh

    workers = [threading.Thread(target=compute) for _ in range(4)]
    churners = [threading.Thread(target=churn, args=(seed,)) for seed in range(4)]
    for thread in workers + churners:
        thread.start()
    for thread in churners:
        thread.join()
    stop.set()
    for thread in workers:
        thread.join()
    assert not failures


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer keeps freed memory resident (its quarantine)")
def test_memory_stays_bounded_over_many_calls_and_constructions():
    rng = np.random.default_rng(22)
    weights, biases = random_layers(rng, [64, 128, 64], np.float64)  # 128 KiB of weights
    x = rng.standard_normal((256, 64))
    out = np.empty((256, 64))

    def round_trip():
        net = fastmlp.Network(weights, biases, ["relu", "tanh"], threads=2)
        net(x)  # a new 128 KiB result each call
        net.forward(x, out=out, threads=1)
        net(x[0])
        for bad in (x[:, :3], "text", np.ones((2, 2, 2))):  # the error paths too
            try:
                net(bad)
            except (ValueError, TypeError):
                pass
        try:
            fastmlp.Network(weights, biases[:1], "relu")
        except ValueError:
            pass

    for _ in range(100):  # warm-up: caches, the thread pool, numpy's free lists
        round_trip()
    gc.collect()
    before = resident_bytes()
    for _ in range(600):  # a leak of one weight matrix per round would be 75 MiB
        round_trip()
    gc.collect()
    grown = resident_bytes() - before
    assert grown < 16 << 20, f"resident memory grew by {grown >> 20} MiB over 600 rounds"
