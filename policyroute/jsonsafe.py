"""The one guarded JSON path of policyroute: every reader of untrusted JSON goes through it.

The standard `json` module is fast and correct, but on hostile input it fails in ways a caller
cannot report well: an integer of more than 4,300 digits raises Python's conversion-limit
``ValueError``, deep nesting raises ``RecursionError``, ``NaN``/``Infinity`` and ``1e999``
are accepted as floats that later break arithmetic and JSON output, and an escaped lone
surrogate (``"\\ud800"``) gives a string that cannot be encoded as UTF-8. This module keeps
`json`'s C parser on the fast path and turns each of those into one error type.

The API (small and stable; other modules and branches depend on it):

- ``loads(text, *, where=None, line=None, max_depth=MAX_DEPTH) -> Any``: parse a JSON
  document (``str``, or ``bytes`` as UTF-8, a leading BOM allowed). ``line`` is the line
  number of ``text`` in its file when ``text`` is one line of a JSON-lines file, so errors
  name the file's line. Raises `JSONError`, never anything else for bad input.
- ``check_depth(obj, limit=MAX_DEPTH, *, where=None) -> None``: for an already-parsed value
  (a dict from an SDK call, an HTTP framework's parsed body): raises `JSONError` if dicts and
  lists/tuples nest deeper than ``limit``. Iterative: never a ``RecursionError``, and it ends
  on a self-referencing value.
- ``iter_lines(f, *, max_bytes=MAX_LINE_BYTES) -> Iterator[(lineno, line | None)]``: the
  lines of a binary or text file with their 1-based numbers; a line longer than
  ``max_bytes`` comes back as ``None`` after the rest of it was skipped, so a 300 MB line
  costs at most ``max_bytes`` of memory. Blank lines are yielded too; callers skip them.
- ``too_long(max_bytes, *, where=None, line=None) -> JSONError``: the error of such a line
  (kind "size"), so every reader words it alike.
- ``JSONError(ValueError)``: ``message`` (a sentence, no location), ``kind`` (one of
  ``KINDS``: "syntax", "encoding", "number", "depth", "size"), ``where`` (file name or
  "request body"; may be None), ``line`` and ``column`` (1-based; None when unknown).
  ``str(e)`` is ``where:line:column: message`` with the missing parts left out.
- Limits: ``MAX_DEPTH`` (256 levels of arrays/objects), ``MAX_INT_DIGITS`` (308: any such
  integer converts to a float), ``MAX_LINE_BYTES`` (64 MiB, twice the Messages API's
  request-size limit, since a record line carries attempts too).

What is accepted: RFC 8259 JSON; integers of at most ``MAX_INT_DIGITS`` digits; floats that
are finite. Lone surrogates are replaced by U+FFFD (a truncated emoji from a JavaScript
client is not worth refusing a request for; the text stays encodable everywhere after).
Rejected with a `JSONError`: malformed JSON, invalid UTF-8, ``NaN``/``Infinity``, longer
integers, floats out of range, nesting deeper than ``max_depth``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import IO, Any, AnyStr

__all__ = [
    "KINDS",
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "MAX_LINE_BYTES",
    "JSONError",
    "check_depth",
    "iter_lines",
    "loads",
    "too_long",
]

MAX_DEPTH = 256
MAX_INT_DIGITS = 308
MAX_LINE_BYTES = 64 * 1024 * 1024
KINDS = ("syntax", "encoding", "number", "depth", "size")


class JSONError(ValueError):
    """Bad JSON input, with where it was found and why."""

    def __init__(
        self,
        message: str,
        *,
        kind: str = "syntax",
        where: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.message = message
        self.kind = kind
        self.where = where
        self.line = line
        self.column = column
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [str(p) for p in (self.where, self.line, self.column) if p is not None]
        return ":".join([*parts, " " + self.message]) if parts else self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable across replay's worker processes despite the keyword-only arguments.
        return (_rebuild, (self.message, self.kind, self.where, self.line, self.column))


def _rebuild(
    message: str, kind: str, where: str | None, line: int | None, column: int | None
) -> JSONError:
    return JSONError(message, kind=kind, where=where, line=line, column=column)


class _Refused(Exception):
    """Raised from a parse hook; its position is found afterwards by `_locate`."""


def _parse_int(s: str) -> int:
    # The sign is part of `s`; the length test comes before int() so the interpreter's
    # 4,300-digit limit is never reached.
    if len(s) - s.startswith("-") > MAX_INT_DIGITS:
        raise _Refused
    return int(s)


def _parse_float(s: str) -> float:
    value = float(s)
    if math.isinf(value):
        raise _Refused
    return value


def _parse_constant(s: str) -> Any:
    raise _Refused


# Built once: json.loads with hooks would build a decoder (and its scanner) on every call.
_DECODER = json.JSONDecoder(
    parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant
)

# Tokens outside strings that the hooks may refuse, and brackets; strings are matched whole
# (the unrolled form keeps the regex linear) so nothing inside one is taken for a token.
_TOKENS = re.compile(
    r'"[^"\\]*(?:\\.[^"\\]*)*"'
    r"|(?P<num>-?\d+(?P<frac>(?:\.\d+)?(?:[eE][-+]?\d+)?))"
    r"|(?P<const>NaN|-?Infinity)"
    r"|(?P<open>[\[{])|(?P<close>[\]}])",
    re.S,
)
# The C scanner JSONDecoder made (with the hooks above) and json.decoder's whitespace
# pattern: what its decode() calls, which the typeshed stubs leave out.
_SCAN: Any = getattr(_DECODER, "scan_once")  # noqa: B009
_WHITESPACE: Any = getattr(json.decoder, "WHITESPACE").match  # noqa: B009


def _decode(text: str) -> Any:
    """``_DECODER.decode(text)``, the same steps and errors without its two Python frames
    (json.decoder's decode and raw_decode): one call per replayed line."""
    try:
        obj, end = _SCAN(text, _WHITESPACE(text, 0).end())
    except StopIteration as err:
        raise json.JSONDecodeError("Expecting value", text, err.value) from None
    if end != len(text):
        end = _WHITESPACE(text, end).end()
        if end != len(text):
            raise json.JSONDecodeError("Extra data", text, end)
    return obj


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _position(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def _locate(text: str, max_depth: int) -> tuple[str, str, int]:
    """What a hook refused, or where nesting went too deep, and its offset."""
    depth = 0
    for m in _TOKENS.finditer(text):
        if m.group("open"):
            depth += 1
            if depth > max_depth:
                return "depth", _deep(max_depth), m.start()
        elif m.group("close"):
            depth -= 1
        elif m.group("const"):
            return "number", f"{m.group('const')} is not a JSON number", m.start()
        elif m.group("num"):
            tok = m.group("num")
            if not m.group("frac"):
                digits = len(tok) - tok.startswith("-")
                if digits > MAX_INT_DIGITS:
                    return (
                        "number",
                        f"integer of {digits} digits (at most {MAX_INT_DIGITS} are read)",
                        m.start(),
                    )
            elif math.isinf(float(tok)):
                return "number", f"number {_abbrev(tok)} is out of range", m.start()
    return "depth", _deep(max_depth), len(text)


def _deep(limit: int) -> str:
    return f"nested deeper than {limit} levels of arrays and objects"


def _abbrev(tok: str) -> str:
    return tok if len(tok) <= 24 else f"{tok[:10]}...{tok[-10:]}"


def _located(
    found: tuple[str, str, int], text: str, where: str | None, line: int | None
) -> JSONError:
    kind, message, pos = found
    ln, col = _position(text, pos)
    return JSONError(
        message, kind=kind, where=where, line=ln if line is None else line + ln - 1, column=col
    )


def loads(
    text: str | bytes,
    *,
    where: str | None = None,
    line: int | None = None,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """Parse one JSON document; raise `JSONError` (with line and column) for any bad input."""
    from_str = isinstance(text, str)
    if not isinstance(text, str):
        raw = bytes(text)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            ln = raw.count(b"\n", 0, e.start) + 1
            col = len(raw[raw.rfind(b"\n", 0, e.start) + 1 : e.start].decode("utf-8", "replace"))
            return _raise(
                JSONError(
                    f"not UTF-8 text: {e.reason} at byte {e.start}",
                    kind="encoding",
                    where=where,
                    line=ln if line is None else line + ln - 1,
                    column=col + 1,
                )
            )
    # Text that came as UTF-8 bytes cannot hold a raw surrogate; a str may (surrogateescape).
    raw_surrogates = from_str and not text.isascii() and not _encodable(text)
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        obj = _decode(text)
    except json.JSONDecodeError as e:
        msg = e.msg[:1].lower() + e.msg[1:]
        raise JSONError(
            f"invalid JSON: {msg}",
            where=where,
            line=e.lineno if line is None else line + e.lineno - 1,
            column=e.colno,
        ) from None
    except (_Refused, RecursionError):
        raise _located(_locate(text, max_depth), text, where, line) from None
    # A document with fewer brackets than the limit cannot be too deep: a bounded count
    # spares the walk on nearly every input.
    if _more_brackets(text, max_depth) and _too_deep(obj, max_depth):
        raise _located(_locate(text, max_depth), text, where, line)
    # No backslash (one memchr), no escape; else the pattern itself, which scans a line
    # in half the time of a `"\\u" in text` test before it.
    if raw_surrogates or ("\\" in text and _SURROGATE_ESCAPE.search(text)):
        obj = _replace_surrogates(obj)
    return obj


def _more_brackets(text: str, limit: int) -> bool:
    """Whether ``text`` holds more than ``limit`` of "[" and "{" together: counted by find
    (memchr) and only up to the limit, a few times faster than two ``str.count`` passes on
    a request line, which holds a handful."""
    n = 0
    for bracket in "[{":
        i = text.find(bracket)
        while i >= 0:
            n += 1
            if n > limit:
                return True
            i = text.find(bracket, i + 1)
    return False


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _raise(e: JSONError) -> Any:
    raise e


def _too_deep(obj: Any, limit: int) -> bool:
    if not isinstance(obj, (dict, list, tuple)):
        return False
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value
        for child in children:
            if isinstance(child, (dict, list, tuple)):
                stack.append((child, depth + 1))
    return False


def check_depth(obj: Any, limit: int = MAX_DEPTH, *, where: str | None = None) -> None:
    """Raise `JSONError` if ``obj``'s dicts and lists/tuples nest deeper than ``limit``."""
    if _too_deep(obj, limit):
        raise JSONError(_deep(limit), kind="depth", where=where)


def _fix(s: str) -> str:
    return _SURROGATE.sub("\ufffd", s) if _SURROGATE.search(s) else s


def _replace_surrogates(obj: Any) -> Any:
    # Only reached when the text holds a surrogate escape (escaped emoji pairs included), so
    # the rebuild is rare; the depth is already bounded, so recursion is safe here.
    if isinstance(obj, str):
        return _fix(obj)
    if isinstance(obj, list):
        return [_replace_surrogates(v) for v in obj]
    if isinstance(obj, dict):
        return {_fix(k): _replace_surrogates(v) for k, v in obj.items()}
    return obj


def iter_lines(
    f: IO[AnyStr], *, max_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, AnyStr | None]]:
    """Each line of ``f`` with its number; ``None`` for a line over ``max_bytes`` (skipped)."""
    lineno = 0
    while True:
        raw = f.readline(max_bytes + 1)
        if not raw:
            return
        lineno += 1
        if len(raw) > max_bytes and not _ends_line(raw):
            while True:
                rest = f.readline(1 << 20)
                if not rest or _ends_line(rest):
                    break
            yield lineno, None
            continue
        yield lineno, raw


def too_long(max_bytes: int, *, where: str | None = None, line: int | None = None) -> JSONError:
    """The error for a line that `iter_lines` skipped as longer than ``max_bytes``."""
    return JSONError(
        f"line longer than {max_bytes:,} bytes: not read", kind="size", where=where, line=line
    )


def _ends_line(raw: str | bytes) -> bool:
    return raw.endswith(b"\n") if isinstance(raw, bytes) else raw.endswith("\n")
