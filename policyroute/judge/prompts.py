"""What the LLM judge is asked, and how its verdict is read.

Single-answer grading follows the MT-Bench judge (Zheng et al., 2023): a short explanation,
then `Rating: [[N]]` on a 1-10 scale, under a rubric (a general default, or the team's own).
Pairwise preference shows both answers and asks for `[[A]]`, `[[B]]` or `[[C]]` (a tie);
it is asked in both orders, so a judge that favours the first position cancels out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

DEFAULT_RUBRIC = """\
Judge the answer as the person who asked would: is it correct, does it do what was asked,
and is it useful? In order of weight:
1. Correctness: facts, reasoning, code and arithmetic are right; a confident error is worse
   than an admitted limit.
2. Following the request: it answers the question that was asked, in the form asked for
   (format, length, language, constraints).
3. Completeness and depth: it covers what the request needs, no less.
4. Clarity: it is easy to follow; length is not a merit in itself.
A refusal of a harmless request scores low; a correct, direct answer to a simple request can
score 10."""

SINGLE_SYSTEM = """\
You are an impartial judge of AI assistants' answers. Rate the quality of the assistant's \
answer to the conversation below, following the rubric. First give a short explanation (at \
most three sentences), then the rating on a scale of 1 to 10, strictly in this format: \
"Rating: [[N]]", for example "Rating: [[6]]"."""

PAIRWISE_SYSTEM = """\
You are an impartial judge of AI assistants' answers. Compare two assistants' answers to the \
conversation below, following the rubric. Do not let the order in which the answers are \
shown, their length, or the assistants' names influence you. First give a short explanation \
(at most three sentences), then your verdict strictly in this format: "[[A]]" if assistant \
A's answer is better, "[[B]]" if assistant B's is better, "[[C]]" for a tie."""

Preference = Literal["A", "B", "tie"]


class VerdictError(ValueError):
    """The judge's answer holds no verdict in the required format."""


def conversation_text(request: Mapping[str, Any]) -> str:
    """The request as plain text: the system prompt and every turn, labelled."""
    parts: list[str] = []
    system = request.get("system")
    if system:
        parts.append(f"[System]\n{_text(system)}")
    for message in request.get("messages") or []:
        if isinstance(message, Mapping):
            role = "User" if message.get("role") == "user" else "Assistant"
            parts.append(f"[{role}]\n{_text(message.get('content', ''))}")
    return "\n\n".join(parts)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for block in content:
            if isinstance(block, Mapping):
                if block.get("type") == "text":
                    out.append(str(block.get("text", "")))
                else:
                    out.append(f"({block.get('type', 'block')} omitted)")
        return "\n".join(out)
    return str(content)


def single_prompt(rubric: str, conversation: str, answer: str) -> tuple[str, str]:
    user = (
        f"<rubric>\n{rubric}\n</rubric>\n\n<conversation>\n{conversation}\n</conversation>\n\n"
        f"<answer>\n{answer}\n</answer>"
    )
    return SINGLE_SYSTEM, user


def pairwise_prompt(rubric: str, conversation: str, a: str, b: str) -> tuple[str, str]:
    user = (
        f"<rubric>\n{rubric}\n</rubric>\n\n<conversation>\n{conversation}\n</conversation>\n\n"
        f"<answer_a>\n{a}\n</answer_a>\n\n<answer_b>\n{b}\n</answer_b>"
    )
    return PAIRWISE_SYSTEM, user


_RATING = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
_PREFERENCE = re.compile(r"\[\[\s*([ABC])\s*\]\]")


def parse_rating(text: str) -> float:
    """The last `[[N]]` of the judge's answer, N in [1, 10]."""
    found = _RATING.findall(text)
    if not found:
        raise VerdictError("no rating in the form [[N]]")
    value = float(found[-1])
    if not 1 <= value <= 10:
        raise VerdictError(f"rating {found[-1]} is outside 1-10")
    return value


def parse_preference(text: str) -> Preference:
    found = _PREFERENCE.findall(text)
    if not found:
        raise VerdictError("no verdict in the form [[A]], [[B]] or [[C]]")
    last = found[-1]
    return "tie" if last == "C" else "A" if last == "A" else "B"
