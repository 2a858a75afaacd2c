#!/usr/bin/env python3
"""The full fastmlp benchmark: fastmlp vs numpy, careful numpy, PyTorch, ONNX Runtime and
numba on the standard networks (see fastmlp/bench.py, or --help for the options).

    python benchmarks/run.py                       # full run (several minutes)
    python benchmarks/run.py --quick               # seconds
    python benchmarks/run.py --json out.json --chart out.png

OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE slow a current numpy, so when either is set this
script re-executes itself without both (for this process only; --keep-openblas-env keeps them).
"""
import os
import sys

try:
    import fastmlp.bench as bench
except ImportError:  # run from a checkout that is not on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import fastmlp.bench as bench

if __name__ == "__main__":
    bench.reexec_without_openblas_env([os.path.abspath(__file__), *sys.argv[1:]])
    sys.exit(bench.main())
