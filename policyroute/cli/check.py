"""`policyroute check`: parse, type-check and lint policies; human, JSON or SARIF output."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..policy import Policy, build
from ..syntax.codes import title
from ..syntax.diagnostics import Diagnostic, render_human, sort_key, unique
from .common import (
    EXIT_FAIL,
    EXIT_OK,
    add_format,
    add_quiet,
    load_input,
    plural,
    policy_files,
    use_colour,
)


def _analysis_lints(policy: Policy) -> list[Diagnostic]:
    from ..analysis import lint

    return lint(policy)


def _check_file(path: Path) -> tuple[list[Diagnostic], bool]:
    """Diagnostics of one file (or stdin) and whether it is a library (declarations to
    import)."""
    from ..compiler.check import check as check_statements

    loaded = load_input(path)
    if not loaded.statements and loaded.diagnostics:
        return loaded.diagnostics, False
    checked, found = check_statements(loaded.statements, loaded.imports_failed(), loaded.broken)
    diagnostics = [*loaded.diagnostics, *found]
    if checked.library:
        return diagnostics, True
    if not any(d.is_error for d in diagnostics):
        policy = build(loaded)
        diagnostics.extend(_analysis_lints(policy))
    return diagnostics, False


def _sarif(diagnostics: list[Diagnostic]) -> dict[str, Any]:
    used = sorted({d.code for d in diagnostics})
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "policyroute",
                        "rules": [
                            {
                                "id": code,
                                "shortDescription": {"text": title(code)},
                            }
                            for code in used
                        ],
                    }
                },
                "results": [_sarif_result(d) for d in sorted(diagnostics, key=sort_key)],
            }
        ],
    }


def _sarif_result(d: Diagnostic) -> dict[str, Any]:
    where = d.to_json()
    return {
        "ruleId": d.code,
        "level": d.severity,
        "message": {"text": d.message + (f" ({d.hint})" if d.hint else "")},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": d.source.name},
                    "region": {
                        "startLine": where["line"],
                        "startColumn": where["column"],
                        "endLine": where["end_line"],
                        "endColumn": where["end_column"],
                    },
                }
            }
        ],
    }


def cmd_check(args: argparse.Namespace) -> int:
    files = policy_files(args.paths)
    everything: list[Diagnostic] = []
    for path in files:
        diagnostics, _library = _check_file(path)
        everything.extend(diagnostics)
    # A mistake in a file several policies import is reported once, in that file.
    everything = unique(everything)
    errors = sum(d.is_error for d in everything)
    warnings = len(everything) - errors
    failed = errors > 0 or (args.strict and warnings > 0)
    if args.format == "json":
        print(json.dumps([d.to_json() for d in sorted(everything, key=sort_key)], indent=2))
    elif args.format == "sarif":
        print(json.dumps(_sarif(everything), indent=2))
    else:
        if everything:
            print(render_human(everything, use_colour(sys.stderr)), file=sys.stderr)
        if not args.quiet:
            if everything:
                print(file=sys.stderr)
            where = len({d.source.name for d in everything if d.is_error})
            print(
                f"checked {plural(len(files), 'file')}: {plural(errors, 'error')}"
                + (f" in {plural(where, 'file')}" if errors else "")
                + f", {plural(warnings, 'warning')}"
            )
    return EXIT_FAIL if failed else EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("check", help="parse, type-check and lint policies")
    p.add_argument("paths", nargs="+", metavar="PATH", help=".route files or folders; - for stdin")
    add_format(p, "sarif")
    add_quiet(p)
    p.add_argument("--strict", action="store_true", help="warnings fail the check too")
    p.set_defaults(func=cmd_check)
