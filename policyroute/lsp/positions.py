"""Character offsets (code points, as spans hold them) <-> LSP positions.

LSP counts a column in UTF-16 code units unless client and server agree on another encoding
at initialization; a policy with an emoji or a CJK extension character in a phrase must
still get its squiggle under the right characters.
"""

from __future__ import annotations

from lsprotocol import types

from ..syntax.source import Source, Span


def _units(text: str, encoding: str) -> int:
    if encoding == types.PositionEncodingKind.Utf8:
        return len(text.encode("utf-8", "surrogatepass"))
    if encoding == types.PositionEncodingKind.Utf32:
        return len(text)
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def _line(source: Source, line: int) -> tuple[int, str]:
    """The start offset and raw text of a 1-based line (a `\r` before its `\n` kept, so every
    offset of the text has a position)."""
    start = source.offset(line, 1)
    end = source.text.find("\n", start)
    return start, source.text[start : end if end != -1 else len(source.text)]


def position(source: Source, offset: int, encoding: str) -> types.Position:
    line, _ = source.line_col(offset)
    start, _text = _line(source, line)
    return types.Position(line - 1, _units(source.text[start:offset], encoding))


def to_range(source: Source, span: Span, encoding: str) -> types.Range:
    return types.Range(
        position(source, span.start, encoding),
        position(source, max(span.end, span.start), encoding),
    )


def offset(source: Source, pos: types.Position, encoding: str) -> int:
    """The character offset of an LSP position (clamped to the line and the text)."""
    if pos.line >= source.text.count("\n") + 1:
        return len(source.text)
    start, text = _line(source, pos.line + 1)
    count = col = 0
    while col < len(text) and count < pos.character:
        count += _units(text[col], encoding)
        col += 1
    return start + col
