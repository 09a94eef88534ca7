"""What one routed request did: its attempts, its result, and the error when every tier failed."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from anthropic.types import Message
from pydantic import ConfigDict

from policyroute.decision import Decision, Tier
from policyroute.runtime.escalation import usage_of

# "shadow": a background copy of the request to a cheaper tier (runtime/shadowing.py); the caller
# never waits for it, and it counts in a record's `shadow_cost_usd`, not its `cost_usd`.
AttemptKind = Literal["classify", "generate", "shadow"]


@dataclass(slots=True)
class Attempt:
    """One call to the API: a classification or one rung of the ladder.

    `trigger` is the escalation trigger that ended this attempt (None when it succeeded);
    `status` the HTTP status when there was a response, `error` the exception otherwise
    (API keys masked); `retries` how many times this tier was tried again after a
    retryable failure (the client's `max_retries`) before it answered or failed.
    """

    # The same fields, in this order, are a record's `attempts[]` (runtime/records.py reads and
    # writes this class through pydantic): one declaration for the attempt and its record.
    __pydantic_config__ = ConfigDict(extra="forbid")

    kind: AttemptKind
    tier: str
    model: str
    classifier: str | None = None
    status: int | None = None
    error: str | None = None
    trigger: str | None = None
    stop_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    upstream_request_id: str | None = None
    retries: int = 0
    # What routing changed for this attempt (a thinking budget fitted under a cap, a
    # max_tokens climb raised or skipped), or why the ladder continued the way it did.
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def answered(self, message: Message, tier: Tier, start: float) -> None:
        """Account an answer that arrived: status, stop reason, tokens, cost, latency."""
        self.status = 200
        self.stop_reason = message.stop_reason
        i, o, cw, cr = usage_of(message)
        self.input_tokens, self.output_tokens = i, o
        self.cache_creation_tokens, self.cache_read_tokens = cw, cr
        self.cost_usd = tier.cost(i, o, cw, cr)
        self.upstream_request_id = getattr(message, "_request_id", None)
        self.latency_ms = (time.perf_counter() - start) * 1000


@dataclass(slots=True)
class RoutedResult:
    """The outcome of one routed request.

    `message` is the final answer; `parsed` the validated object when the caller asked for
    JSON; `final_trigger` names a trigger that fired on the final answer without escalation
    (only possible when streaming, where an answer already sent is never retried).
    """

    message: Message
    decision: Decision
    attempts: tuple[Attempt, ...]
    request_id: str
    latency_ms: float
    parsed: Any = None
    final_trigger: str | None = None
    cost_usd: float = field(init=False)

    def __post_init__(self) -> None:
        self.cost_usd = sum(a.cost_usd for a in self.attempts)

    def __repr__(self) -> str:
        tiers = " -> ".join(a.tier for a in self.generations)
        return (
            f"<RoutedResult {self.tier} by rule {self.decision.rule} ({tiers}) "
            f"stop={self.message.stop_reason} ${self.cost_usd:.6f} {self.latency_ms:.0f} ms>"
        )

    @property
    def tier(self) -> str:
        """The tier whose answer this is."""
        return self.generations[-1].tier

    @property
    def generations(self) -> tuple[Attempt, ...]:
        return tuple(a for a in self.attempts if a.kind == "generate")

    @property
    def text(self) -> str:
        return "".join(getattr(b, "text", "") for b in self.message.content)


class EscalationError(Exception):
    """Every attempt failed: a trigger fired on each and no tier was left to climb to.

    Carries every attempt, the decision, the last upstream exception (None when the last
    attempt answered but a trigger such as `refusal` fired on it) and that last answer.
    """

    def __init__(
        self,
        message: str,
        *,
        decision: Decision,
        attempts: tuple[Attempt, ...],
        last_error: BaseException | None,
        last_message: Message | None = None,
        request_id: str = "",
    ) -> None:
        super().__init__(message)
        self.decision = decision
        self.attempts = attempts
        self.last_error = last_error
        self.last_message = last_message
        self.request_id = request_id

    @property
    def cost_usd(self) -> float:
        """What every attempt of the failed request cost, in USD."""
        return sum(a.cost_usd for a in self.attempts)


class StreamInterruptedError(EscalationError):
    """A stream failed after content was sent; it is reported, never silently retried."""
