"""The `fastmlp` command line: demo, info, predict, convert and bench.

One module per command (``fastmlp/cli/<name>.py``), imported only when that command runs; each
has ``configure(parser)`` and ``run(args) -> exit status``. :func:`main` holds the one policy
for turning errors into exit statuses: a problem the user can fix (a missing or malformed file,
a bad option, a missing optional package, any ValueError from fastmlp) prints one line,
``fastmlp: error: ...``, on stderr and exits 2; Ctrl-C exits 130; ``FASTMLP_DEBUG=1`` shows the
traceback instead.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Dict, List, NoReturn, Optional, Sequence, Tuple

from ._common import CLIError, one_line

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130

# name -> (module, one-line summary); the module is imported only when its command runs.
COMMANDS: Dict[str, Tuple[str, str]] = {
    "demo": ("fastmlp.cli.demo", "classify digits with the built-in model"),
    "info": ("fastmlp.cli.info", "describe a model file"),
    "predict": ("fastmlp.cli.predict", "run a model over a data file"),
    "convert": ("fastmlp.cli.convert", "convert a model to .npz or .safetensors"),
    "bench": ("fastmlp.cli.bench", "time fastmlp against plain numpy on a model"),
}

__all__ = ["main", "build_parser", "COMMANDS", "CLIError", "EXIT_ERROR", "EXIT_INTERRUPTED"]


class _ParserExit(Exception):
    """argparse finished early (--help, --version, a usage error) with this status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """argparse that returns to main instead of exiting, with usage errors on one line."""

    def exit(self, status: int = 0, message: Optional[str] = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise _ParserExit(status)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"fastmlp: error: {message} (see '{self.prog} --help')\n")


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s module is imported and adds its arguments."""
    from fastmlp import __version__

    parser = _Parser(prog="fastmlp", description="Run multi-layer perceptrons fast.")
    parser.add_argument("--version", action="version", version=f"fastmlp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, (module_name, summary) in COMMANDS.items():
        p = sub.add_parser(name, help=summary, description=summary)
        if name == command:
            module = importlib.import_module(module_name)
            p.description = module.__doc__.strip().splitlines()[0] if module.__doc__ else summary
            module.configure(p)
            p.set_defaults(run=module.run)
    return parser


def _command_name(argv: Sequence[str]) -> Optional[str]:
    # The top-level parser takes no option with a value, so the first word is the command.
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    args_list: List[str] = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(_command_name(args_list)).parse_args(args_list)
        return int(args.run(args) or 0)
    except _ParserExit as exc:
        return exc.status
    except KeyboardInterrupt:
        print("fastmlp: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `fastmlp predict m.npz x.csv -o - | head`: the reader left; that is not an error.
        # Point stdout at devnull so the interpreter's final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (CLIError, ValueError, TypeError, OSError, ImportError) as exc:
        if os.environ.get("FASTMLP_DEBUG"):
            raise
        print(f"fastmlp: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
