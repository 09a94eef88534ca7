"""Reading an answer: its text, the JSON in it, and whether it is a well-formed message at all.

Everything here is linear in the answer's length: an answer is untrusted input, and a slow
parse of a long, oddly fenced reply would stall the request that asked for it.
"""

from __future__ import annotations

import json
from typing import Any

from anthropic.types import Message


class MalformedAnswerError(Exception):
    """A 200 answer that is not a usable message: no message, a broken body, a cut stream.

    Treated as an upstream failure (the `error` trigger): it escalates per policy and is
    recorded, like a 5xx.
    """


def message_text(message: Message) -> str:
    return "".join(getattr(b, "text", "") for b in message.content if b.type == "text")


def _unfence(text: str) -> str:
    """The inside of a ```-fenced answer (``` or ```json), else the text unchanged."""
    body = text.strip()
    if not body.startswith("```"):
        return text
    newline = body.find("\n")
    if newline == -1:
        return text
    info = body[3:newline].strip()
    if info and info.lower() != "json":
        return text
    inner = body[newline + 1 :]
    stripped = inner.rstrip()
    if stripped.endswith("```"):
        inner = stripped[:-3]
    return inner


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError as e:  # nesting deeper than the interpreter's stack
        raise ValueError("JSON nested too deeply") from e


def extract_json(text: str) -> Any:
    """The JSON value in an answer: bare, fenced in ``` or embedded in prose. Raises ValueError.

    Linear time: at most two `json.loads` over slices found by plain string search.
    """
    inner = _unfence(text)
    try:
        return _loads(inner)
    except ValueError:
        start, end = inner.find("{"), inner.rfind("}")
        if start == -1 or end <= start:
            raise
        return _loads(inner[start : end + 1])


def _count(value: Any, name: str, optional: bool) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedAnswerError(f"usage.{name} is {value!r}, not a token count")


def check_message(message: Any) -> Message:
    """`message` if it is a complete, well-typed answer; else MalformedAnswerError.

    The SDK builds stream results without validation, so a body with a missing `usage`, a
    string token count or no content list arrives as a Message that breaks later.
    """
    if not isinstance(message, Message):
        raise MalformedAnswerError(f"the answer is a {type(message).__name__}, not a message")
    if not isinstance(message.content, list):
        raise MalformedAnswerError("the answer has no content list")
    for block in message.content:
        kind = getattr(block, "type", None)
        if not isinstance(kind, str):
            raise MalformedAnswerError("a content block has no type")
        if kind == "text" and not isinstance(getattr(block, "text", None), str):
            raise MalformedAnswerError("a text block has no text")
    if message.stop_reason is not None and not isinstance(message.stop_reason, str):
        raise MalformedAnswerError(f"stop_reason is {message.stop_reason!r}")
    usage = getattr(message, "usage", None)
    if usage is None:
        raise MalformedAnswerError("the answer has no usage")
    _count(getattr(usage, "input_tokens", None), "input_tokens", False)
    _count(getattr(usage, "output_tokens", None), "output_tokens", False)
    _count(getattr(usage, "cache_creation_input_tokens", None), "cache_creation_input_tokens", True)
    _count(getattr(usage, "cache_read_input_tokens", None), "cache_read_input_tokens", True)
    return message
