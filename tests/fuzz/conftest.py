import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # sandbox, strategies, ...

from sandbox import Sandbox  # noqa: E402


@pytest.fixture(scope="session")
def sandbox():
    """One child process for all the fuzz tests' inputs (restarted after a bad one)."""
    with Sandbox(memory=1 << 30, timeout=30.0) as box:
        yield box
