"""`policyroute fmt`, `diff` and `explain`: the commands of the formatter and the analysis.

Exit codes: 0 ok, 1 findings (unformatted files, differences, no witness) or policy errors,
2 usage errors. A policy that does not load prints its diagnostics, never a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any

from ..syntax.diagnostics import PolicyError, render_human

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _route_files(paths: list[str]) -> list[Path] | None:
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(p.rglob("*.route")))
        elif p.is_file():
            out.append(p)
        else:
            print(f"policyroute fmt: {raw}: no such file or folder", file=sys.stderr)
            return None
    return out


def run_fmt(args: argparse.Namespace) -> int:
    from ..compiler.loader import read
    from ..syntax.formatter import format_source

    files = _route_files(args.paths)
    if files is None:
        return EXIT_USAGE
    status = EXIT_OK
    for path in files:
        source, problem = read(path)
        if source is None:
            assert problem is not None
            print(render_human([problem]), file=sys.stderr)
            status = EXIT_FAIL
            continue
        try:
            formatted = format_source(source.text, source.name)
        except PolicyError as e:
            print(render_human(e.diagnostics), file=sys.stderr)
            status = EXIT_FAIL
            continue
        if formatted == source.text:
            continue
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
            print(f"formatted {source.name}")
    return status


def _load(path: str) -> Any:
    from ..policy import load

    if not Path(path).is_file():
        print(f"policyroute: {path}: no such file", file=sys.stderr)
        return None
    try:
        return load(path)
    except PolicyError as e:
        print(render_human(e.diagnostics), file=sys.stderr)
        return False


def run_diff(args: argparse.Namespace) -> int:
    from .replay import impact_requested, run_impact

    if impact_requested(args):  # the change measured on real traffic: cli/replay.py
        return run_impact(args)
    from ..analysis import AnalysisTooLarge, diff

    old = _load(args.old)
    new = _load(args.new)
    if old is None or new is None:
        return EXIT_USAGE
    if old is False or new is False:
        return EXIT_FAIL
    try:
        found = diff(old, new)
    except AnalysisTooLarge as e:
        print(f"policyroute diff: the policies are too large to compare: {e}", file=sys.stderr)
        return EXIT_FAIL
    if args.json:
        print(json.dumps([d.to_json() for d in found], indent=2))
    else:
        for d in found:
            print(d.describe())
            if d.witness is not None:
                print("  witness: " + json.dumps(d.witness))
            else:
                print("  (no concrete request found for this region)")
        if found:
            print(f"{len(found)} region(s) route differently")
    return EXIT_FAIL if found else EXIT_OK


def run_explain(args: argparse.Namespace) -> int:
    from ..analysis import AnalysisTooLarge, why_no_witness, witness

    policy = _load(args.policy)
    if policy is None:
        return EXIT_USAGE
    if policy is False:
        return EXIT_FAIL
    if args.rule not in {r.name for r in policy.rules}:
        names = ", ".join(r.name for r in policy.rules)
        print(f"policyroute explain: no rule '{args.rule}'; rules: {names}", file=sys.stderr)
        return EXIT_USAGE
    try:
        found = witness(policy, args.rule)
    except AnalysisTooLarge as e:
        print(f"policyroute explain: the policy is too large to analyse: {e}", file=sys.stderr)
        return EXIT_FAIL
    if found is None:
        print(why_no_witness(policy, args.rule), file=sys.stderr)
        return EXIT_FAIL
    print(json.dumps(found, indent=2))
    return EXIT_OK


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("fmt", help="rewrite policies in the canonical layout")
    p.add_argument("paths", nargs="+", metavar="PATH", help=".route files or folders")
    p.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 and show a diff if a file is not formatted",
    )
    p.set_defaults(func=run_fmt)

    p = subparsers.add_parser("diff", help="requests two policies route to different tiers")
    p.add_argument("old", metavar="OLD")
    p.add_argument("new", metavar="NEW")
    p.add_argument("--json", action="store_true")
    from .replay import add_impact_flags

    add_impact_flags(p)
    p.set_defaults(func=run_diff)

    p = subparsers.add_parser("explain", help="a request a rule decides (a witness), as JSON")
    p.add_argument("policy", metavar="POLICY")
    p.add_argument("--rule", required=True, metavar="NAME")
    p.set_defaults(func=run_explain)
