"""Character offsets (code points, as spans hold them) <-> LSP positions.

LSP counts a column in UTF-16 code units unless client and server agree on another encoding
at initialization; a policy with an emoji or a CJK extension character in a phrase must
still get its squiggle under the right characters. Plain numbers and JSON shapes here, no
protocol library: the first diagnostics are sent before pygls is imported (see `early`).
"""

from __future__ import annotations

from typing import Any

from ..syntax.source import Source, Span

UTF8, UTF16, UTF32 = "utf-8", "utf-16", "utf-32"
ENCODINGS = (UTF8, UTF16, UTF32)


def choose_encoding(capabilities: Any) -> str:
    """The client's first offered position encoding that we support, else UTF-16 (the
    protocol's default); pygls chooses by the same rule."""
    general = capabilities.get("general") if isinstance(capabilities, dict) else None
    offered = general.get("positionEncodings") if isinstance(general, dict) else None
    for name in offered or ():
        if name in ENCODINGS:
            return str(name)
    return UTF16


def _units(text: str, encoding: str) -> int:
    if encoding == UTF8:
        return len(text.encode("utf-8", "surrogatepass"))
    if encoding == UTF32:
        return len(text)
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def _line(source: Source, line: int) -> tuple[int, str]:
    """The start offset and raw text of a 1-based line (a `\\r` before its `\\n` kept, so every
    offset of the text has a position)."""
    start = source.offset(line, 1)
    end = source.text.find("\n", start)
    return start, source.text[start : end if end != -1 else len(source.text)]


def position(source: Source, offset: int, encoding: str) -> tuple[int, int]:
    """(line, character) of an offset, both 0-based, the character in `encoding` units."""
    line, _ = source.line_col(offset)
    start, _text = _line(source, line)
    return line - 1, _units(source.text[start:offset], encoding)


def span_range(source: Source, span: Span, encoding: str) -> dict[str, dict[str, int]]:
    """A span as an LSP Range object (JSON)."""
    (a, b), (c, d) = (
        position(source, span.start, encoding),
        position(source, max(span.end, span.start), encoding),
    )
    return {"start": {"line": a, "character": b}, "end": {"line": c, "character": d}}


def offset(source: Source, line: int, character: int, encoding: str) -> int:
    """The character offset of an LSP position (clamped to the line and the text)."""
    if line >= source.text.count("\n") + 1:
        return len(source.text)
    start, text = _line(source, line + 1)
    count = col = 0
    while col < len(text) and count < character:
        count += _units(text[col], encoding)
        col += 1
    return start + col
