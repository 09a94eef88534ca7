"""`policyroute route`: decide one request and show why."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..policy import Policy
from ..request import Request
from .common import EXIT_OK, add_route_flags, load_policy, read_request


def _counterfactual(policy: Policy, request: Request, decision: Any) -> list[str]:
    from ..analysis import AnalysisTooLarge, counterfactual

    try:
        return counterfactual(policy, request, decision)
    except AnalysisTooLarge as e:
        return [f"(no counterfactual: the policy is too large to analyse: {e})"]


def cmd_route(args: argparse.Namespace) -> int:
    request = read_request(args)
    policy = load_policy(args.policy)
    decision = policy.decide(request, explain=args.explain)
    if args.json:
        out = decision.to_dict()
        if args.explain:
            out["counterfactual"] = _counterfactual(policy, request, decision)
        print(json.dumps(out, indent=2, default=str))
        return EXIT_OK
    info = policy.rules[policy.rule_index(decision.rule)]
    print(f"tier:       {decision.tier} ({decision.model})")
    print(f"rule:       {decision.rule} ({info.file}:{info.line})")
    print(
        f"max_tokens: {decision.max_tokens if decision.max_tokens is not None else '(model default)'}"
    )
    ladder = " -> ".join(t.name for t in decision.ladder) or "(no escalation)"
    print(f"ladder:     {ladder}")
    if args.explain and decision.explanation is not None:
        print("tested:")
        for step in decision.explanation:
            print(f"  {step.test}: {json.dumps(step.value, default=str)} ({step.outcome})")
        for line in _counterfactual(policy, request, decision):
            print(f"  {line}")
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("route", help="decide one request and show why")
    p.add_argument("policy", metavar="POLICY")
    add_route_flags(p)
    p.add_argument("--explain", action="store_true", help="show each test made and its value")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_route)
