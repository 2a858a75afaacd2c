"""What the fuzz tests run on each input (in the sandbox's child, or in-process under
atheris), and the verdict on what happened."""
import os
import pickle
import time

import numpy as np

import fastmlp

# The only acceptable failures: a clear ValueError or TypeError.
ACCEPTED_ERRORS = ("ValueError", "TypeError")


def load(workdir, suffix, data, mmap):
    """fastmlp.load (or from_onnx) of a file holding ``data``; returns (summary, path)."""
    path = os.path.join(workdir, "model" + suffix)
    with open(path, "wb") as f:
        f.write(data)
    net = fastmlp.from_onnx(path) if suffix == ".onnx" else fastmlp.load(path, mmap=mmap)
    return repr(net)


def network(workdir, args, kwargs, inputs, call_kwargs):
    """Network(*args, **kwargs), then net.forward(x, **call_kwargs) for each input (an array
    and a layout: "C", "F" or "strided"); nothing passed in may change."""
    before = pickle.dumps((args, kwargs, inputs, call_kwargs))
    try:
        net = fastmlp.Network(*args, **kwargs)
        shapes = [net.forward(_laid_out(x, layout), **call_kwargs).shape for x, layout in inputs]
    finally:
        if pickle.dumps((args, kwargs, inputs, call_kwargs)) != before:
            raise AssertionError("the arguments were modified")
    return f"{net!r} -> {shapes}"


def _laid_out(x, layout):
    if not isinstance(x, np.ndarray) or layout == "C":
        return x
    if layout == "F":
        return np.asfortranarray(x)
    return np.repeat(x, 2, axis=-1)[..., ::2] if x.ndim else x  # same values, strided


def misbehave(workdir, how):
    """What the harness must catch: a hang, a blow-up, a crash (tested in test_sandbox.py)."""
    if how == "hang":
        time.sleep(3600)
    elif how == "blow-up":
        chunks = []
        while True:  # touched pages, so the resident size grows too
            chunks.append(np.ones(1 << 24))
    elif how == "crash":
        os.abort()


TARGETS = {"load": load, "network": network, "misbehave": misbehave}


def run(workdir, target, *args):
    """(kind, error type, message, path): what running ``target`` did."""
    path = os.path.join(workdir, "model" + args[0]) if target == "load" else ""
    try:
        return ("result", "", TARGETS[target](workdir, *args), path)
    except Exception as exc:  # judged by verdict()
        return ("error", type(exc).__name__, str(exc)[:2000], path)


def verdict(outcome):
    """None if the outcome is acceptable, else what is wrong with it."""
    kind, error, message, path = outcome[:4]
    if kind == "result":
        return None
    if kind != "error":
        return f"{kind}: {message}"
    if error not in ACCEPTED_ERRORS:
        return f"{error} (not ValueError or TypeError): {message}"
    if path and path not in message:
        return f"{error} without the file's name: {message}"
    return None
