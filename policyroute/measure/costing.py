"""What one request would cost on one tier, and where each token count comes from.

Real usage wins over any estimate. For each (request, tier) pair, in order:

input tokens
  ``real``: the outcome's ``input_tokens`` for that tier;
  ``recorded``: a decision record's usage (the tier's own answer, else any answered attempt:
  the request text is the same whichever tier reads it);
  ``caller``: the ``context_tokens`` the caller gave;
  ``text``: estimated from the request text, 4 characters a token (images 1,600 each).

output tokens
  ``real``: the outcome's ``output_tokens`` for that tier;
  ``recorded``: a decision record's usage of that tier's answer;
  ``answer``: estimated from the length of that tier's answer (``answer_chars``, 4 a token);
  ``other_tiers``: the mean of what is known (real, recorded or answer length) of the other
  tiers' answers to the same request;
  ``assumed``: ``--output-tokens N``;
  ``max_tokens``: the request's ``max_tokens`` (else the tier's cap): an upper bound.

Cache tokens are counted only from real or recorded usage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..decision import Tier
from ..request import CHARS_PER_TOKEN
from .outcomes import Outcome
from .traffic import TrafficItem

INPUT_SOURCES = ("real", "recorded", "caller", "text")
OUTPUT_SOURCES = ("real", "recorded", "answer", "other_tiers", "assumed", "max_tokens")

SOURCE_TEXT = {
    "real": "real usage from the outcomes",
    "recorded": "real usage from decision records",
    "caller": "the caller's context_tokens",
    "text": "estimated from the request text (4 characters a token)",
    "answer": "estimated from the tier's answer length (4 characters a token)",
    "other_tiers": "estimated from the other tiers' answers to the same request",
    "assumed": "assumed (--output-tokens)",
    "max_tokens": "the request's max_tokens (an upper bound)",
}


@dataclass(frozen=True, slots=True)
class Priced:
    cost: float
    input_source: str
    output_source: str


def _chars_tokens(chars: int) -> int:
    return -(-chars // CHARS_PER_TOKEN)


def _known_output(o: Outcome | None) -> int | None:
    if o is None:
        return None
    if o.usage is not None and o.usage.output_tokens is not None:
        return o.usage.output_tokens
    if o.answer_chars is not None:
        return _chars_tokens(o.answer_chars)
    return None


def price(
    item: TrafficItem,
    tier: Tier,
    outcomes: Mapping[str, Outcome] | None,
    assumed_output: int | None,
    input_estimate: int,
) -> Priced:
    """Cost of ``item`` answered once by ``tier``. ``outcomes`` is this request's row (tier
    name -> outcome); ``input_estimate`` is the request's own estimate, computed once.
    """
    o = outcomes.get(tier.name) if outcomes is not None else None
    usage = o.usage if o is not None else None
    rec = item.recorded
    rec_usage = rec.usage.get(tier.name) if rec is not None else None
    created = read = 0

    if usage is not None and usage.input_tokens is not None:
        inp, isrc = usage.input_tokens, "real"
        created, read = usage.cache_creation_tokens, usage.cache_read_tokens
    elif rec is not None and rec.usage:
        any_usage = rec_usage or next(iter(rec.usage.values()))
        inp, isrc = any_usage.input_tokens, "recorded"
        created, read = any_usage.cache_creation_tokens, any_usage.cache_read_tokens
    elif item.request.context_tokens is not None:
        inp, isrc = input_estimate, "caller"
    else:
        inp, isrc = input_estimate, "text"

    if usage is not None and usage.output_tokens is not None:
        out, osrc = usage.output_tokens, "real"
    elif rec_usage is not None:
        out, osrc = rec_usage.output_tokens, "recorded"
    elif o is not None and o.answer_chars is not None:
        out, osrc = _chars_tokens(o.answer_chars), "answer"
    else:
        others = [
            n
            for n in (
                [_known_output(x) for name, x in (outcomes or {}).items() if name != tier.name]
                + ([u.output_tokens for u in rec.usage.values()] if rec is not None else [])
            )
            if n is not None
        ]
        if others:
            out, osrc = round(sum(others) / len(others)), "other_tiers"
        elif assumed_output is not None:
            out, osrc = assumed_output, "assumed"
        else:
            cap = item.request.output_tokens
            out, osrc = (cap if cap is not None else tier.max_tokens or 0), "max_tokens"
    return Priced(tier.cost(inp, out, created, read), isrc, osrc)
