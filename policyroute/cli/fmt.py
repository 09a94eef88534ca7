"""`policyroute fmt`: rewrite policies in the canonical layout.

Exit codes: 0 ok, 1 unformatted files (with --check) or files that do not parse, 2 usage
errors. A file that does not parse prints its diagnostics, never a traceback. `--format json`
prints one entry per file (its status: unchanged, reformatted, would be reformatted, formatted
for stdin with its text, or error with its diagnostics) instead of the diff and summary.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from typing import Any

from ..syntax.diagnostics import PolicyError, render_human
from .common import (
    EXIT_FAIL,
    EXIT_OK,
    STDIN,
    STDIN_NAME,
    add_format,
    add_quiet,
    add_stdin_filename,
    check_stdin_filename,
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
    check_stdin_filename(args, files)
    human = args.format == "human"
    status = EXIT_OK
    changed = failed = 0
    colour = use_colour(sys.stderr)
    report: list[dict[str, Any]] = []
    for path in files:
        if path == STDIN:
            source: Source | None = Source(stdin_text(), args.stdin_filename or STDIN_NAME)
            problem = None
        else:
            source, problem = read(path)
        if source is None:
            assert problem is not None
            print(render_human([problem], colour), file=sys.stderr)
            report.append(
                {"file": problem.source.name, "status": "error", "diagnostics": [problem.to_json()]}
            )
            status, failed = EXIT_FAIL, failed + 1
            continue
        entry: dict[str, Any] = {"file": source.name}
        report.append(entry)
        try:
            formatted = format_source(source.text, source.name)
        except PolicyError as e:
            print(render_human(e.diagnostics, colour), file=sys.stderr)
            entry.update(status="error", diagnostics=[d.to_json() for d in e.diagnostics])
            status, failed = EXIT_FAIL, failed + 1
            continue
        if path == STDIN and not args.check:
            entry.update(status="formatted", text=formatted)
            if human:
                sys.stdout.write(formatted)  # `fmt -`: a filter, stdin to stdout
            continue
        if formatted == source.text:
            entry["status"] = "unchanged"
            continue
        changed += 1
        if args.check:
            entry["status"] = "would be reformatted"
            if human:
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
            entry["status"] = "reformatted"
            if not args.quiet and human:
                print(f"formatted {source.name}", file=sys.stderr)
    if not human:
        print(json.dumps(report, indent=2))
    elif not args.quiet and not (files == [STDIN] and not args.check):
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
    add_format(p)
    add_quiet(p)
    add_stdin_filename(p)
    p.set_defaults(func=run_fmt)
