"""Source text and spans: every AST node and diagnostic points back into a file."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Span:
    """Half-open character range [start, end) in one source."""

    start: int
    end: int


NO_SPAN = Span(0, 0)


class Source:
    """A policy file's text with a line table for offset -> (line, column)."""

    __slots__ = ("_line_starts", "name", "path", "text")

    def __init__(self, text: str, name: str = "<string>", path: Path | None = None) -> None:
        self.text = text
        self.name = name
        self.path = path
        starts = [0]
        find = text.find
        i = find("\n")
        while i != -1:
            starts.append(i + 1)
            i = find("\n", i + 1)
        self._line_starts = starts

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based line and column (in code points) of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect_right(self._line_starts, offset) - 1
        return line + 1, offset - self._line_starts[line] + 1

    def offset(self, line: int, column: int) -> int:
        line = max(1, min(line, len(self._line_starts)))
        return min(self._line_starts[line - 1] + column - 1, len(self.text))

    def line_text(self, line: int) -> str:
        if not 1 <= line <= len(self._line_starts):
            return ""
        start = self._line_starts[line - 1]
        end = self.text.find("\n", start)
        return self.text[start : end if end != -1 else len(self.text)].rstrip("\r")
