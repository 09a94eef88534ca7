"""Pairs -> judge requests, and judge answers -> outcome lines.

Each pair becomes the judge requests its mode needs: one per answer (single), or one per
order of the two answers (pairwise). A request's key is the hash of its content: the cache
key and the Message Batches `custom_id`, so a result joins back to its request by that id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..decision import Tier
from ..pairs import Answer, Pair
from ..request import CHARS_PER_TOKEN
from .cache import content_key
from .deterministic import ReferenceJudge, SchemaJudge
from .prompts import (
    VerdictError,
    conversation_text,
    pairwise_prompt,
    parse_preference,
    parse_rating,
    single_prompt,
)

Mode = Literal["single", "pairwise", "schema", "reference"]
LLM_MODES = ("single", "pairwise")
JUDGE_MAX_TOKENS = 1024
# What a judge's answer usually costs in output tokens (an explanation and a verdict), for the
# estimate; the bound uses JUDGE_MAX_TOKENS.
TYPICAL_JUDGE_OUTPUT = 200


@dataclass(frozen=True, slots=True)
class JudgeRequest:
    key: str
    params: dict[str, Any]

    def input_tokens_estimate(self) -> int:
        chars = len(self.params["system"]) + sum(len(m["content"]) for m in self.params["messages"])
        return -(-chars // CHARS_PER_TOKEN)


@dataclass(slots=True)
class PairPlan:
    pair: Pair
    where: str
    requests: list[JudgeRequest] = field(default_factory=list)


def _params(model: str, system: str, user: str) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": JUDGE_MAX_TOKENS,
        "system": system,
        "messages": [{"role": "user", "content": user}],
    }


def _request(model: str, prompt: tuple[str, str]) -> JudgeRequest:
    params = _params(model, *prompt)
    return JudgeRequest(content_key(params), params)


def plan_pair(pair: Pair, where: str, mode: Mode, judge: Tier | None, rubric: str) -> PairPlan:
    plan = PairPlan(pair, where)
    if mode not in LLM_MODES:
        return plan
    assert judge is not None and pair.request is not None
    assert pair.routed.text is not None and pair.shadow.text is not None
    conversation = conversation_text(pair.request)
    routed, shadow = pair.routed.text, pair.shadow.text
    if mode == "single":
        plan.requests = [
            _request(judge.model, single_prompt(rubric, conversation, routed)),
            _request(judge.model, single_prompt(rubric, conversation, shadow)),
        ]
    else:
        plan.requests = [
            _request(judge.model, pairwise_prompt(rubric, conversation, routed, shadow)),
            _request(judge.model, pairwise_prompt(rubric, conversation, shadow, routed)),
        ]
    return plan


class PairFailed(Exception):
    """A judgement of the pair is missing or unreadable."""


def scores(
    plan: PairPlan,
    mode: Mode,
    answers: Mapping[str, Mapping[str, Any]],
    checker: SchemaJudge | ReferenceJudge | None = None,
) -> tuple[float, float]:
    """(routed score, shadow score). Single: the 1-10 ratings. Pairwise: each answer's share
    of the two orders won (a tie is half), so 1, 0.5 or 0. Deterministic: 1 or 0."""
    pair = plan.pair
    if mode in ("schema", "reference"):
        assert checker is not None
        return (
            checker.score(pair.routed.text or "", pair.reference),
            checker.score(pair.shadow.text or "", pair.reference),
        )
    texts = []
    for req in plan.requests:
        got = answers.get(req.key)
        if got is None:
            raise PairFailed("not judged yet")
        texts.append(str(got.get("text", "")))
    try:
        if mode == "single":
            return parse_rating(texts[0]), parse_rating(texts[1])
        first, second = parse_preference(texts[0]), parse_preference(texts[1])
    except VerdictError as e:
        raise PairFailed(f"the judge's answer: {e}") from None
    # First order: A is routed. Second: A is shadow.
    routed = _won(first, "A") + _won(second, "B")
    return routed / 2, (2 - routed) / 2


def _won(pref: str, side: str) -> float:
    return 1.0 if pref == side else 0.5 if pref == "tie" else 0.0


def outcome_line(
    pair: Pair, answer: Answer, score: float, judge: dict[str, Any], by: str
) -> dict[str, Any]:
    """One OUTCOMES line: `{"id", "tier" (or "model"), "score", ...}` with the answer's real
    usage, so replay prices it from what the API reported."""
    u = answer.usage
    line: dict[str, Any] = {"id": pair.id}
    if by == "model":
        line["model"] = answer.model
    else:
        line["tier"] = answer.tier
    line.update(
        score=score,
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        cache_creation_tokens=u.cache_creation_tokens,
        cache_read_tokens=u.cache_read_tokens,
        answer_chars=answer.chars,
        answered_by=answer.model,
        judge=judge,
    )
    return line
