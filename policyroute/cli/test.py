"""`policyroute test`: run the inline tests of policies, with rule coverage.

A policy that does not load is a failure (its diagnostics on stderr, and in `--format json`
under "errors"); a policy with rules but no tests is a failure too, since "0 failed" would
say nothing about it. Files that only declare things for import have nothing to test.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..compiler.inline_tests import describe_request, run_tests, uncovered_rules
from ..policy import build
from ..syntax.diagnostics import Diagnostic, PolicyError, render_human, unique
from .common import (
    EXIT_FAIL,
    EXIT_OK,
    add_format,
    add_quiet,
    display,
    load_input,
    policy_files,
    use_colour,
)


def _percent(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {raw!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"a percentage lies in [0, 100], got {raw}")
    return value


def _library(e: PolicyError) -> bool:
    return any(d.code == "E107" and "imported" in d.message for d in e.diagnostics) and not any(
        d.is_error and d.code != "E107" for d in e.diagnostics
    )


def cmd_test(args: argparse.Namespace) -> int:
    files = policy_files(args.paths)
    human = args.format == "human"
    passed = failed = 0
    covered_total = rules_total = 0
    report: list[dict[str, Any]] = []
    problems: list[Diagnostic] = []
    not_loaded: list[str] = []
    untested: list[str] = []
    out: list[str] = []
    for path in files:
        name = display(path)
        try:
            policy = build(load_input(path))
        except PolicyError as e:
            if _library(e):
                continue  # declarations for import: nothing to test
            problems.extend(e.diagnostics)
            not_loaded.append(name)
            continue
        if not policy.tests:
            untested.append(name)
        results = run_tests(policy)
        for r in results:
            report.append(r.to_json())
            if r.passed:
                passed += 1
                if args.verbose and human:
                    out.append(f"PASS {r.location()} {r.test.name}")
                continue
            failed += 1
            if human:
                expected = r.test.tier + (f" by {r.test.by_rule}" if r.test.by_rule else "")
                out.append(f"FAIL {r.location()} {r.test.name}")
                out.append(f"  request:  {describe_request(r.test)}")
                out.append(f"  expected: {expected}")
                out.append(f"  actual:   {r.decision.tier} by {r.decision.rule}")
        uncovered = uncovered_rules(policy, results)
        rules_total += len(policy.rules)
        covered_total += len(policy.rules) - len(uncovered)
        if args.coverage and human:
            pct = 100.0 * (len(policy.rules) - len(uncovered)) / len(policy.rules)
            out.append(f"coverage {name}: {pct:.0f}% of {len(policy.rules)} rules")
            for rule in uncovered:
                info = policy.rules[policy.rule_index(rule)]
                out.append(f"  not exercised: {rule} ({info.file}:{info.line})")
    problems = unique(problems)
    # No rule measured is no coverage, not full coverage.
    coverage = 100.0 * covered_total / rules_total if rules_total else 0.0
    under = args.fail_under is not None and coverage < args.fail_under
    ok = not (failed or not_loaded or untested or under)
    if args.format == "json":
        print(
            json.dumps(
                {
                    "ok": ok,
                    "passed": passed,
                    "failed": failed,
                    "coverage": coverage,
                    "not_loaded": not_loaded,
                    "without_tests": untested,
                    "errors": [d.to_json() for d in problems],
                    "tests": report,
                },
                indent=2,
            )
        )
        return EXIT_OK if ok else EXIT_FAIL
    if problems:
        print(render_human(problems, use_colour(sys.stderr)) + "\n", file=sys.stderr)
    for name in untested:
        print(f"policyroute test: {name}: the policy has no inline tests", file=sys.stderr)
    if under:
        print(
            f"policyroute test: rule coverage {coverage:.1f}% is under --fail-under "
            f"{args.fail_under:g}",
            file=sys.stderr,
        )
    if out:
        print("\n".join(out))
    if not args.quiet:
        summary = f"{passed} passed, {failed} failed"
        if not_loaded:
            summary += (
                f", {len(not_loaded)} polic{'y' if len(not_loaded) == 1 else 'ies'} not loaded"
            )
        if untested:
            summary += f", {len(untested)} without tests"
        if args.coverage or args.fail_under is not None:
            summary += f"; rule coverage {coverage:.1f}%"
        print(summary)
    return EXIT_OK if ok else EXIT_FAIL


def register(sub: Any) -> None:
    p = sub.add_parser("test", help="run the inline tests of policies")
    p.add_argument("paths", nargs="+", metavar="PATH", help=".route files or folders; - for stdin")
    p.add_argument("--coverage", action="store_true", help="list rules no test exercises")
    p.add_argument(
        "--fail-under",
        type=_percent,
        metavar="PCT",
        dest="fail_under",
        help="fail when the share of rules (and defaults) some test decides by is under PCT",
    )
    add_format(p)
    add_quiet(p)
    p.add_argument("-v", "--verbose", action="store_true", help="list passing tests too")
    p.set_defaults(func=cmd_test)
