"""How each HTTP try of a routed middleware call ended, told to its ladder.

The SDK runs the middleware once per HTTP try, inside its own retry loop. A retryable
failure goes back to the SDK while it still has retries left (the call is parked in
`PendingCalls` until the SDK tries again); anything else is settled by the call's ladder,
which says whether to climb, return the answer, or fail.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import anthropic
from anthropic.types import Message

from policyroute.runtime.answers import MalformedAnswerError
from policyroute.runtime.attempts import EscalationError
from policyroute.runtime.chain import error_for
from policyroute.runtime.deadlines import retry_after
from policyroute.runtime.escalation import retryable_status
from policyroute.runtime.ladder import Answer, Tried, Try
from policyroute.runtime.pending import PendingCall, PendingCalls, sdk_will_retry
from policyroute.runtime.records import Outcome
from policyroute.runtime.sdk import APIRequest, APIResponse, AsyncAPIResponse

# How a call ends: its outcome, the error, and the answer (for its shadow copies).
Finish = Callable[[PendingCall, Outcome, "str | None", "Answer | None"], None]


def unreadable(e: BaseException) -> MalformedAnswerError:
    return MalformedAnswerError(f"unreadable answer ({type(e).__name__}: {e})")


class Tries:
    """The ladder's side of the middleware: each try's outcome, settled."""

    def __init__(
        self, pending: PendingCalls, max_retries: int, max_retry_after: float, finish: Finish
    ) -> None:
        self._pending = pending
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        self.finish = finish

    def settle(self, state: PendingCall, out: Tried) -> bool:
        """Hand the rung's outcome to the ladder: True to climb (the next rung is set);
        False when the answer is returned; raises EscalationError when the request failed."""
        step = state.ladder.settle(state.step, out)
        if isinstance(step, Try):
            state.step = step
            return True
        if isinstance(step, Answer):
            self.finish(state, "ok", None, step)
            return False
        self.finish(state, "failed", step.reason, None)
        if step.message is not None and step.error is None:
            # At the top the last answer is returned as it is: the caller can read a refusal.
            return False
        raise EscalationError(
            state.ladder.summary(step),
            decision=state.decision,
            attempts=tuple(state.attempts),
            last_error=step.error,
            last_message=step.message,
            request_id=state.request_id,
        ) from None

    def stream_ended(self, state: PendingCall, out: Tried, closed: bool) -> None:
        """A committed stream's end: the ladder settles it (content was sent: it never
        climbs); a stream the caller closed first is accounted as far as it was seen."""
        if closed:
            step = state.step
            if out.message is not None:
                step.attempt.answered(out.message, step.tier, step.start)
            else:
                step.attempt.status = 200
                step.attempt.latency_ms = (time.perf_counter() - step.start) * 1000
            step.attempt.error = "the client went away before the stream ended"
            self.finish(state, "interrupted", step.attempt.error, None)
            return
        settled = state.ladder.settle(state.step, out)
        if isinstance(settled, Answer):
            self.finish(state, "ok", None, settled)
        elif not isinstance(settled, Try):
            self.finish(state, "interrupted", settled.reason, None)

    def on_exception(self, request: APIRequest, state: PendingCall, exc: Exception) -> bool:
        """A try that raised: True to climb, False to hand it back to the SDK's retry.

        Raises EscalationError when the request has failed for good.
        """
        retry = isinstance(exc, anthropic.APIConnectionError) and sdk_will_retry(
            request, self.max_retries, None
        )
        if retry and not state.ladder.clock.expired():
            self._pending.keep(request, state)
            return False
        return self.settle(state, Tried(error=exc))

    def on_status(
        self,
        request: APIRequest,
        state: PendingCall,
        response: APIResponse[Any] | AsyncAPIResponse[Any],
    ) -> Literal["return", "climb"]:
        """An error status: climb, or "return" it for the SDK to retry; raises when done."""
        raw = response.http_response
        err = error_for(response)
        note = None
        if retryable_status(raw.status_code):
            asked = retry_after(raw.headers)
            if asked is not None and asked > self.max_retry_after:
                # Not worth the wait: the SDK must not sleep on it, and this tier has failed.
                raw.headers["x-should-retry"] = "false"
                note = f"retry-after {asked:.0f} s is over the {self.max_retry_after:.0f} s cap"
            elif state.ladder.clock.expired():
                raw.headers["x-should-retry"] = "false"
            elif sdk_will_retry(request, self.max_retries, raw.status_code, raw.headers):
                self._pending.keep(request, state)
                return "return"
        climb = self.settle(state, Tried(error=err, note=note))
        return "climb" if climb else "return"

    def on_answer(self, state: PendingCall, message: Message | BaseException) -> bool:
        """A 200: True to climb; raises EscalationError when a broken answer ends the request."""
        if isinstance(message, BaseException):
            state.step.attempt.status = 200
            return self.settle(state, Tried(error=message))
        return self.settle(state, Tried(message=message))

    def held(self, state: PendingCall, tried: Tried | None) -> bool:
        """A stream read up to content: False when it is the caller's now (committed, or the
        answer to return), True to climb; raises when the request failed."""
        if tried is None:
            return False
        if tried.error is not None:
            state.step.attempt.status = 200
        return self.settle(state, tried)
