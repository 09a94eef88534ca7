"""Judging one request at a time through `messages.create`, a few at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..decision import Tier
from .cache import JudgeCache
from .plan import JudgeRequest


@dataclass(frozen=True, slots=True)
class FailedJudgement:
    """A judge request that got no verdict (`why`); its pair is reported, not scored."""

    key: str
    why: str


def answer_value(message: Any, tier: Tier, discount: float = 1.0) -> dict[str, Any]:
    """What the cache keeps of a judge's answer: its text, usage and cost."""
    text = "".join(getattr(b, "text", "") for b in message.content if b.type == "text")
    u = message.usage
    inp, out = u.input_tokens or 0, u.output_tokens or 0
    cw = getattr(u, "cache_creation_input_tokens", 0) or 0
    cr = getattr(u, "cache_read_input_tokens", 0) or 0
    return {
        "text": text,
        "model": message.model,
        "input_tokens": inp,
        "output_tokens": out,
        "cost_usd": tier.cost(inp, out, cw, cr) * discount,
    }


def judge_online(
    client: Any,
    requests: Sequence[JudgeRequest],
    cache: JudgeCache,
    tier: Tier,
    concurrency: int = 4,
    progress: Callable[[], None] | None = None,
) -> list[FailedJudgement]:
    import anthropic

    from ..runtime.escalation import describe

    def one(req: JudgeRequest) -> FailedJudgement | None:
        try:
            message = client.messages.create(**req.params)
        except anthropic.APIError as e:
            return FailedJudgement(req.key, describe(e))
        finally:
            if progress is not None:
                progress()
        cache.put(req.key, {**answer_value(message, tier), "via": "messages"})
        return None

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return [f for f in pool.map(one, requests) if f is not None]
