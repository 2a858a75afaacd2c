#!/usr/bin/env python3
"""Do threads pay? fastmlp on one thread against fastmlp on all cores, interleaved.

    python benchmarks/threads.py                 # the standard networks, float32 and float64
    python benchmarks/threads.py --json out.json

The full benchmark (run.py) times its one-thread and its all-core tables minutes apart, so
on a shared machine their ratio mixes in whatever else ran meanwhile. Here both thread
counts of one cell are timed in the same rounds, alternating (each round: a block of calls
on one thread, then on all cores, the order flipped every round), and the speed-up is the
median of the per-round ratios. Issue 10's target: at least 1.8x at batch >= 1024 wherever
one thread takes more than 200 us. Each line also shows the plan (split, rows per tile,
tiles) of the all-core call.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  benchmarks/harness.py: the networks, weights and inputs

TARGET, TARGET_MIN_BATCH, TARGET_MIN_US = 1.8, 1024, 200.0


def block_seconds(net, x, threads, calls):
    start = time.perf_counter_ns()
    for _ in range(calls):
        net(x, threads=threads)
    return (time.perf_counter_ns() - start) / calls * 1e-9


def speedup(net, x, threads, rounds, seconds):
    """(one-thread seconds, all-core seconds, median per-round ratio) of net(x)."""
    net(x, threads=1)
    net(x, threads=threads)
    once = block_seconds(net, x, 1, 1)
    calls = max(1, int(seconds / rounds / 2 / once))
    ones, alls, ratios = [], [], []
    for r in range(rounds):
        order = (1, threads) if r % 2 == 0 else (threads, 1)
        got = {t: block_seconds(net, x, t, calls) for t in order}
        ones.append(got[1])
        alls.append(got[threads])
        ratios.append(got[1] / got[threads])
    return statistics.median(ones), statistics.median(alls), statistics.median(ratios)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="32,1024,16384")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--networks", default=",".join(s.name for s in harness.STANDARD_NETWORKS))
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=1.0, help="per cell, about")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)

    import fastmlp

    threads = os.cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        threads = len(os.sched_getaffinity(0))
    info = harness.machine_info()
    print(f"fastmlp threads benchmark: {info.get('cpu', '?')}, {threads} cpus; kernel "
          f"{fastmlp.build_info()['kernel']}; median of {args.rounds} interleaved rounds")
    wanted = args.networks.split(",")
    results, missed = [], 0
    for spec in harness.STANDARD_NETWORKS:
        if spec.name not in wanted:
            continue
        workload = harness.make_workload(spec, seed=0)
        for dtype in args.dtypes.split(","):
            weights, biases = workload.as_dtype(np.dtype(dtype))
            net = fastmlp.Network(weights, biases, workload.activations)
            for batch in (int(b) for b in args.batches.split(",")):
                x = harness.make_input(workload, batch, 0, np.dtype(dtype))
                one, all_cores, ratio = speedup(net, x, threads, args.rounds, args.seconds)
                plan = net.plan(batch, threads=threads)
                applies = batch >= TARGET_MIN_BATCH and one * 1e6 > TARGET_MIN_US
                verdict = ""
                if applies:
                    verdict = "met" if ratio >= TARGET else f"MISSED by {TARGET / ratio:.2f}x"
                    missed += ratio < TARGET
                print(f"  {dtype} {spec.label:32s} batch {batch:6d}: 1 thread "
                      f"{one * 1e6:11,.1f} us, {threads} threads {all_cores * 1e6:11,.1f} us, "
                      f"speed-up {ratio:4.2f}x"
                      f"  [{plan['split']}, tile {plan['tile_rows']}, {plan['tiles']} tiles]"
                      + (f"  target {TARGET}x: {verdict}" if applies else ""))
                results.append({"network": spec.name, "dtype": dtype, "batch": batch,
                                "threads": threads, "one_thread_us": one * 1e6,
                                "all_cores_us": all_cores * 1e6, "speedup": ratio,
                                "plan": plan, "target_applies": applies})
    print(f"cells where the target applies and is missed: {missed}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "cells": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
