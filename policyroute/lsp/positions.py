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


def position(source: Source, offset: int, encoding: str) -> types.Position:
    line, col = source.line_col(offset)
    text = source.line_text(line)
    return types.Position(line - 1, _units(text[: col - 1], encoding))


def to_range(source: Source, span: Span, encoding: str) -> types.Range:
    return types.Range(
        position(source, span.start, encoding),
        position(source, max(span.end, span.start), encoding),
    )


def offset(source: Source, pos: types.Position, encoding: str) -> int:
    """The character offset of an LSP position (clamped to the line and the text)."""
    text = source.line_text(pos.line + 1)
    count = col = 0
    while col < len(text) and count < pos.character:
        count += _units(text[col], encoding)
        col += 1
    return source.offset(pos.line + 1, col + 1)
