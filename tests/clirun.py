"""One way to run the fastmlp command in tests: in-process through fastmlp.cli.main, or as a
child process through `python -m fastmlp` (the real entry point)."""
import contextlib
import io
import subprocess
import sys
from dataclasses import dataclass


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run(*args, stdin=None, block=(), env=None, timeout=120):
    """`python -m fastmlp ARGS` in a child; `block` names modules made unimportable there."""
    argv = [str(a) for a in args]
    if block:
        code = (f"import sys\nfor m in {list(block)!r}:\n    sys.modules[m] = None\n"
                "from fastmlp.cli import main\nsys.exit(main(sys.argv[1:]))\n")
        command = [sys.executable, "-c", code, *argv]
    else:
        command = [sys.executable, "-m", "fastmlp", *argv]
    p = subprocess.run(command, input=stdin, capture_output=True, text=True, env=env,
                       timeout=timeout)
    return Result(p.returncode, p.stdout, p.stderr)


def run_in_process(*args, stdin=None):
    """fastmlp.cli.main(ARGS) here, with stdin, stdout and stderr captured."""
    from fastmlp.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin or "")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main([str(a) for a in args])
    finally:
        sys.stdin = old_stdin
    return Result(status, out.getvalue(), err.getvalue())


RUNNERS = {"in-process": run_in_process, "subprocess": run}


def assert_one_line_error(result, *fragments):
    """Exit status 2 and exactly one stderr line, 'fastmlp: error: ...', with every fragment."""
    assert result.returncode == 2, f"expected exit status 2, got {result.returncode}: {result}"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {result.stderr!r}"
    assert lines[0].startswith("fastmlp: error: "), f"not an error line: {lines[0]!r}"
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} missing from {lines[0]!r}"
    return lines[0]
