"""The harness itself: a hang, a blow-up and a crash in the child each fail the input
(instead of stalling or killing the test run), and the child is replaced for the next one."""
import pytest

from sandbox import Sandbox
from targets import verdict


@pytest.mark.parametrize("how, kinds, timeout", [
    ("hang", {"hang"}, 2.0),
    ("blow-up", {"blow-up", "error"}, 60.0),  # error: MemoryError, when RLIMIT_AS stops it
    ("crash", {"crash"}, 60.0),
])
def test_misbehaviour_is_caught_and_the_child_replaced(box, how, kinds, timeout):
    box.timeout = timeout
    outcome = box.run("misbehave", how)
    assert outcome.kind in kinds, outcome
    assert verdict(outcome) is not None
    assert box.run("network", ([[[1.0]]], None, "relu"), {}, [], {}).kind == "result"


@pytest.fixture(scope="module")
def box():
    with Sandbox(memory=512 << 20) as sandbox:
        yield sandbox
