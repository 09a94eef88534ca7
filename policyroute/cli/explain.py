"""`policyroute explain POLICY --rule NAME`: a request the rule decides (a witness).

Exit codes: 0 a witness, 1 no witness (the reason on stderr) or policy errors, 2 usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .common import EXIT_FAIL, EXIT_OK, add_format, load_policy


def run_explain(args: argparse.Namespace) -> int:
    from ..analysis import AnalysisTooLarge, why_no_witness, witness
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
    if args.format == "json":
        info = policy.rules[policy.rule_index(args.rule)]
        print(json.dumps({"rule": info.name, "tier": info.tier, "request": found}, indent=2))
    else:
        # The request alone: what `route --request` reads, so the two commands pipe.
        print(json.dumps(found, indent=2))
    return EXIT_OK


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "explain",
        help="a request a rule decides (a witness), as JSON `route --request` reads",
    )
    p.add_argument("policy", metavar="POLICY")
    p.add_argument("--rule", required=True, metavar="NAME")
    add_format(p)
    p.set_defaults(func=run_explain)
