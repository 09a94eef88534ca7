"""What a decision is: the tier chosen, why, and where escalation may go next."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .request import Request

# Anthropic's published multipliers on the input price for prompt caching.
DEFAULT_CACHE_WRITE_MULTIPLIER = 1.25
DEFAULT_CACHE_READ_MULTIPLIER = 0.1


@dataclass(frozen=True, slots=True)
class Tier:
    """A model tier. Prices are USD per million tokens."""

    name: str
    model: str
    input_price: float
    output_price: float
    max_tokens: int | None = None
    cache_write_multiplier: float = DEFAULT_CACHE_WRITE_MULTIPLIER
    cache_read_multiplier: float = DEFAULT_CACHE_READ_MULTIPLIER

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cache_creation_tokens: int = 0,
        cache_read_tokens: int = 0,
    ) -> float:
        """USD for one call's usage at this tier's prices."""
        per_token_in = self.input_price / 1_000_000
        return (
            input_tokens * per_token_in
            + cache_creation_tokens * per_token_in * self.cache_write_multiplier
            + cache_read_tokens * per_token_in * self.cache_read_multiplier
            + output_tokens * self.output_price / 1_000_000
        )


@dataclass(frozen=True, slots=True)
class ClassifierSpec:
    """A declared classifier: which tier to ask, which labels it may answer, with what prompt."""

    name: str
    tier: Tier
    labels: tuple[str, ...]
    prompt: str


@dataclass(frozen=True, slots=True)
class Classification:
    """A classifier's answer. A failed classifier has label None and confidence 0."""

    label: str | None
    confidence: float = 0.0


FAILED_CLASSIFICATION = Classification(None, 0.0)


class Classifier(Protocol):
    """What `decide()` asks when a rule needs a classifier's answer."""

    def classify(self, spec: ClassifierSpec, request: Request) -> Classification: ...


class StaticClassifier:
    """Answers classifiers from a fixed table: for inline tests and offline replays."""

    def __init__(self, answers: Mapping[str, Classification]) -> None:
        self.answers = dict(answers)

    def classify(self, spec: ClassifierSpec, request: Request) -> Classification:
        return self.answers.get(spec.name, FAILED_CLASSIFICATION)


@dataclass(frozen=True, slots=True)
class Trigger:
    """One escalation trigger: `escalate on NAME` climbs the ladder when it fires."""

    name: str
    doc: str  # when it fires: its row in docs/language.md
    threshold: bool = False  # written `NAME < X`, X in [0, 1]

    @property
    def spelled(self) -> str:
        return f"{self.name} < X" if self.threshold else self.name


# The triggers, one entry each; the runtime names them through these (runtime/escalation.py).
ERROR = Trigger(
    "error",
    "the API call failed (429, 5xx, 529 overloaded, connection) after the client's own retries",
)
TIMEOUT = Trigger("timeout", "the call timed out")
MAX_TOKENS = Trigger("max_tokens", "the answer stopped at `max_tokens`")
REFUSAL = Trigger("refusal", "the answer's stop reason is `refusal`")
INVALID_JSON = Trigger(
    "invalid_json",
    "the caller asked for JSON (a schema or pydantic model) and the answer does not "
    "parse or validate",
)
CONFIDENCE = Trigger(
    "confidence",
    "the answer's self-reported confidence (a `confidence` field of its JSON, or the "
    "caller's extractor) is below X; X in [0, 1]",
    threshold=True,
)

# The trigger registry: the checker's names (E116), the docs table and the runtime's
# verdicts (runtime/escalation.py) are these.
TRIGGERS: dict[str, Trigger] = {
    t.name: t for t in (ERROR, TIMEOUT, MAX_TOKENS, REFUSAL, INVALID_JSON, CONFIDENCE)
}


def triggers_table() -> str:
    """The trigger table of docs/language.md (a test keeps the two equal)."""
    rows = ["| trigger | fires when |", "| --- | --- |"]
    rows += [f"| `{t.spelled}` | {t.doc} |" for t in TRIGGERS.values()]
    return "\n".join(rows) + "\n"


@dataclass(frozen=True, slots=True)
class Escalation:
    """When to climb the ladder. `confidence_below` is the X of `confidence < X`."""

    triggers: frozenset[str] = frozenset()
    confidence_below: float | None = None
    max_steps: int | None = None

    def fires(self, trigger: str) -> bool:
        return trigger in self.triggers


NO_ESCALATION = Escalation(frozenset(), None, 0)


@dataclass(frozen=True, slots=True)
class Shadow:
    """`shadow TIER sample N%`: `share` of the requests routed above `tier` (0 < share <= 1)
    are also sent to `tier` in the background, to collect both answers side by side."""

    tier: Tier
    share: float


@dataclass(frozen=True, slots=True)
class Step:
    """One test the evaluator made on the way to a decision."""

    test: str
    value: Any
    outcome: str

    def __str__(self) -> str:
        return f"{self.test}: {self.value!r} -> {self.outcome}"


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one request: exactly one tier, the rule that chose it, and the ladder above.

    `ladder` holds the tiers escalation may climb to, in order, already cut to the effective
    `max`; it is empty when the rule says `escalate never` or the policy declares no escalation.
    """

    tier: str
    model: str
    rule: str
    max_tokens: int | None
    ladder: tuple[Tier, ...]
    escalation: Escalation
    tier_spec: Tier
    policy: str | None = None
    revision: str = ""
    explanation: tuple[Step, ...] | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tier": self.tier,
            "model": self.model,
            "rule": self.rule,
            "max_tokens": self.max_tokens,
            "ladder": [t.name for t in self.ladder],
            "policy": self.policy,
            "revision": self.revision,
        }
        if self.explanation is not None:
            out["explanation"] = [
                {"test": s.test, "value": s.value, "outcome": s.outcome} for s in self.explanation
            ]
        return out


# When neither the caller, the rule nor the tier names a max_tokens the API still needs one.
# The runtime's `escalation.FALLBACK_MAX_TOKENS`; a test holds the two equal.
FALLBACK_MAX_TOKENS = 4096


def first_max_tokens(decision: Decision, requested: int | None) -> int:
    """The max_tokens the first attempt sends: the caller's value under the decision's cap,
    the cap when the caller gives none, FALLBACK_MAX_TOKENS when neither exists. The same as
    the runtime's `max_tokens_for(decision, 0, ...)` (a test checks it) without importing the
    SDK, so `policyroute route` shows it and stays light."""
    cap = decision.max_tokens or decision.tier_spec.max_tokens
    if requested is None:
        return cap or FALLBACK_MAX_TOKENS
    return requested if cap is None else min(requested, cap)
