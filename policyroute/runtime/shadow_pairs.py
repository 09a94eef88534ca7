"""Shadow pairs: what the routed tier and a shadow tier answered to one request, built and
written as JSON lines (the format is `policyroute.pairs`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from anthropic.types import Message

from policyroute.pairs import Answer, DecisionRef, Pair, PromptDigest, Usage
from policyroute.runtime.answers import message_text
from policyroute.runtime.attempts import Attempt
from policyroute.runtime.records import JsonlWriter

if TYPE_CHECKING:
    from policyroute.runtime.shadowing import Served


class PairSink(Protocol):
    def write(self, pair: Pair) -> None: ...


class PairsWriter(JsonlWriter):
    """Appends pairs to a JSON-lines file: the record writer's one locked write per line."""


def make_pair(served: Served, shadow: Attempt, message: Message, keep: bool) -> Pair:
    """The pair of one shadow call: the routed answer beside the shadow's; the texts and
    the request only when prompts are logged (`keep`)."""
    decision = served.decision
    routed_text = message_text(served.message)
    shadow_text = message_text(message)
    request = None
    if keep:
        request = _jsonable(
            {
                **served.params,
                **({"max_tokens": served.max_tokens} if served.max_tokens is not None else {}),
                "route": dict(served.route),
                "id": served.request_id,
            }
        )
    return Pair(
        id=served.request_id,
        time=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        policy=decision.policy,
        revision=decision.revision,
        decision=DecisionRef(tier=decision.tier, model=decision.model, rule=decision.rule),
        request=request,
        prompt=_digest(served.text),
        routed=_answer(served.answer, routed_text, keep),
        shadow=_answer(shadow, shadow_text, keep),
    )


def _digest(text: str | None) -> PromptDigest | None:
    if text is None:
        return None
    import hashlib

    return PromptDigest(
        length=len(text), sha256=hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    )


def _answer(attempt: Attempt, text: str, keep: bool) -> Answer:
    return Answer(
        tier=attempt.tier,
        model=attempt.model,
        text=text if keep else None,
        chars=len(text),
        stop_reason=attempt.stop_reason,
        usage=Usage(
            input_tokens=attempt.input_tokens,
            output_tokens=attempt.output_tokens,
            cache_creation_tokens=attempt.cache_creation_tokens,
            cache_read_tokens=attempt.cache_read_tokens,
        ),
        cost_usd=attempt.cost_usd,
        latency_ms=round(attempt.latency_ms, 3),
    )


def _jsonable(obj: Any) -> dict[str, Any]:
    def default(o: Any) -> Any:
        dump = getattr(o, "model_dump", None)
        if callable(dump):
            return dump(mode="json")
        return str(o)

    value: dict[str, Any] = json.loads(json.dumps(obj, default=default))
    return value
