"""Hostile model files: every one loads, or fails with a ValueError / TypeError naming the
file, in bounded time and memory (each runs in the sandbox's child process)."""
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import strategies
from sandbox import sandbox_fixture  # noqa: F401  (the 'sandbox' fixture)
from targets import verdict

FUZZ = settings(max_examples=90, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def judge(outcome):
    event(f"{outcome.kind} {outcome.error}")
    problem = verdict(outcome)
    assert problem is None, problem


@FUZZ
@given(data=strategies.npz_files(), mmap=st.booleans())
def test_npz_files(sandbox, data, mmap):
    judge(sandbox.run("load", ".npz", data, mmap))


@FUZZ
@given(data=strategies.safetensors_files(), mmap=st.booleans())
def test_safetensors_files(sandbox, data, mmap):
    judge(sandbox.run("load", ".safetensors", data, mmap))


@FUZZ
@given(data=st.data())
def test_onnx_files(sandbox, data):
    pytest.importorskip("onnx")
    judge(sandbox.run("load", ".onnx", data.draw(strategies.onnx_files()), False))


@FUZZ
@given(suffix=st.sampled_from([".npz", ".safetensors", ".onnx"]), data=st.data(),
       mmap=st.booleans())
def test_truncated_and_damaged_seed_files(sandbox, suffix, data, mmap):
    if suffix == ".onnx":
        pytest.importorskip("onnx")
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")
    seed = strategies.seed_file(suffix)
    damaged = data.draw(st.integers(0, len(seed)).map(lambda n: seed[:n])
                        | strategies.damaged(seed))
    judge(sandbox.run("load", suffix, damaged, mmap))


@pytest.mark.parametrize("suffix", [".npz", ".safetensors", ".onnx"])
def test_seed_files_load(sandbox, suffix):
    # The strategies start from these: they must be valid, or the fuzzing tests little.
    if suffix == ".onnx":
        pytest.importorskip("onnx")
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")
    outcome = sandbox.run("load", suffix, strategies.seed_file(suffix), False)
    assert outcome.kind == "result" and "4 -> 5 -> 3" in outcome.message or \
        "4 -> 6 -> 3" in outcome.message, outcome
