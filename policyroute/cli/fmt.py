"""`policyroute fmt`: rewrite policies in the canonical layout.

Exit codes: 0 ok, 1 unformatted files (with --check) or files that do not parse, 2 usage
errors. A file that does not parse prints its diagnostics, never a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from typing import Any

from ..syntax.diagnostics import PolicyError, render_human
from .common import (
    EXIT_FAIL,
    EXIT_OK,
    STDIN,
    STDIN_NAME,
    add_quiet,
    plural,
    policy_files,
    stdin_text,
    use_colour,
)


def run_fmt(args: argparse.Namespace) -> int:
    from ..compiler.loader import read
    from ..syntax.formatter import format_source
    from ..syntax.source import Source

    files = policy_files(args.paths)
    status = EXIT_OK
    changed = failed = 0
    colour = use_colour(sys.stderr)
    for path in files:
        if path == STDIN:
            source: Source | None = Source(stdin_text(), STDIN_NAME)
            problem = None
        else:
            source, problem = read(path)
        if source is None:
            assert problem is not None
            print(render_human([problem], colour), file=sys.stderr)
            status, failed = EXIT_FAIL, failed + 1
            continue
        try:
            formatted = format_source(source.text, source.name)
        except PolicyError as e:
            print(render_human(e.diagnostics, colour), file=sys.stderr)
            status, failed = EXIT_FAIL, failed + 1
            continue
        if path == STDIN and not args.check:
            sys.stdout.write(formatted)  # `fmt -`: a filter, stdin to stdout
            continue
        if formatted == source.text:
            continue
        changed += 1
        if args.check:
            sys.stdout.writelines(
                difflib.unified_diff(
                    source.text.splitlines(keepends=True),
                    formatted.splitlines(keepends=True),
                    f"{source.name} (current)",
                    f"{source.name} (formatted)",
                )
            )
            status = EXIT_FAIL
        else:
            path.write_text(formatted, encoding="utf-8")
            if not args.quiet:
                print(f"formatted {source.name}", file=sys.stderr)
    if not args.quiet and not (files == [STDIN] and not args.check):
        verb = "would be reformatted" if args.check else "reformatted"
        summary = f"{plural(len(files), 'file')}: {changed} {verb}"
        if failed:
            summary += f", {failed} with errors"
        print(summary, file=sys.stderr)
    return status


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("fmt", help="rewrite policies in the canonical layout")
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help=".route files or folders; - reads stdin and writes the formatted text to stdout",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 and show a diff if a file is not formatted",
    )
    add_quiet(p)
    p.set_defaults(func=run_fmt)
