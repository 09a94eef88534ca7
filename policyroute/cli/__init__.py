"""The `policyroute` command. Exit codes: 0 ok, 1 policy errors or failures, 2 usage errors.

One module per command group, each with a `register(subparsers)`. Command modules import
only the light core at module level; anything heavy (the Anthropic SDK, an HTTP server,
numerical libraries) is imported inside the command that needs it, so `check` and friends
start fast enough for editors and pre-commit hooks.
"""

from __future__ import annotations

import argparse
import importlib
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
)


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="policyroute", description="Routing policy for Claude, as text.")
    parser.add_argument("--version", action="version", version=f"policyroute {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as e:
        say_error(args.command, str(e))
        return EXIT_USAGE
    except PolicyError as e:
        print(render_human(e.diagnostics, use_colour(sys.stderr)), file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
