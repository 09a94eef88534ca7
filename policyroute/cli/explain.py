"""`policyroute explain POLICY --rule NAME`: a request the rule decides (a witness).

Exit codes: 0 a witness, 1 no witness (the reason on stderr) or policy errors, 2 usage errors.
Formats: `request` (the default) is the request alone, the JSON `route --request` reads, so
the two commands pipe; `json` wraps it with the rule and tier; `human` says it in words.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from .common import EXIT_FAIL, EXIT_OK, load_policy

if TYPE_CHECKING:
    from ..policy import Policy


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
    info = policy.rules[policy.rule_index(args.rule)]
    described = summary(found)
    if described is not None:
        print(f"policyroute explain: {described}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps({"rule": info.name, "tier": info.tier, "request": found}, indent=2))
    elif args.format == "human":
        print(human(policy, info.name, found, args.policy))
    else:
        print(json.dumps(found, indent=2))
    return EXIT_OK


def human(policy: Policy, rule: str, request: dict[str, Any], path: str) -> str:
    """A witness in words: what the request holds and where the rule sends it."""
    decision = policy.decisions[policy.rule_index(rule)]
    who = "the default" if rule == "default" else f"rule {rule}"
    lines = [f"{who} routes this request to {decision.tier} ({decision.model}):"]
    for message in request.get("messages", []):
        lines.append(f"  {message.get('role', 'user')} message: {_text(message.get('content'))}")
    if "system" in request:
        lines.append(f"  system: {_text(request['system'])}")
    if "max_tokens" in request:
        lines.append(f"  max_tokens: {request['max_tokens']}")
    if request.get("tools"):
        lines.append(f"  tools: {len(request['tools'])}")
    for key, value in _flat(request.get("route", {})):
        answer = key.startswith("classifiers.")
        shown = f"  {key.removeprefix('classifiers.')} = {json.dumps(value)}"
        lines.append(shown + ("  (the classifier's answer)" if answer else ""))
    lines.append(
        f"(`policyroute explain {path} --rule {rule}` prints it as the JSON "
        "`policyroute route --request -` reads)"
    )
    return "\n".join(lines)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return json.dumps(content)
    if isinstance(content, list):
        kinds = [b.get("type", "?") for b in content if isinstance(b, dict)]
        texts = [b.get("text", "") for b in content if isinstance(b, dict) and "text" in b]
        shown = json.dumps("\n".join(texts))
        others = [k for k in kinds if k != "text"]
        return shown + (f" (and {', '.join(others)})" if others else "")
    return json.dumps(content)


def _flat(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """`route` attributes as dotted names: user.tier, metadata.KEY, classifiers.NAME.label."""
    if not isinstance(obj, dict):
        return [(prefix, obj)]
    out: list[tuple[str, Any]] = []
    for key, value in obj.items():
        out.extend(
            _flat(value, f"{prefix}{key}.")
            if isinstance(value, dict)
            else [(f"{prefix}{key}", value)]
        )
    return out


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "explain",
        help="a request a rule decides (a witness), as JSON `route --request` reads",
    )
    p.add_argument("policy", metavar="POLICY")
    p.add_argument("--rule", required=True, metavar="NAME")
    p.add_argument(
        "--format",
        choices=("request", "human", "json"),
        default="request",
        help="request: the request JSON alone (the default; pipes to `route --request -`); "
        "human: in words; json: the request with its rule and tier",
    )
    p.add_argument(
        "--json", dest="format", action="store_const", const="json", help="same as --format json"
    )
    p.set_defaults(func=run_explain)
