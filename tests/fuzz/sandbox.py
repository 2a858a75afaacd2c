"""A child process that runs fastmlp's loaders and constructors under time and memory limits.

The fuzz tests send it one input at a time; it answers with what happened. A hang (past the
time limit), a blow-up (past the memory limit) or a crash (the child dies, e.g. on a
sanitizer report) kills the child and is reported as such, so such an input fails the test
instead of stalling or killing the test run. A fresh child is started for the next input.

The memory limit is RLIMIT_AS on top of what the child uses once it has imported
everything, plus the parent watching its resident size (under AddressSanitizer, whose shadow
memory makes an address-space limit impossible, that watch is the only limit).
"""
import os
import pickle
import select
import struct
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

import pytest

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")


class Outcome(NamedTuple):
    kind: str  # "result", "error", "hang", "blow-up" or "crash"
    error: str = ""  # the exception's type name, for "error"
    message: str = ""  # the exception's message, a summary of the result, or what went wrong
    path: str = ""  # the model file the worker wrote, for the loaders


def under_asan():
    return "libasan" in os.environ.get("LD_PRELOAD", "")


class Sandbox:
    def __init__(self, memory=1 << 30, timeout=30.0):
        self.memory, self.timeout = memory, timeout
        self.child = None
        self.workdir = tempfile.TemporaryDirectory(prefix="fastmlp-fuzz-")

    def run(self, target, *args):
        """Runs ``target`` (a function name in worker.py) on ``args`` in the child."""
        if self.child is None:
            self._start()
        request = pickle.dumps((target, args))
        try:
            self.child.stdin.write(struct.pack("<Q", len(request)) + request)
            self.child.stdin.flush()
        except BrokenPipeError:
            return self._died()
        return self._answer()

    def close(self):
        """Stops the child (a new one starts for the next input)."""
        if self.child is not None:
            self.child.kill()
            self.child.wait()
            self.child = None
            self.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        self.workdir.cleanup()

    def _start(self):
        self.stderr = tempfile.TemporaryFile()
        self.child = subprocess.Popen(
            [sys.executable, WORKER, str(self.memory), self.workdir.name], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.stderr)
        if self._read(8, time.monotonic() + 120) != b"ready...":  # after its imports
            raise RuntimeError(f"the fuzz worker did not start: {self._stderr()}")

    def _answer(self):
        deadline = time.monotonic() + self.timeout
        header = self._read(8, deadline)
        if isinstance(header, Outcome):
            return header
        body = self._read(struct.unpack("<Q", header)[0], deadline)
        return body if isinstance(body, Outcome) else Outcome(*pickle.loads(body))

    def _read(self, size, deadline):
        """``size`` bytes from the child, or the Outcome that stopped it."""
        data = b""
        fd = self.child.stdout.fileno()
        while len(data) < size:
            if time.monotonic() > deadline:
                return self._stop("hang", f"no answer within {self.timeout} s")
            if _resident(self.child.pid) > self.memory:
                return self._stop("blow-up", f"more than {self.memory >> 20} MiB resident")
            if select.select([fd], [], [], 0.02)[0]:
                piece = os.read(fd, size - len(data))
                if not piece:
                    return self._died()
                data += piece
        return data

    def _stop(self, kind, message):
        self.close()
        return Outcome(kind, message=message)

    def _died(self):
        code = self.child.wait()
        message = f"the worker died (exit status {code}): {self._stderr()}"
        self.close()
        return Outcome("crash", message=message)

    def _stderr(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-4000:]


def _resident(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


@pytest.fixture(scope="module", name="sandbox")
def sandbox_fixture():
    """A Sandbox for a test module's inputs (restarted after a bad one)."""
    with Sandbox(memory=1 << 30, timeout=30.0) as box:
        yield box
