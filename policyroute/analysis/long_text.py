"""Witnesses too large to write out: a prompt of a length near a bound, a conversation of many
turns, described by what a request must be instead of materialised.

`rule tiny: length < 100000000000000` has a witness for the default of 10^14 characters: the
builder cannot make that string (MemoryError) and should not print 100 MB for
`length < 100000000` either. Past `LONG_TEXT` characters a prompt is a `LongText`: a str
holding the first characters that matter (the phrases and regex samples the region asks
for, then filler up to `LONG_TEXT`) whose `len()` is the whole length; past `LONG_TURNS`
earlier messages, the conversation is a `ManyTurns` holding only the final user message.

The witness is still checked with `Policy.decide`: `overrides` gives the request the long
prompt and the turn count, so decide sees the real length (and the real first characters:
RE2 caps a repeat at 1,000, so no policy regex can tell the held part from the whole). What
is printed is `described`: the JSON with such a prompt as

    {"$text": {"length": N, "starts": "...", "fill": " ", "contains": [...],
               "excludes": [...], "matches": [...], "avoids": [...]}}

(the text is `starts` followed by `fill` up to N characters; it contains every phrase in
`contains`, none in `excludes`, matches every regex in `matches`, none in `avoids`) and many
turns as a first element ``{"$earlier_messages": K, "content": "."}`` (K messages of
alternating roles, the last an assistant's, before the final user message).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

LONG_TEXT = 4096
LONG_TURNS = 1000
FILLER = " "


class LongText(str):
    """A prompt of `length` characters of which the first `len(str(self))` are held."""

    length: int
    constraints: dict[str, list[str]]

    def __len__(self) -> int:
        return self.length

    def describe(self) -> dict[str, Any]:
        held = str.__str__(self)
        start = held.rstrip(FILLER)
        body: dict[str, Any] = {"length": self.length, "starts": start, "fill": FILLER}
        body.update({k: v for k, v in self.constraints.items() if v})
        return {"$text": body}


def long_text(head: str, length: int, constraints: Mapping[str, Sequence[str]]) -> LongText:
    held = head + FILLER * max(0, LONG_TEXT - len(head))
    text = LongText(held)
    text.length = length
    text.constraints = {k: list(v) for k, v in constraints.items()}
    return text


class ManyTurns(list[Any]):
    """The messages of a conversation of `turns` messages; only the last is held."""

    turns: int


def many_turns(turns: int, last: dict[str, Any]) -> ManyTurns:
    messages = ManyTurns([last])
    messages.turns = turns
    return messages


def _prompt_of(obj: Mapping[str, Any]) -> LongText | None:
    messages = obj.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    content = messages[-1].get("content") if isinstance(messages[-1], Mapping) else None
    if isinstance(content, LongText):
        return content
    if isinstance(content, list):
        for block in content:
            if isinstance(block, Mapping) and isinstance(block.get("text"), LongText):
                text: LongText = block["text"]
                return text
    return None


def overrides(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What `Request.replace` needs so the request read from `obj` has its real size."""
    out: dict[str, Any] = {}
    prompt = _prompt_of(obj)
    if prompt is not None:
        out["prompt"] = prompt
    messages = obj.get("messages")
    if isinstance(messages, ManyTurns):
        out["turns"] = messages.turns
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, LongText):
        return value.describe()
    if isinstance(value, ManyTurns):
        earlier = {"$earlier_messages": value.turns - len(value), "content": "."}
        return [earlier, *(_plain(v) for v in value)]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def described(obj: dict[str, Any]) -> dict[str, Any]:
    """The witness as printable JSON: long parts described, everything else as built."""
    if not overrides(obj):
        return obj
    out: dict[str, Any] = _plain(obj)
    return out


def _find(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        if key in value:
            return value[key]
        value = list(value.values())
    if isinstance(value, list):
        for v in value:
            found = _find(v, key)
            if found is not None:
                return found
    return None


def summary(obj: Any) -> str | None:
    """One line saying what a printed witness describes rather than writes out, or None."""
    parts = []
    text = _find(obj, "$text")
    if isinstance(text, dict):
        parts.append(f'its prompt of {text["length"]:,} characters is "$text"')
    earlier = _find(obj, "$earlier_messages")
    if isinstance(earlier, int):
        parts.append(f'its {earlier:,} earlier messages are "$earlier_messages"')
    if not parts:
        return None
    return "the witness is too long to write out: " + " and ".join(parts) + " (docs/analysis.md)"
