"""`policyroute ask`: one real request through a policy, showing the decision and each attempt."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from .common import (
    UsageError,
    add_format,
    add_route_flags,
    check_answers,
    merge_route,
    read_json,
    route_flags,
)

if TYPE_CHECKING:  # the SDK loads only when `ask` runs
    from ..runtime.attempts import Attempt, EscalationError, RoutedResult


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "ask",
        help="send one request through a policy to the Anthropic API",
        description="Route one request through POLICY, call the API (ANTHROPIC_API_KEY or "
        "ANTHROPIC_AUTH_TOKEN, ANTHROPIC_BASE_URL), escalate as the policy says, and print "
        "every attempt.",
    )
    p.add_argument("policy", metavar="POLICY", help="the .route file")
    add_route_flags(p)
    p.add_argument("--max-tokens", type=int, dest="max_tokens")
    p.add_argument(
        "--max-retries",
        type=int,
        default=2,
        dest="max_retries",
        help="the SDK's own retries before a tier counts as failed (default 2)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds one try on one tier may take, first byte to last (default: the "
        "runtime's, derived from max_tokens; at least 600)",
    )
    add_format(p)
    p.set_defaults(func=run)


def request_params(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Messages API params, route object) from --prompt or --request, plus flags."""
    flags = route_flags(args)
    route = flags.route
    if args.request is None:
        params: dict[str, Any] = {"messages": [{"role": "user", "content": args.prompt}]}
    else:
        obj, where = read_json(args.request)
        if not isinstance(obj, dict):
            raise UsageError(f"{where}: a request must be a JSON object")
        given = obj.pop("route", None) or {}
        if not isinstance(given, dict):
            raise UsageError(f"{where}: 'route' must be an object")
        params, route = obj, merge_route(given, route)
        params.pop("model", None)
        params.pop("stream", None)
    for key, value in flags.message.items():
        if key == "system":
            params["system"] = value
        elif key == "output_tokens":
            params["max_tokens"] = value
        elif key == "prompt":
            params["messages"] = [
                *params.get("messages", [])[:-1],
                {"role": "user", "content": value},
            ]
        else:
            raise UsageError(
                f"--attr {key}: ask sends a real request; give tools, images or earlier "
                "turns in the --request JSON"
            )
    if args.max_tokens is not None:
        params["max_tokens"] = args.max_tokens
    return params, route


def _attempt_line(a: Attempt) -> str:
    what = f"{a.kind:<8} {a.tier:<10} {a.model:<26}"
    status = str(a.status) if a.status is not None else "-"
    tokens = f"in {a.input_tokens} out {a.output_tokens}"
    if a.cache_creation_tokens or a.cache_read_tokens:
        tokens += f" cache+{a.cache_creation_tokens} cache>{a.cache_read_tokens}"
    end = f"-> {a.trigger}" if a.trigger else "ok"
    line = f"  {what} {status:>4}  {tokens:<28} ${a.cost_usd:.6f}  {a.latency_ms:7.0f} ms  {end}"
    if a.error:
        line += f"\n{'':12}{a.error}"
    return line


def _explain_failure(e: EscalationError, base_url: str) -> str:
    import anthropic

    from policyroute.runtime.deadlines import DeadlineExceeded

    err = e.last_error
    if isinstance(err, anthropic.APITimeoutError | DeadlineExceeded):
        return "the API call timed out"
    if isinstance(err, anthropic.APIConnectionError):
        return f"cannot reach the Anthropic API at {base_url}"
    if isinstance(err, anthropic.AuthenticationError):
        return "the credentials were rejected (check ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN)"
    if isinstance(err, anthropic.NotFoundError):
        return f"unknown model {e.attempts[-1].model!r}: check the policy's tier models"
    return str(e)


def run(args: argparse.Namespace) -> int:
    import policyroute

    try:
        import anthropic

        from policyroute.runtime.attempts import EscalationError
        from policyroute.runtime.deadlines import Deadlines
        from policyroute.runtime.router import Router
    except ImportError as e:  # an SDK outside the supported range: say what to install
        print(f"policyroute ask: {e}", file=sys.stderr)
        return 1
    from policyroute.request import Request, RequestError

    try:
        policy = policyroute.load(args.policy)
    except policyroute.PolicyError as e:
        from policyroute.syntax.diagnostics import render_human

        print(render_human(e.diagnostics), file=sys.stderr)
        return 1
    except OSError as e:
        print(f"policyroute ask: cannot read {args.policy}: {e.strerror or e}", file=sys.stderr)
        return 1
    try:
        check_answers(policy, Request.from_anthropic({}, **route_flags(args).route))
    except (UsageError, RequestError) as e:
        print(f"policyroute ask: {e}", file=sys.stderr)
        return 2
    try:
        params, route = request_params(args)
    except UsageError as e:
        print(f"policyroute ask: {e}", file=sys.stderr)
        return 2
    # The SDK's client reads either: an API key (x-api-key) or a bearer token (a gateway's).
    if not os.environ.get("ANTHROPIC_API_KEY") and not os.environ.get("ANTHROPIC_AUTH_TOKEN"):
        print(
            "policyroute ask: neither ANTHROPIC_API_KEY nor ANTHROPIC_AUTH_TOKEN is set; "
            "export your API key (or a bearer token) to ask",
            file=sys.stderr,
        )
        return 1
    base_url = os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com"
    if args.timeout is not None and not args.timeout > 0:
        print("policyroute ask: --timeout must be above 0", file=sys.stderr)
        return 2
    try:
        # The SDK's default client: every call is streamed, so any max_tokens works with it.
        client = anthropic.Anthropic(max_retries=max(args.max_retries, 0))
        deadlines = Deadlines(attempt=args.timeout)
        result = Router(policy, client, deadlines=deadlines).create(route=route, **params)
    except (RequestError, ValueError) as e:
        print(f"policyroute ask: {e}", file=sys.stderr)
        return 2
    except EscalationError as e:
        if args.format == "json":
            print(json.dumps(_failure_json(e), indent=2))
        else:
            _print_decision(e.decision.to_dict())
            for a in e.attempts:
                print(_attempt_line(a))
        print(f"policyroute ask: {_explain_failure(e, base_url)}", file=sys.stderr)
        return 1
    except Exception as e:  # never a traceback on the command line
        print(f"policyroute ask: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(_result_json(result), indent=2))
    else:
        _print_decision(result.decision.to_dict())
        for a in result.attempts:
            print(_attempt_line(a))
        print(f"total ${result.cost_usd:.6f}  {result.latency_ms:.0f} ms\n")
        print(result.text)
    return 0


def _print_decision(d: dict[str, Any]) -> None:
    ladder = " -> ".join(d["ladder"]) or "(none)"
    print(f"decision: {d['tier']} ({d['model']}) by rule {d['rule']}; ladder: {ladder}")
    print("attempts:")


def _result_json(r: RoutedResult) -> dict[str, Any]:
    return {
        "request_id": r.request_id,
        "decision": r.decision.to_dict(),
        "attempts": [a.to_dict() for a in r.attempts],
        "tier": r.tier,
        "cost_usd": r.cost_usd,
        "latency_ms": r.latency_ms,
        "answer": r.text,
        "stop_reason": r.message.stop_reason,
    }


def _failure_json(e: EscalationError) -> dict[str, Any]:
    return {
        "request_id": e.request_id,
        "decision": e.decision.to_dict(),
        "attempts": [a.to_dict() for a in e.attempts],
        "cost_usd": e.cost_usd,
        "error": str(e),
    }
