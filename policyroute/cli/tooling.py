"""`policyroute fmt`, `diff` and `explain`: the commands of the formatter and the analysis.

Exit codes: 0 ok, 1 findings (unformatted files, differences, no witness) or policy errors,
2 usage errors. A policy that does not load prints its diagnostics, never a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from typing import TYPE_CHECKING, Any

from ..syntax.diagnostics import PolicyError, render_human
from .common import (
    EXIT_FAIL,
    EXIT_OK,
    STDIN,
    STDIN_NAME,
    add_format,
    add_quiet,
    load_policy,
    policy_files,
    stdin_text,
    use_colour,
)

if TYPE_CHECKING:
    from ..analysis import Difference
    from ..policy import Policy


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


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
        summary = f"{_plural(len(files), 'file')}: {changed} {verb}"
        if failed:
            summary += f", {failed} with errors"
        print(summary, file=sys.stderr)
    return status


def _describe_difference(d: Difference) -> str:
    from .route import printable

    lines = [printable(d.describe())]
    if d.witness is not None:
        lines.append("  witness: " + json.dumps(d.witness))
    else:
        lines.append("  (no concrete request found for this region)")
    return "\n".join(lines)


def diff_report(old: Policy, new: Policy, fmt: str, quiet: bool = False) -> int:
    """Print the regions two loaded policies route differently; the exit code. Commands that
    build on `diff` (a traffic-weighted diff) reuse this for the plain part."""
    from ..analysis import AnalysisTooLarge, diff

    try:
        found = diff(old, new)
    except AnalysisTooLarge as e:
        print(f"policyroute diff: the policies are too large to compare: {e}", file=sys.stderr)
        return EXIT_FAIL
    if fmt == "json":
        print(json.dumps([d.to_json() for d in found], indent=2))
    else:
        for d in found:
            print(_describe_difference(d))
        if found and not quiet:  # equivalent policies: nothing at all, exit 0
            print(f"{_plural(len(found), 'region')} route differently")
    return EXIT_FAIL if found else EXIT_OK


def run_diff(args: argparse.Namespace) -> int:
    from .replay import impact_requested, run_impact

    if impact_requested(args):  # the change measured on real traffic: cli/replay.py
        args.json = args.format == "json"  # the name cli/replay.py reads
        return run_impact(args)
    old = load_policy(args.old)
    new = load_policy(args.new)
    return diff_report(old, new, args.format, args.quiet)


def run_explain(args: argparse.Namespace) -> int:
    from ..analysis import AnalysisTooLarge, why_no_witness, witness
    from ..analysis.long_text import summary
    from .common import UsageError

    policy = load_policy(args.policy)
    if args.rule not in {r.name for r in policy.rules}:
        names = ", ".join(r.name for r in policy.rules)
        raise UsageError(f"no rule '{args.rule}'; rules: {names}")
    try:
        found = witness(policy, args.rule)
    except AnalysisTooLarge as e:
        print(f"policyroute explain: the policy is too large to analyse: {e}", file=sys.stderr)
        return EXIT_FAIL
    if found is None:
        print(f"policyroute explain: {why_no_witness(policy, args.rule)}", file=sys.stderr)
        return EXIT_FAIL
    described = summary(found)
    if described is not None:
        print(f"policyroute explain: {described}", file=sys.stderr)
    if args.format == "json":
        info = policy.rules[policy.rule_index(args.rule)]
        print(json.dumps({"rule": info.name, "tier": info.tier, "request": found}, indent=2))
    else:
        # The request alone: what `route --request` reads, so the two commands pipe.
        print(json.dumps(found, indent=2))
    return EXIT_OK


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

    p = subparsers.add_parser("diff", help="requests two policies route to different tiers")
    p.add_argument("old", metavar="OLD")
    p.add_argument("new", metavar="NEW")
    add_format(p)
    add_quiet(p)
    from .replay import add_impact_flags

    add_impact_flags(p)
    p.set_defaults(func=run_diff)

    p = subparsers.add_parser(
        "explain",
        help="a request a rule decides (a witness), as JSON `route --request` reads",
    )
    p.add_argument("policy", metavar="POLICY")
    p.add_argument("--rule", required=True, metavar="NAME")
    add_format(p)
    p.set_defaults(func=run_explain)
