"""`policyroute route`: decide one request and show why."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..decision import Decision, first_max_tokens
from ..policy import Policy
from ..request import Request
from .common import EXIT_OK, add_format, add_route_flags, load_policy, read_request


def _counterfactual(policy: Policy, request: Request, decision: Decision) -> list[str]:
    from ..analysis import AnalysisTooLarge, counterfactual

    try:
        return counterfactual(policy, request, decision)
    except AnalysisTooLarge as e:
        return [f"(no counterfactual: the policy is too large to analyse: {e})"]


def printable(text: str) -> str:
    """Text as a terminal may show it: control and other unprintable characters escaped, so a
    phrase or a path can never move the cursor, change colours or ring the bell."""
    if text.isprintable():
        return text
    out = []
    for c in text:
        if c.isprintable():
            out.append(c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        else:
            code = ord(c)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def _value(v: Any) -> str:
    if isinstance(v, tuple) and len(v) == 2:  # a classifier's (label, confidence)
        return f"label {json.dumps(v[0])}, confidence {v[1]:g}"
    return json.dumps(v, default=str)


def _window(seconds: float) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def _also(policy: Policy, decision: Decision) -> list[str]:
    """What the policy does beside the decision: shadow copies, and the conversation's floor."""
    lines = [
        f"shadow:     {s.share * 100:g}% of the requests routed here are also sent to "
        f"{s.tier.name} in the background, to compare the answers"
        for s in policy.shadows_for(decision.tier)
    ]
    if policy.sticky_window is not None:
        lines.append(
            f"sticky:     for {_window(policy.sticky_window)}, a later turn of this "
            f"conversation goes to {decision.tier} or a tier above it"
        )
    return lines


def _max_tokens_line(decision: Decision, request: Request) -> str:
    sent = first_max_tokens(decision, request.output_tokens)
    cap, asked = decision.max_tokens, request.output_tokens
    if asked is None:
        why = (
            "the policy's cap"
            if cap is not None
            else "no cap in the request or policy: the default"
        )
    elif cap is not None and asked > cap:
        why = f"the request's {asked}, capped by the policy"
    else:
        why = "the request's"
    return f"{sent} ({why})"


def cmd_route(args: argparse.Namespace) -> int:
    policy = load_policy(args.policy)
    request = read_request(args, policy)
    decision = policy.decide(request, explain=args.explain)
    if args.format == "json":
        out = decision.to_dict()
        out["shadows"] = [
            {"tier": s.tier.name, "share": s.share} for s in policy.shadows_for(decision.tier)
        ]
        out["sticky_window_s"] = policy.sticky_window
        out["max_tokens_sent"] = first_max_tokens(decision, request.output_tokens)
        if args.explain:
            out["counterfactual"] = _counterfactual(policy, request, decision)
        print(json.dumps(out, indent=2, default=str))
        return EXIT_OK
    info = policy.rules[policy.rule_index(decision.rule)]
    lines = [
        f"tier:       {decision.tier} ({decision.model})",
        f"rule:       {decision.rule} ({info.file}:{info.line})",
        "max_tokens: " + _max_tokens_line(decision, request),
        "ladder:     " + (" -> ".join(t.name for t in decision.ladder) or "(no escalation)"),
        *_also(policy, decision),
    ]
    if args.explain and decision.explanation is not None:
        lines.append("tested:")
        for step in decision.explanation:
            lines.append(f"  {step.test}: {_value(step.value)} ({step.outcome})")
        changes = _counterfactual(policy, request, decision)
        if changes:
            lines.append("would change the tier:")
            lines.extend(f"  {line}" for line in changes)
    print("\n".join(printable(line) for line in lines))
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("route", help="decide one request and show why")
    p.add_argument("policy", metavar="POLICY")
    add_route_flags(p)
    p.add_argument(
        "--explain",
        action="store_true",
        help="show each test made, its value, and the single changes that would move the tier",
    )
    add_format(p)
    p.set_defaults(func=cmd_route)
