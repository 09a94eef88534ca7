"""The escalation ladder as a pure state machine: what to try next, given how each try ended.

Every front end (Router, AsyncRouter, RoutingMiddleware, `policyroute serve`) drives one
`Ladder` per routed request and does only the I/O it asks for:

    step = ladder.first()
    while isinstance(step, Try):
        step = ladder.settle(step, <send step.params(body) to step.tier, observe a Tried>)
    # step is an Answer (return it) or a Failure (fail with it)

Everything else lives here, once: which tiers the ladder holds, the `max_tokens` and
thinking budget of each rung (caps), which trigger an answer or an error fires, whether the
request may climb (the triggers it escalates on, the request's deadline, content already
streamed), the accounting of each attempt, and the shadow copies a success hands off.

Nothing here touches the network, a file or the event loop; `clock` is the only outside
fact read (is the request's deadline past?). Same-tier retries are below the ladder: a
`Tried` is a tier's outcome after the driver's retries (the SDK's `max_retries`).

Caps and thinking (docs/runtime.md, "Caps"): a cap is a ceiling on `max_tokens`, never
raised by routing. The API wants `thinking.budget_tokens` at least 1,024 and below
`max_tokens`; when a cap makes a caller's budget too large, the budget is lowered to half
the capped `max_tokens` (at least 1,024), and where the cap is 1,024 or less thinking is
turned off for that rung. Without a cap and without a caller's `max_tokens` the limit sent
is the budget plus the 4,096-token fallback. A caller's own invalid pair is left alone: it
is the caller's 400. Each change is written to the attempt's `note`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from anthropic.types import Message

from policyroute.decision import MAX_TOKENS, Decision, Shadow, Tier
from policyroute.runtime.attempts import Attempt
from policyroute.runtime.deadlines import Clock
from policyroute.runtime.escalation import (
    FALLBACK_MAX_TOKENS,
    ConfidenceFn,
    JsonExpectation,
    cap_for,
    error_trigger,
    judge,
    status_of,
    tiers_of,
)
from policyroute.runtime.redact import Redactor

# The API's smallest thinking budget.
MIN_THINKING_BUDGET = 1024

# Called once per settled attempt, when its cost is known (spend counters hook in here).
AttemptHook = Callable[[Attempt], None]


@dataclass(frozen=True, slots=True)
class Try:
    """Call `tier` with these parameters, and report back with `Ladder.settle`."""

    index: int
    tier: Tier
    max_tokens: int
    thinking: Any  # the `thinking` parameter to send; None: send none
    attempt: Attempt
    start: float

    def params(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """`body` (the caller's Messages API parameters) as it leaves for this rung."""
        out = {**body, "model": self.tier.model, "max_tokens": self.max_tokens}
        if self.thinking is not None:
            out["thinking"] = self.thinking
        return out


@dataclass(slots=True)
class Tried:
    """How one rung ended, after the driver's same-tier retries.

    `message`: a checked answer, or `error`: what the last try raised (an SDK exception,
    `DeadlineExceeded`, `MalformedAnswerError`, or any exception with a `trigger` and a
    `status_code`, as the proxy's own failures have). `sent`: content already reached the
    caller (live streams only).
    """

    message: Message | None = None
    error: BaseException | None = None
    sent: bool = False
    retries: int = 0
    request_id: str | None = None
    note: str | None = None  # why a retryable failure was not retried


@dataclass(frozen=True, slots=True)
class Answer:
    """Return `message`. `trigger`: one fired that could not be acted on (content already
    sent, or a `max_tokens` climb that could not give more room)."""

    message: Message
    parsed: Any
    trigger: str | None
    shadows: tuple[Shadow, ...]


@dataclass(frozen=True, slots=True)
class Failure:
    """The request has failed: every rung tried, a failure no tier would fix, the deadline
    passed, or a stream broken after content (`interrupted`). `reason` is redacted."""

    reason: str
    error: BaseException | None
    message: Message | None
    interrupted: bool = False
    expired: bool = False

    @property
    def callers(self) -> bool:
        """The caller's own error (a 400, 404...): no tier would answer it differently."""
        return self.error is not None and error_trigger(self.error) is None


Step = Try | Answer | Failure


def fit_thinking(thinking: Any, max_tokens: int, capped: bool) -> tuple[Any, str | None]:
    """The thinking parameter that is valid under `max_tokens`, and a note when changed."""
    if not capped or not isinstance(thinking, Mapping) or thinking.get("type") != "enabled":
        return None, None
    budget = thinking.get("budget_tokens")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < max_tokens:
        return None, None
    if max_tokens > MIN_THINKING_BUDGET:
        lowered = max(MIN_THINKING_BUDGET, max_tokens // 2)
        return (
            {**thinking, "budget_tokens": lowered},
            f"thinking budget {budget} lowered to {lowered} under the cap of {max_tokens}",
        )
    return (
        {"type": "disabled"},
        f"thinking off: the cap of {max_tokens} cannot hold a budget of {MIN_THINKING_BUDGET}",
    )


def _budget(thinking: Any) -> int | None:
    if isinstance(thinking, Mapping) and thinking.get("type") == "enabled":
        b = thinking.get("budget_tokens")
        if isinstance(b, int) and not isinstance(b, bool):
            return b
    return None


@dataclass(slots=True)
class Ladder:
    """One routed request's climb. Holds its attempts (classifications included, when the
    driver appends them to the same list)."""

    decision: Decision
    clock: Clock
    requested: int | None = None  # the caller's max_tokens
    thinking: Any = None  # the caller's thinking parameter
    expect: JsonExpectation | None = None
    confidence: ConfidenceFn | None = None
    shadows_for: Callable[[str], tuple[Shadow, ...]] | None = None
    on_attempt: AttemptHook | None = None
    redactor: Redactor = field(default_factory=Redactor)
    attempts: list[Attempt] = field(default_factory=list)
    tiers: tuple[Tier, ...] = ()
    _last: Message | None = None

    def __post_init__(self) -> None:
        self.tiers = tiers_of(self.decision)

    # -- what to send ---------------------------------------------------------------------

    def limit(self, index: int) -> tuple[int, bool]:
        """(max_tokens for rung `index`, whether a cap set it): the cap is a ceiling on the
        caller's value; the cap, else a fallback, when the caller gives none."""
        tier = self.tiers[index]
        cap = cap_for(self.decision, index, tier)
        if self.requested is None:
            if cap is not None:
                return cap, True
            budget = _budget(self.thinking)
            return FALLBACK_MAX_TOKENS + (budget or 0), False
        if cap is not None and cap < self.requested:
            return cap, True
        return self.requested, False

    def _try(self, index: int, max_tokens: int | None = None, note: str | None = None) -> Try:
        tier = self.tiers[index]
        limit, capped = self.limit(index)
        if max_tokens is not None:
            limit, capped = max_tokens, True
        thinking, fit_note = fit_thinking(self.thinking, limit, capped)
        attempt = Attempt(kind="generate", tier=tier.name, model=tier.model)
        notes = [n for n in (note, fit_note) if n]
        if notes:
            attempt.note = "; ".join(notes)
        self.attempts.append(attempt)
        return Try(index, tier, limit, thinking, attempt, time.perf_counter())

    def first(self) -> Try:
        return self._try(0)

    # -- how it ended ---------------------------------------------------------------------

    def settle(self, step: Try, out: Tried) -> Step:
        """Account the rung's outcome and say what comes next."""
        attempt = step.attempt
        attempt.retries = max(attempt.retries, out.retries)
        attempt.upstream_request_id = out.request_id or getattr(out.error, "request_id", None)
        top = step.index == len(self.tiers) - 1
        if out.error is not None or out.message is None:
            return self._failed(step, out, top)
        message = out.message
        attempt.answered(message, step.tier, step.start)
        attempt.upstream_request_id = attempt.upstream_request_id or out.request_id
        self._hook(attempt)
        try:
            verdict = judge(message, self.decision.escalation, self.expect, self.confidence)
        except Exception as e:  # a caller's confidence function, say: never lose the attempts
            attempt.error = self.redactor.exception(e)
            return self._fail(e, message)
        attempt.trigger = verdict.trigger
        if verdict.trigger is None or out.sent:
            return self._answer(message, verdict.parsed, verdict.trigger)
        if top or self.clock.expired():
            return self._fail(None, message)
        if verdict.trigger == MAX_TOKENS.name:
            return self._climb_for_room(step, message, verdict.parsed)
        self._last = message
        return self._try(step.index + 1)

    def _failed(self, step: Try, out: Tried, top: bool) -> Step:
        attempt = step.attempt
        exc = out.error if out.error is not None else RuntimeError("no answer")
        attempt.status = status_of(exc)
        attempt.error = self.redactor.exception(exc)
        if out.note:
            attempt.error += f" ({out.note})"
        if self.clock.expired():
            attempt.error += " (the request's deadline has passed)"
        trig = error_trigger(exc)
        # A failure no tier would fix (400, 401, 404...) is the caller's: it fires no trigger.
        attempt.trigger = trig
        attempt.latency_ms = (time.perf_counter() - step.start) * 1000
        self._hook(attempt)
        if out.sent:
            return self._fail(exc, None, interrupted=True)
        climbs = trig is not None and trig in self.decision.escalation.triggers
        if climbs and not top and not self.clock.expired():
            return self._try(step.index + 1)
        return self._fail(exc, self._last)

    def _climb_for_room(self, step: Try, message: Message, parsed: Any) -> Step:
        """A `max_tokens` climb: only worth it when the next rung may say more."""
        nxt = step.index + 1
        limit, _ = self.limit(nxt)
        if limit > step.max_tokens:
            self._last = message
            return self._try(nxt)
        cap = cap_for(self.decision, nxt, self.tiers[nxt])
        if cap is not None and cap > step.max_tokens:
            self._last = message
            return self._try(
                nxt, cap, f"max_tokens raised from {step.max_tokens} to {cap} (the tier's cap)"
            )
        step.attempt.note = _join(
            step.attempt.note,
            f"max_tokens escalation skipped: {self.tiers[nxt].name} could not say more "
            f"than {step.max_tokens} tokens",
        )
        return self._answer(message, parsed, MAX_TOKENS.name)

    def _answer(self, message: Message, parsed: Any, trigger: str | None) -> Answer:
        shadows: tuple[Shadow, ...] = ()
        if self.shadows_for is not None:
            shadows = self.shadows_for(self.decision.tier)
        return Answer(message, parsed, trigger, shadows)

    def _fail(
        self, exc: BaseException | None, message: Message | None, interrupted: bool = False
    ) -> Failure:
        last = self.attempts[-1]
        why = last.error or f"trigger {last.trigger!r} fired"
        return Failure(self.redactor(why), exc, message, interrupted, expired=self.clock.expired())

    def _hook(self, attempt: Attempt) -> None:
        if self.on_attempt is not None:
            self.on_attempt(attempt)

    # -- reading back ---------------------------------------------------------------------

    @property
    def generations(self) -> list[Attempt]:
        return [a for a in self.attempts if a.kind == "generate"]

    def summary(self, failure: Failure) -> str:
        """The one-line message of a failed request, for an exception or a client."""
        tiers = " -> ".join(a.tier for a in self.generations)
        if failure.interrupted:
            text = f"stream failed after content was sent ({self.attempts[-1].tier}): "
            text += failure.reason
        else:
            text = f"every attempt failed ({tiers}); last: {failure.reason}"
        if failure.expired and "deadline has passed" not in text:
            text += " (the request's deadline has passed)"
        return self.redactor(text)


def _join(a: str | None, b: str) -> str:
    return f"{a}; {b}" if a else b
