"""Quick fixes: every diagnostic whose hint says "did you mean 'X'?" gets an edit to X.

The hint names the whole replacement, but not always for the whole span: an unknown
classifier field (`urgency.lable`) is reported on the attribute and suggests `label`; a
missing import (`"shared/teirs.route"`) is reported on the path string and suggests a file
name. The part replaced is the one of the span's parts (the whole, the text inside its
quotes, the part after its first dot, the last path component) closest to the suggestion.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from ..syntax.diagnostics import Diagnostic
from ..syntax.source import Span

_SUGGESTION = re.compile(r"did you mean '([^']*)'\?")


@dataclass(frozen=True, slots=True)
class Fix:
    title: str
    span: Span
    text: str


def suggestion(d: Diagnostic) -> str | None:
    if d.hint is None:
        return None
    found = _SUGGESTION.search(d.hint)
    return found.group(1) if found else None


def fix_for(d: Diagnostic) -> Fix | None:
    wanted = suggestion(d)
    if wanted is None:
        return None
    start, end = d.span.start, d.span.end
    written = d.source.text[start:end]
    parts: list[tuple[int, int]] = [(start, end)]
    if len(written) >= 2 and written[0] == '"' and written[-1] == '"':
        start, end = start + 1, end - 1
        parts.append((start, end))
    inner = d.source.text[start:end]
    if "." in inner and "." not in wanted:
        parts.append((start + inner.index(".") + 1, end))
    if "/" in inner and "/" not in wanted:
        parts.append((start + inner.rindex("/") + 1, end))

    def closeness(part: tuple[int, int]) -> float:
        return difflib.SequenceMatcher(None, d.source.text[part[0] : part[1]], wanted).ratio()

    a, b = max(parts, key=closeness)
    old = d.source.text[a:b]
    if old == wanted:
        return None
    return Fix(f"Change '{old}' to '{wanted}'", Span(a, b), wanted)
