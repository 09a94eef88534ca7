"""The middleware's calls between the SDK's tries: each one's ladder, kept by idempotency key.

The SDK runs middleware inside its retry loop, once per HTTP attempt, and reuses a call's
idempotency key across those tries; a call handed back to the SDK for a retry is parked
here under that key and taken back when the SDK tries again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from policyroute.decision import Decision
from policyroute.request import Request
from policyroute.runtime.attempts import Attempt
from policyroute.runtime.escalation import retryable_status
from policyroute.runtime.ladder import Ladder, Try
from policyroute.runtime.records import new_request_id
from policyroute.runtime.sdk import APIRequest

# Calls whose SDK retry is pending; bounded so an abandoned call cannot leak forever.
MAX_PENDING_CALLS = 4096


@dataclass(slots=True)
class PendingCall:
    """A routed call between the SDK's tries: its ladder and the rung it is on."""

    decision: Decision
    ladder: Ladder
    step: Try
    body: dict[str, Any]
    route: dict[str, Any]
    request: Request
    start: float
    max_tokens: int | None = None
    request_id: str = field(default_factory=new_request_id)
    conversation: str | None = None
    sticky_from: str | None = None
    continuation: bool = False
    send: Any = None  # how a shadow copy is sent: down this call's middleware chain
    owners: dict[str, str] = field(default_factory=dict)  # whose spend its cost adds to

    @property
    def attempts(self) -> list[Attempt]:
        return self.ladder.attempts


class PendingCalls:
    """Calls parked for the SDK's next try, oldest dropped first past MAX_PENDING_CALLS."""

    def __init__(self) -> None:
        self._calls: OrderedDict[str, PendingCall] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, request: APIRequest) -> PendingCall | None:
        key = request.options.idempotency_key
        if key is None:
            return None
        with self._lock:
            return self._calls.pop(key, None)

    def keep(self, request: APIRequest, call: PendingCall) -> None:
        key = request.options.idempotency_key
        if key is None:
            return
        call.step.attempt.retries += 1  # the SDK tries this rung again
        with self._lock:
            self._calls[key] = call
            while len(self._calls) > MAX_PENDING_CALLS:
                self._calls.popitem(last=False)


def sdk_will_retry(
    request: APIRequest, max_retries: int, status: int | None, headers: Any = None
) -> bool:
    """Whether the SDK tries this request again after a failure (`status` None: no answer),
    by its own rules: the call's retry budget, then `x-should-retry`, then the status."""
    budget = request.max_retries if isinstance(request.max_retries, int) else max_retries
    if request.retries_taken >= budget:
        return False
    if headers is not None:
        should = headers.get("x-should-retry")
        if should in ("true", "false"):
            return bool(should == "true")
    return status is None or retryable_status(status)
