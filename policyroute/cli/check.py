"""`policyroute check`: parse, type-check and lint policies; human, JSON, SARIF or GitHub
Actions annotations (`--format github`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..compiler.loader import Loaded
from ..policy import Policy
from ..syntax.codes import title
from ..syntax.diagnostics import Diagnostic, render_human, sort_key, unique
from ..syntax.source import Source
from .common import (
    EXIT_FAIL,
    EXIT_OK,
    add_format,
    add_output,
    add_quiet,
    add_stdin_filename,
    check_stdin_filename,
    load_input,
    plural,
    policy_files,
    report_output,
    use_colour,
)


def _analysis_lints(policy: Policy) -> list[Diagnostic]:
    from ..analysis import lint

    return lint(policy)


def _check_file(path: Path, stdin_name: str | None = None) -> tuple[list[Diagnostic], bool]:
    """Diagnostics of one file (or stdin) and whether it is a library (declarations to
    import)."""
    diagnostics, library, _policy = check_loaded(load_input(path, stdin_name))
    return diagnostics, library


def _main(loaded: Loaded) -> Source | None:
    return loaded.sources[0] if loaded.sources else None


def check_loaded(loaded: Loaded) -> tuple[list[Diagnostic], bool, Policy | None]:
    """Every diagnostic `check` reports for a loaded policy, whether it is a library, and
    the compiled policy when it has no error. The language server calls this too, so an
    editor shows exactly what `check` prints."""
    from ..compiler.check import check as check_statements

    if not loaded.statements and loaded.diagnostics:
        return loaded.diagnostics, False, None
    checked, found = check_statements(
        loaded.statements, loaded.imports_failed(), loaded.broken, _main(loaded)
    )
    diagnostics = [*loaded.diagnostics, *found]
    if checked.library:
        return diagnostics, True, None
    if any(d.is_error for d in diagnostics):
        return diagnostics, False, None
    if not loaded.statements:
        return diagnostics, False, None
    policy = Policy(loaded)
    diagnostics.extend(_analysis_lints(policy))
    return diagnostics, False, policy


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
    related = [
        {
            "id": i,
            "message": {"text": r.message},
            "physicalLocation": {
                "artifactLocation": {"uri": r.source.name},
                "region": dict(
                    zip(("startLine", "startColumn"), r.source.line_col(r.span.start), strict=True)
                ),
            },
        }
        for i, r in enumerate(d.related)
    ]
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
        **({"relatedLocations": related} if related else {}),
    }


def github_annotation(d: Diagnostic) -> str:
    """A GitHub Actions workflow command: the diagnostic as an annotation on its line."""

    def data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def prop(text: str) -> str:
        return data(text).replace(":", "%3A").replace(",", "%2C")

    where = d.to_json()
    fields = ",".join(
        f"{k}={prop(str(v))}"
        for k, v in (
            ("file", d.source.name),
            ("line", where["line"]),
            ("col", where["column"]),
            ("endLine", where["end_line"]),
            ("endColumn", where["end_column"]),
            ("title", d.code),
        )
    )
    text = d.message + (f"\nhint: {d.hint}" if d.hint else "")
    return f"::{d.severity} {fields}::{data(text)}"


def cmd_check(args: argparse.Namespace) -> int:
    files = policy_files(args.paths)
    check_stdin_filename(args, files)
    everything: list[Diagnostic] = []
    for path in files:
        diagnostics, _library = _check_file(path, args.stdin_filename)
        everything.extend(diagnostics)
    # A mistake in a file several policies import is reported once, in that file.
    everything = unique(everything)
    errors = sum(d.is_error for d in everything)
    warnings = len(everything) - errors
    failed = errors > 0 or (args.strict and warnings > 0)
    ordered = sorted(everything, key=sort_key)
    with report_output(args) as out:
        if args.format == "json":
            print(json.dumps([d.to_json() for d in ordered], indent=2), file=out)
        elif args.format == "sarif":
            print(json.dumps(_sarif(everything), indent=2), file=out)
        elif args.format == "github":
            for d in ordered:
                print(github_annotation(d), file=out)
        else:
            # Diagnostics go to stderr, the summary to stdout; with -o both go to the file.
            problems = out if args.output else sys.stderr
            if everything:
                print(render_human(everything, use_colour(problems)), file=problems)
            if not args.quiet:
                if everything:
                    print(file=problems)
                where = len({d.source.name for d in everything if d.is_error})
                print(
                    f"checked {plural(len(files), 'file')}: {plural(errors, 'error')}"
                    + (f" in {plural(where, 'file')}" if errors else "")
                    + f", {plural(warnings, 'warning')}",
                    file=out,
                )
    return EXIT_FAIL if failed else EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("check", help="parse, type-check and lint policies")
    p.add_argument("paths", nargs="+", metavar="PATH", help=".route files or folders; - for stdin")
    add_format(p, "sarif", "github")
    add_quiet(p)
    add_output(p)
    add_stdin_filename(p)
    p.add_argument("--strict", action="store_true", help="warnings fail the check too")
    p.set_defaults(func=cmd_check)
