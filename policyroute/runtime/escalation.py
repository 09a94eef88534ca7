"""Escalation as LANGUAGE.md states it: which tiers to try, and which trigger an answer fires.

Pure functions over a `Decision` and an SDK `Message` or exception, shared by the sync and
async routers, the stream and the middleware so all four climb the ladder the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import anthropic
import jsonschema
from anthropic.types import Message
from pydantic import BaseModel, ValidationError

from policyroute.decision import (
    CONFIDENCE,
    ERROR,
    INVALID_JSON,
    MAX_TOKENS,
    REFUSAL,
    TIMEOUT,
    Decision,
    Escalation,
    Tier,
)
from policyroute.runtime.answers import MalformedAnswerError, extract_json, message_text
from policyroute.runtime.deadlines import DeadlineExceeded
from policyroute.runtime.redact import Redactor

# When neither the caller, the rule nor the tier names a max_tokens the API still needs one.
FALLBACK_MAX_TOKENS = 4096

ConfidenceFn = Callable[[Message], "float | None"]


def tiers_of(decision: Decision) -> tuple[Tier, ...]:
    """The tiers to try in order: the decided one, then the ladder one step at a time.

    The ladder is already cut to the effective `max`; cutting again costs nothing and keeps a
    hand-built or older Decision from climbing further than its escalation allows.
    """
    ladder = decision.ladder
    steps = decision.escalation.max_steps
    if steps is not None:
        ladder = ladder[: max(steps, 0)]
    if not decision.escalation.triggers:
        ladder = ()
    return (decision.tier_spec, *ladder)


def cap_for(decision: Decision, index: int, tier: Tier) -> int | None:
    """The output cap of the ladder's `index`-th tier: the rule's for the decided tier (its
    own tier's above it), else the tier's; None when neither names one.

    A tier above gets its own cap so a `max_tokens` escalation can actually say more.
    """
    if index == 0:
        return decision.max_tokens or tier.max_tokens
    return tier.max_tokens or decision.max_tokens


def max_tokens_for(decision: Decision, index: int, tier: Tier, requested: int | None) -> int:
    """The max_tokens that leaves for this tier: the cap is a ceiling, never raised.

    The smaller of the caller's value and the cap; the cap when the caller gives none; the
    caller's value when there is no cap; FALLBACK_MAX_TOKENS when neither exists.
    """
    cap = cap_for(decision, index, tier)
    if requested is None:
        return cap or FALLBACK_MAX_TOKENS
    return requested if cap is None else min(requested, cap)


def retryable_status(status: int) -> bool:
    """Statuses where another tier may fare better: the SDK's own retryable set."""
    return status in (408, 409, 429) or status >= 500


def error_trigger(exc: BaseException) -> str | None:
    """The trigger an exception fires, or None when no tier would fare better (400, 401, ...)."""
    own = getattr(exc, "trigger", _NONE)  # the proxy's own failures say which they fire
    if own is not _NONE:
        return own if isinstance(own, str) else None
    if isinstance(exc, anthropic.APITimeoutError | DeadlineExceeded):
        return TIMEOUT.name
    if isinstance(exc, anthropic.APIStatusError):
        # An `error` event inside a 200 stream (overloaded mid-answer) is the upstream's.
        failed = exc.status_code < 400 or retryable_status(exc.status_code)
        return ERROR.name if failed else None
    if isinstance(exc, anthropic.APIConnectionError | MalformedAnswerError):
        return ERROR.name
    return None


_NONE = object()


def status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) and not isinstance(status, bool) else None


def describe(exc: BaseException, secrets: Iterable[str | None] = ()) -> str:
    """One line for a record or an error message, with API keys masked."""
    return Redactor(secrets).exception(exc)


# -- the answer ---------------------------------------------------------------------------


class JsonExpectation:
    """What the caller asked the answer to be: a pydantic model or a JSON schema."""

    __slots__ = ("_validator", "response_model", "schema")

    def __init__(
        self,
        response_model: type[BaseModel] | None = None,
        json_schema: Mapping[str, Any] | None = None,
    ) -> None:
        self.response_model = response_model
        self.schema = json_schema
        self._validator: Any = None
        if json_schema is not None:
            cls = jsonschema.validators.validator_for(json_schema)
            cls.check_schema(json_schema)  # a broken schema is the caller's error, said at once
            self._validator = cls(json_schema)

    def parse(self, text: str) -> tuple[bool, Any]:
        """(ok, value): the validated object, or (False, None) when it does not parse/validate."""
        try:
            value = extract_json(text)
        except ValueError:
            return False, None
        if self.response_model is not None:
            try:
                return True, self.response_model.model_validate(value)
            except ValidationError:
                return False, None
        if self._validator is not None and not self._validator.is_valid(value):
            return False, None
        return True, value


@dataclass(frozen=True, slots=True)
class Verdict:
    trigger: str | None
    parsed: Any = None
    confidence: float | None = None


def judge(
    message: Message,
    escalation: Escalation,
    expect: JsonExpectation | None = None,
    confidence: ConfidenceFn | None = None,
) -> Verdict:
    """Which trigger (if any) this answer fires, and the parsed object when JSON was asked for.

    Only triggers the escalation lists fire. Order: refusal, max_tokens, invalid_json,
    confidence, so the cheapest, surest reason is the one recorded.
    """
    triggers = escalation.triggers
    parsed: Any = None
    ok = True
    text: str | None = None
    if expect is not None:
        text = message_text(message)
        ok, parsed = expect.parse(text)
    conf: float | None = None
    wants_conf = CONFIDENCE.name in triggers and escalation.confidence_below is not None
    if wants_conf:
        conf = _confidence(message, parsed, text, confidence)
    if message.stop_reason == "refusal" and REFUSAL.name in triggers:
        return Verdict(REFUSAL.name, parsed, conf)
    if message.stop_reason == "max_tokens" and MAX_TOKENS.name in triggers:
        return Verdict(MAX_TOKENS.name, parsed, conf)
    if not ok and INVALID_JSON.name in triggers:
        return Verdict(INVALID_JSON.name, parsed, conf)
    below = escalation.confidence_below
    if wants_conf and conf is not None and below is not None and conf < below:
        return Verdict(CONFIDENCE.name, parsed, conf)
    return Verdict(None, parsed, conf)


def _confidence(
    message: Message, parsed: Any, text: str | None, fn: ConfidenceFn | None
) -> float | None:
    if fn is not None:
        value: Any = fn(message)
    elif isinstance(parsed, BaseModel):
        value = getattr(parsed, "confidence", None)
    elif isinstance(parsed, Mapping):
        value = parsed.get("confidence")
    else:
        if text is None:
            text = message_text(message)
        if "confidence" not in text:
            return None
        try:
            obj = extract_json(text)
        except ValueError:
            return None
        value = obj.get("confidence") if isinstance(obj, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def usage_of(message: Message) -> tuple[int, int, int, int]:
    """(input, output, cache_creation, cache_read) tokens of an answer."""
    u = message.usage
    return (
        u.input_tokens or 0,
        u.output_tokens or 0,
        u.cache_creation_input_tokens or 0,
        u.cache_read_input_tokens or 0,
    )
