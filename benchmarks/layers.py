#!/usr/bin/env python3
"""One dense layer at a time: fastmlp against numpy's matmul, on one thread, interleaved.

    python benchmarks/layers.py                        # the standard networks' layers
    python benchmarks/layers.py --layers 1024x4096 --rows 32,288 --dtypes float32

The full benchmark (run.py) times whole networks; a slow path of the dense kernel for some
shapes hides there among the other layers. Here each layer of the standard networks runs
alone (identity activation) at a few heights: a 1024- or 4096-wide input has its rows 4 KiB
apart, which the kernel copies into packed blocks first; the others are read in place.
Each line gives fastmlp's GFLOP/s, numpy's matmul into a preallocated output (OpenBLAS) on
the same arrays, and their ratio (numpy time / fastmlp time: > 1 means fastmlp faster).
Times are the minimum over interleaved rounds (the least disturbed by a busy machine).
"""
import argparse
import os
import sys
import time
from functools import partial

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  benchmarks/harness.py: the standard networks


def standard_layers():
    """(n_in, n_out) of every dense layer of the standard networks, once each."""
    seen = []
    for spec in harness.STANDARD_NETWORKS:
        for shape in zip(spec.widths[:-1], spec.widths[1:]):
            if shape not in seen:
                seen.append(shape)
    return seen


def seconds_per_call(fn, calls):
    start = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - start) / calls * 1e-9


def race(fns, rounds, seconds):
    """Minimum seconds per call of each function, timed in interleaved rounds."""
    for fn in fns.values():
        fn()
    calls = {name: max(1, int(seconds / rounds / len(fns) / seconds_per_call(fn, 1)))
             for name, fn in fns.items()}
    best = {name: float("inf") for name in fns}
    for r in range(rounds):
        names = list(fns) if r % 2 == 0 else list(reversed(fns))
        for name in names:
            best[name] = min(best[name], seconds_per_call(fns[name], calls[name]))
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", help="comma list of NxM (default: the standard networks')")
    parser.add_argument("--rows", default="32,288")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.5, help="per layer and height, about")
    args = parser.parse_args(argv)

    import fastmlp

    layers = ([tuple(int(v) for v in s.split("x")) for s in args.layers.split(",")]
              if args.layers else standard_layers())
    info = harness.machine_info()
    print(f"fastmlp layer benchmark: {info.get('cpu', '?')}; kernel "
          f"{fastmlp.build_info()['kernel']}; one thread; minimum of {args.rounds} "
          f"interleaved rounds")
    rng = np.random.default_rng(0)
    with harness.blas_limits(1):
        for dtype in args.dtypes.split(","):
            for n_in, n_out in layers:
                w = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype)
                net = fastmlp.Network([w], [np.zeros(n_out, dtype)], "identity", threads=1)
                for rows in (int(r) for r in args.rows.split(",")):
                    x = rng.standard_normal((rows, n_in)).astype(dtype)
                    out = np.empty((rows, n_out), dtype)
                    best = race({"fastmlp": partial(net.forward, x, out),
                                 "numpy": partial(np.matmul, x, w, out=out)},
                                args.rounds, args.seconds)
                    flops = 2.0 * rows * n_in * n_out
                    print(f"  {dtype} {n_in:5d}x{n_out:<5d} rows {rows:5d}: fastmlp "
                          f"{flops / best['fastmlp'] * 1e-9:6.1f} GFLOP/s, numpy "
                          f"{flops / best['numpy'] * 1e-9:6.1f}, ratio "
                          f"{best['numpy'] / best['fastmlp']:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
