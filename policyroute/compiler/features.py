"""What a request is made of: attributes, their types, and the regex engine.

The attribute table is shared by the checker (types) and the evaluator (extraction), so the
two can never disagree about what `length` or `user.tier` means.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import re2

from ..request import Request

# The phrase matcher lives in compiler/phrases.py; these names stay importable from here.
from .phrases import PhraseMatcher as PhraseMatcher
from .phrases import is_word_char as is_word_char
from .phrases import normalize_phrase as normalize_phrase
from .phrases import normalize_text as normalize_text

# Attribute types as the checker sees them.
TEXT = "text"
INT = "int"
STRING = "string"
BOOL = "bool"
NUMBER = "number"
LABEL = "label"
DYNAMIC = "dynamic"  # metadata.KEY: typed by how a rule uses it


def _metadata_value(key: str) -> Callable[[Request], Any]:
    def get(r: Request) -> Any:
        return r.metadata.get(key)

    return get


@dataclass(frozen=True, slots=True)
class AttrInfo:
    name: str
    type: str
    get: Callable[[Request], Any]
    doc: str


ATTRIBUTES: dict[str, AttrInfo] = {
    a.name: a
    for a in (
        AttrInfo("prompt", TEXT, lambda r: r.prompt, "text of the last user message"),
        AttrInfo("system", TEXT, lambda r: r.system, "the system prompt's text"),
        AttrInfo("text", TEXT, lambda r: r.text, "all text: system and every message"),
        AttrInfo("length", INT, lambda r: r.length, "characters in prompt"),
        AttrInfo(
            "context_tokens",
            INT,
            lambda r: r.estimated_context_tokens(),
            "tokens of the whole request (caller's count, else an estimate)",
        ),
        AttrInfo(
            "output_tokens", INT, lambda r: r.output_tokens, "max_tokens the caller asked for"
        ),
        AttrInfo("turns", INT, lambda r: r.turns, "number of messages"),
        AttrInfo("files", INT, lambda r: r.files, "files involved, as the caller says"),
        AttrInfo("task", STRING, lambda r: r.task, "task, as the caller says"),
        AttrInfo("domain", STRING, lambda r: r.domain, "domain, as the caller says"),
        AttrInfo("user.tier", STRING, lambda r: r.user_tier, "the user's plan"),
        AttrInfo("user.id", STRING, lambda r: r.user_id, "the user's id"),
        AttrInfo("has_tools", BOOL, lambda r: r.has_tools, "the request carries tools"),
        AttrInfo("has_images", BOOL, lambda r: r.has_images, "the request carries images"),
    )
}


def attribute(dotted: str) -> AttrInfo | None:
    """The attribute a dotted name reads, or None. Classifier attributes are the checker's."""
    info = ATTRIBUTES.get(dotted)
    if info is not None:
        return info
    if dotted.startswith("metadata.") and dotted.count(".") == 1 and len(dotted) > 9:
        key = dotted[9:]
        return AttrInfo(dotted, DYNAMIC, _metadata_value(key), f"metadata key {key!r}")
    return None


# -- values by kind -------------------------------------------------------------------------
# A comparison on a value of the wrong kind reads as missing, the same as an absent attribute.


def as_number(v: Any) -> int | float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    return None


def as_string(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def as_bool(v: Any) -> bool | None:
    return v if isinstance(v, bool) else None


# -- regexes ------------------------------------------------------------------------------

REGEX_FLAGS = frozenset("ims")
# RE2's time per character grows with the compiled program (when its DFA gives up, with every
# instruction); above this size a regex can cost microseconds per character of prompt.
REGEX_MAX_PROGRAM = 1000
# A regex reads at most this many characters of its text (the text as if it ended there).
REGEX_MAX_CHARS = 65_536


class RegexError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


_BACKTRACKING = re.compile(r"\\[1-9]|\(\?(?:[=!]|<[=!])|\\k<|\(\?P=")


def compile_regex(pattern: str, flags: str) -> Any:
    """Compile on RE2, whose matching time is linear in the text; refuse what would backtrack."""
    bad = [f for f in flags if f not in REGEX_FLAGS]
    if bad:
        raise RegexError("E303", f"unknown regex flag '{bad[0]}'; the flags are i, m and s")
    if _BACKTRACKING.search(pattern):
        raise RegexError(
            "E302",
            "backreferences and lookaround need a backtracking engine, which can take "
            "exponential time on a crafted prompt",
        )
    inline = "".join(sorted(set(flags)))
    options = re2.Options()
    options.log_errors = False
    try:
        compiled = re2.compile(f"(?{inline}){pattern}" if inline else pattern, options)
    except Exception as e:  # re2 raises its own error type with a bytes message
        msg = e.args[0] if e.args else str(e)
        if isinstance(msg, bytes):
            msg = msg.decode("utf-8", "replace")
        raise RegexError("E301", f"invalid regular expression: {msg}") from None
    if compiled.programsize > REGEX_MAX_PROGRAM:
        raise RegexError(
            "E304",
            f"this regex compiles to {compiled.programsize} instructions, more than "
            f"{REGEX_MAX_PROGRAM}: matching could cost microseconds per character of prompt",
        )
    return compiled


_SURROGATE = re.compile("[\ud800-\udfff]")


def regex_search(regex: Any, text: str) -> bool:
    """Whether `regex` (from compile_regex) matches somewhere in the first REGEX_MAX_CHARS
    characters of `text`. A lone surrogate, which UTF-8 cannot carry, reads as U+FFFD."""
    if len(text) > REGEX_MAX_CHARS:
        text = text[:REGEX_MAX_CHARS]
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        data = _SURROGATE.sub("\ufffd", text).encode("utf-8")
    return regex.search(data) is not None
