"""The `policyroute` command. Exit codes: 0 ok, 1 policy errors or failures, 2 usage errors.

One module per command group, each with a `register(subparsers)`. Command modules import
only the light core at module level; anything heavy (the Anthropic SDK, an HTTP server,
numerical libraries) is imported inside the command that needs it, so `check` and friends
start fast enough for editors and pre-commit hooks.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..syntax.diagnostics import PolicyError, render_human
from .common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, UsageError, _Parser, say_error, use_colour

# The order here is the order of `policyroute --help`.
COMMAND_MODULES = (
    "check",
    "route",
    "test",
    "fmt",
    "diff",
    "explain",
    "watch",
    "ask",
    "replay",
    "learn",
    "judge",
    "serve",
    "lsp",
)


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="policyroute", description="Routing policy for Claude, as text.")
    parser.add_argument("--version", action="version", version=f"policyroute {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line, an unknown option reported with its command's usage (argparse
    leaves it to the top-level parser, whose usage says nothing of the command's options)."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        commands = next(
            a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
        )
        command = commands.choices[args.command]
        command.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = _parse(parser, argv)
    try:
        code = int(args.func(args))
        if not sys.stdout.closed:  # `lsp` hands stdout to the protocol, which closes it
            sys.stdout.flush()  # a full disk or closed pipe is reported here, not at exit
        return code
    except BrokenPipeError:  # `| head`: the reader had enough
        _quiet_stdout()
        return EXIT_OK
    except OSError as e:
        # Reading is reported by each command; what reaches here is a write that failed,
        # most often stdout on a full disk (a file's own error names the file).
        if e.filename is None:
            _quiet_stdout()
            say_error(args.command, f"cannot write the output: {e.strerror or e}")
        else:
            say_error(args.command, f"{e.filename}: {e.strerror or e}")
        return EXIT_FAIL
    except UsageError as e:
        say_error(args.command, str(e))
        return EXIT_USAGE
    except PolicyError as e:
        print(render_human(e.diagnostics, use_colour(sys.stderr)), file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's own flush at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
