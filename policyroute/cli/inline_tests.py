"""`policyroute test`: run the inline tests of policies, with rule coverage."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..compiler.loader import load_path
from ..policy import build
from ..syntax.diagnostics import PolicyError, render_human
from ..testing import describe_request, run_tests, uncovered_rules
from .common import EXIT_FAIL, EXIT_OK, policy_files


def cmd_test(args: argparse.Namespace) -> int:
    files = policy_files(args.paths)
    passed = failed = 0
    load_errors = False
    covered_total = rules_total = 0
    report: list[dict[str, Any]] = []
    for path in files:
        try:
            policy = build(load_path(path))
        except PolicyError as e:
            if any(d.code == "E107" and "imported" in d.message for d in e.diagnostics):
                continue  # declarations for import: nothing to test
            print(render_human(e.diagnostics), file=sys.stderr)
            load_errors = True
            continue
        results = run_tests(policy)
        for r in results:
            report.append(r.to_json())
            if r.passed:
                passed += 1
                if args.verbose and args.format == "human":
                    print(f"PASS {r.location()} {r.test.name}")
                continue
            failed += 1
            if args.format == "human":
                expected = r.test.tier + (f" by {r.test.by_rule}" if r.test.by_rule else "")
                print(f"FAIL {r.location()} {r.test.name}")
                print(f"  request:  {describe_request(r.test)}")
                print(f"  expected: {expected}")
                print(f"  actual:   {r.decision.tier} by {r.decision.rule}")
        uncovered = uncovered_rules(policy, results)
        rules_total += len(policy.rules)
        covered_total += len(policy.rules) - len(uncovered)
        if args.coverage and args.format == "human":
            pct = 100.0 * (len(policy.rules) - len(uncovered)) / len(policy.rules)
            print(f"coverage {path}: {pct:.0f}% of {len(policy.rules)} rules")
            for name in uncovered:
                info = policy.rules[policy.rule_index(name)]
                print(f"  not exercised: {name} ({info.file}:{info.line})")
    coverage = 100.0 * covered_total / rules_total if rules_total else 100.0
    if args.format == "json":
        print(
            json.dumps(
                {"passed": passed, "failed": failed, "coverage": coverage, "tests": report},
                indent=2,
            )
        )
    else:
        print(f"{passed} passed, {failed} failed")
        if args.coverage:
            print(f"rule coverage: {coverage:.1f}%")
    if args.fail_under is not None and coverage < args.fail_under:
        print(f"coverage {coverage:.1f}% is under --fail-under {args.fail_under}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_FAIL if failed or load_errors else EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("test", help="run the inline tests of policies")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--coverage", action="store_true", help="list rules no test exercises")
    p.add_argument("--fail-under", type=float, metavar="PCT", dest="fail_under")
    p.add_argument("--format", choices=("human", "json"), default="human")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=cmd_test)
