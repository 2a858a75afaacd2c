#!/usr/bin/env python3
"""The full fastmlp benchmark: fastmlp vs numpy, careful numpy, PyTorch, ONNX Runtime and
numba on the standard networks, and fastmlp bf16/int8 against PyTorch and ONNX Runtime in
reduced precision (benchmarks/harness.py, benchmarks/precision.py, or --help for the options).

    python benchmarks/run.py                       # full run (several minutes)
    python benchmarks/run.py --quick               # seconds
    python benchmarks/run.py --json out.json --chart out.png

It measures the installed fastmlp (pip install . first). OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE
slow a current numpy, so when either is set this script re-executes itself without both (for
this process only; --keep-openblas-env keeps them).
"""
import os
import sys

import harness  # benchmarks/harness.py: this script's directory is first on sys.path

if __name__ == "__main__":
    harness.reexec_without_openblas_env([os.path.abspath(__file__), *sys.argv[1:]])
    sys.exit(harness.main())
