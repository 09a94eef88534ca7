"""What a parse error says: the code, the message in the language's words, the span."""

from __future__ import annotations

import re

from lark import Token
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)

from .keywords import LANGUAGE_KEYWORDS, STATEMENT_KEYWORDS


class _SyntaxProblem(Exception):
    def __init__(self, code: str, message: str, start: int, end: int, hint: str | None = None):
        super().__init__(message)
        self.code, self.message, self.start, self.end, self.hint = code, message, start, end, hint


# Names for terminals in "expected ..." messages.
_TERMINAL_NAMES = {
    "NAME": "a name",
    "STRING": "a string",
    "NUMBER": "a number",
    "REGEX": "a /regex/",
    "COMPARE": "a comparison (==, !=, <, <=, >, >=)",
    "LSQB": "'['",
    "RSQB": "']'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LPAR": "'('",
    "RPAR": "')'",
    "COLON": "':'",
    "COMMA": "','",
    "EQUAL": "'='",
    "DOT": "'.'",
    "__ANON_0": "'->'",
    "MAX_TOKENS": "'max_tokens'",
    "ESCALATE_NEVER": "'escalate never'",
    "ESCALATE_MAX": "'escalate max'",
    "$END": "end of file",
    "PERCENT": "'%'",
}


def _describe_token(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    return f"'{tok}'"


def _expected(expected: set[str]) -> str:
    statement_starts = {k.upper() for k in STATEMENT_KEYWORDS}
    if len(expected & statement_starts) >= 3:
        # At a statement boundary Lark lists every keyword that may start the next one.
        rest = expected - statement_starts - {"$END", "ESCALATE_NEVER", "ESCALATE_MAX"}
        options = {"MAX_TOKENS", "ESCALATE_NEVER", "ESCALATE_MAX"} & expected
        what = ["the next statement"]
        if options:
            what.insert(0, "a rule option (max_tokens, escalate never, escalate max)")
            rest -= options
        if rest:
            what.insert(0, _expected(rest))
        return " or ".join(what)
    names = sorted({_TERMINAL_NAMES.get(e, f"'{e.lower()}'") for e in expected})
    if len(names) > 8:
        names = [*names[:8], "..."]
    return ", ".join(names)


def _problem_from(e: UnexpectedInput, text: str, base: int) -> _SyntaxProblem:
    if isinstance(e, UnexpectedCharacters):
        pos = base + (e.pos_in_stream or 0)
        ch = text[pos] if pos < len(text) else ""
        if ch == '"':
            return _SyntaxProblem(
                "E002", "unterminated string", pos, pos + 1, 'close it with " on the same line'
            )
        if ch == "/":
            return _SyntaxProblem(
                "E003",
                "unterminated or empty regular expression",
                pos,
                pos + 1,
                "write /pattern/flags; escape a slash inside as \\/",
            )
        number = re.match(r"-?[0-9][\w.]*", text[pos:])
        if number is not None:
            return _SyntaxProblem(
                "E007",
                f"invalid number '{number.group()}'",
                pos,
                pos + len(number.group()),
                "numbers look like 300, 60_000, 0.7, 60k or 1.5m",
            )
        shown = repr(ch) if ch.isprintable() and ch else f"U+{ord(ch):04X}" if ch else "EOF"
        return _SyntaxProblem("E001", f"unexpected character {shown}", pos, pos + 1)
    if isinstance(e, UnexpectedToken):
        tok = e.token
        start = base + (tok.start_pos or 0) if tok.type != "$END" else len(text)
        end = base + (tok.end_pos or 0) if tok.type != "$END" else len(text)
        expected = set(e.expected) | set(getattr(e, "accepts", None) or ())
        word = str(tok)
        if "NAME" in expected and word in LANGUAGE_KEYWORDS:
            return _SyntaxProblem(
                "E117",
                f"'{word}' is a keyword of the language and cannot be used as a name",
                start,
                end,
                f"pick another name, like '{word}_'",
            )
        hint = None
        if tok.type == "EQUAL" and "COMPARE" in expected:
            hint = "compare with '==', not '='"
        return _SyntaxProblem(
            "E001",
            f"unexpected {_describe_token(tok)}; expected {_expected(expected)}",
            start,
            max(end, start + 1),
            hint,
        )
    if isinstance(e, UnexpectedEOF):
        return _SyntaxProblem(
            "E001",
            f"unexpected end of file; expected {_expected(set(e.expected))}",
            len(text),
            len(text) + 1,
        )
    return _SyntaxProblem("E001", str(e).splitlines()[0], base, base + 1)
