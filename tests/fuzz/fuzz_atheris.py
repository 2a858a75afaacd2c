"""atheris (libFuzzer) entry points for long fuzzing runs; see README.md here.

    python tests/fuzz/fuzz_atheris.py TARGET [libFuzzer options] [corpus directory]

TARGET is one of
    npz, safetensors, onnx        coverage-guided byte mutations of a model file, seeded
                                  with a valid one (the corpus grows in .fuzz-corpus/TARGET)
    npz-structured, safetensors-structured, onnx-structured, network
                                  the fuzz tests' hypothesis strategies, driven by libFuzzer

Every input runs in this process; an input whose outcome is not a result or a ValueError /
TypeError naming the file raises, and libFuzzer saves it as crash-<hash> in the current
directory. Hangs and blow-ups are libFuzzer's to catch: pass -timeout=N and -rss_limit_mb=N.
"""
import os
import sys
import tempfile

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fastmlp.io  # noqa: E402,F401
import fastmlp.network  # noqa: E402,F401
from hypothesis import HealthCheck, given, settings  # noqa: E402

import strategies  # noqa: E402
from targets import run, verdict  # noqa: E402

try:
    import fastmlp.interop.onnx  # noqa: F401
except ImportError:
    pass

WORKDIR = tempfile.mkdtemp(prefix="fastmlp-atheris-")
RAW = {"npz": ".npz", "safetensors": ".safetensors", "onnx": ".onnx"}
STRUCTURED = {
    "npz-structured": lambda: given(data=strategies.npz_files())(
        lambda data: judge("load", ".npz", data, False)),
    "safetensors-structured": lambda: given(data=strategies.safetensors_files())(
        lambda data: judge("load", ".safetensors", data, False)),
    "onnx-structured": lambda: given(data=strategies.onnx_files())(
        lambda data: judge("load", ".onnx", data, False)),
    "network": lambda: given(call=strategies.network_calls())(
        lambda call: judge("network", *call)),
}


def judge(target, *args):
    problem = verdict(run(WORKDIR, target, *args))
    if problem is not None:
        raise AssertionError(problem)


def raw_target(suffix):
    def one_input(data):
        judge("load", suffix, data, len(data) % 2 == 1)  # both ways of reading, over time
    return one_input


def structured_target(name):
    test = settings(database=None, deadline=None,
                    suppress_health_check=list(HealthCheck))(STRUCTURED[name]())
    return test.hypothesis.fuzz_one_input


def seeded_corpus(name, argv):
    """The corpus directory the user gave, or .fuzz-corpus/NAME holding the valid seed."""
    given_dirs = [a for a in argv if not a.startswith("-") and os.path.isdir(a)]
    if given_dirs:
        return []
    corpus = os.path.join(".fuzz-corpus", name)
    os.makedirs(corpus, exist_ok=True)
    with open(os.path.join(corpus, "seed"), "wb") as f:
        f.write(strategies.seed_file(RAW[name]))
    return [corpus]


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in {**RAW, **STRUCTURED}:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join([*RAW, *STRUCTURED])}}} [libFuzzer options]")
    name, options = sys.argv[1], sys.argv[2:]
    if name in RAW:
        one_input, options = raw_target(RAW[name]), options + seeded_corpus(name, options)
    else:  # hypothesis needs long inputs from the start to draw whole examples
        one_input, options = structured_target(name), ["-len_control=0", "-max_len=65536",
                                                       *options]
    atheris.Setup([sys.argv[0], *options], one_input)
    atheris.instrument_all()  # coverage of everything loaded: fastmlp, zipfile, json, ...
    atheris.Fuzz()


if __name__ == "__main__":
    main()
