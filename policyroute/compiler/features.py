"""How the compiler reads what a request is made of: values by kind, and the regex engine.

Which attributes there are, their types and how each is read is the attribute registry's
(request/attributes.py), shared by the checker, the evaluator and generated code.
"""

from __future__ import annotations

import re
from typing import Any

import re2

# The phrase matcher lives in compiler/phrases.py; these names stay importable from here.
from .phrases import PhraseMatcher as PhraseMatcher
from .phrases import is_word_char as is_word_char
from .phrases import normalize_phrase as normalize_phrase
from .phrases import normalize_text as normalize_text

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
