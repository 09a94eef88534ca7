"""The spans of a routed HTTP request: the call's decision and attempts, handed to the
tracing module every front end shares, under the caller's `traceparent`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from policyroute import tracing
from policyroute.server.auth import redact

if TYPE_CHECKING:
    from policyroute.server.routing import ServedCall


def trace_call(call: ServedCall, outcome: str) -> None:
    if not tracing.available() or call.decision is None:
        return
    failed = [a.error for a in call.attempts if a.error]
    error = failed[-1] if outcome != "ok" and failed else None
    tracing.record_call(
        front_end="serve",
        decision=call.decision,
        attempts=call.attempts,
        start=call.start,
        outcome=outcome,
        request_model=call.body.get("model") if isinstance(call.body.get("model"), str) else None,
        max_tokens=call.max_tokens,
        request_id=call.request_id,
        error=redact(error, call.caller.secrets) if error else None,
        sticky_from=call.sticky_from,
        headers=call.headers,
    )
