"""Diagnostics: a stable code, a span, a message and a hint, rendered with a caret."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from .codes import REGISTRY, Severity
from .source import Source, Span

# Longest excerpt of a source line a rendered diagnostic shows.
MAX_SHOWN = 200



@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    message: str
    source: Source
    span: Span
    hint: str | None = None

    def __post_init__(self) -> None:
        # A code no registry entry names would reach SARIF and the docs undescribed.
        if self.code not in REGISTRY:
            raise ValueError(f"diagnostic code {self.code} is not in syntax/codes.py")

    @property
    def severity(self) -> Severity:
        return "warning" if self.code.startswith("W") else "error"

    @property
    def is_error(self) -> bool:
        return self.code.startswith("E")

    @property
    def line(self) -> int:
        return self.source.line_col(self.span.start)[0]

    @property
    def column(self) -> int:
        return self.source.line_col(self.span.start)[1]

    def location(self) -> str:
        line, col = self.source.line_col(self.span.start)
        return f"{self.source.name}:{line}:{col}"

    def render(self, colour: bool = False) -> str:
        """The human form: location, code, message, the line, a caret, a hint.

        `colour` adds ANSI colours (severity, caret) for a terminal; the text is the same."""
        line, col = self.source.line_col(self.span.start)
        end_line, end_col = self.source.line_col(max(self.span.end, self.span.start))
        text = self.source.line_text(line)
        width = max(1, (end_col - col) if end_line == line else len(text) - col + 1)
        trail = ""
        if len(text) > MAX_SHOWN:
            # A window of the line around the spot: a generated policy can hold a line of
            # megabytes, and the point of the excerpt is the caret.
            start = max(0, col - 1 - MAX_SHOWN // 2)
            cut = text[start : start + MAX_SHOWN]
            lead = "\N{HORIZONTAL ELLIPSIS}" if start > 0 else ""
            trail = "\N{HORIZONTAL ELLIPSIS}" if start + MAX_SHOWN < len(text) else ""
            text = lead + cut + trail
            col = col - start + len(lead)
        # One column per character, and nothing the terminal would act on.
        shown = "".join(
            c if c.isprintable() else " " if c == "\t" else "\N{REPLACEMENT CHARACTER}"
            for c in text
        )
        width = min(width, max(1, len(shown) - len(trail) - col + 1))
        gutter = f"{line:>4} | "
        paint = _paint if colour else _plain
        tone = "31" if self.is_error else "33"  # red errors, yellow warnings
        out = [
            paint("1", f"{self.location()}:")
            + " "
            + paint(f"1;{tone}", f"{self.severity}[{self.code}]")
            + f": {self.message}",
            paint("34", gutter) + shown,
            " " * (len(gutter) + col - 1) + paint(f"1;{tone}", "^" + "~" * (width - 1)),
        ]
        if self.hint:
            out.append(paint("36", "     = hint:") + f" {self.hint}")
        return "\n".join(out)

    def to_json(self) -> dict[str, Any]:
        line, col = self.source.line_col(self.span.start)
        end_line, end_col = self.source.line_col(self.span.end)
        return {
            "file": self.source.name,
            "line": line,
            "column": col,
            "end_line": end_line,
            "end_column": end_col,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }


def sort_key(d: Diagnostic) -> tuple[str, int, str]:
    return (d.source.name, d.span.start, d.code)


def _paint(code: str, text: str) -> str:
    return f"\x1b[{code}m{text}\x1b[0m"


def _plain(code: str, text: str) -> str:
    return text


def render_human(diagnostics: Iterable[Diagnostic], colour: bool = False) -> str:
    return "\n\n".join(d.render(colour) for d in sorted(diagnostics, key=sort_key))


def unique(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Each diagnostic once: a mistake in a file that several policies import is one mistake."""
    seen: set[tuple[str, int, int, str, str]] = set()
    out: list[Diagnostic] = []
    for d in diagnostics:
        key = (d.source.name, d.span.start, d.span.end, d.code, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def render_json(diagnostics: Iterable[Diagnostic]) -> str:
    return json.dumps([d.to_json() for d in sorted(diagnostics, key=sort_key)], indent=2)


# Comparisons left for did-you-mean hints in the current check. Each hint compares the name
# with every candidate (difflib, quadratic in the name's length), so a policy of thousands of
# misspelt names among thousands of declarations would cost minutes; past the budget the
# hints are simply left out. Unset (outside a check) means unlimited.
_HINT_BUDGET: ContextVar[list[int] | None] = ContextVar("hint_budget", default=None)
HINT_BUDGET = 200_000


@contextmanager
def hint_budget(comparisons: int = HINT_BUDGET) -> Iterator[None]:
    """Bound the work of every did_you_mean inside the block (nested blocks share the
    outermost budget)."""
    if _HINT_BUDGET.get() is not None:
        yield
        return
    token = _HINT_BUDGET.set([comparisons])
    try:
        yield
    finally:
        _HINT_BUDGET.reset(token)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest known name, if one is close."""
    pool = list(candidates)
    budget = _HINT_BUDGET.get()
    if budget is not None:
        cost = len(pool) * max(1, min(len(name), 64))
        if cost > budget[0]:
            return None
        budget[0] -= cost
    # Names past 64 characters are nobody's typo of a declared name.
    if len(name) > 64:
        return None
    import difflib  # only when a name is wrong: most checks never need it

    close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


class PolicyError(Exception):
    """A policy that does not check: carries every diagnostic found."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        errors = [d for d in self.diagnostics if d.is_error]
        super().__init__(
            f"{len(errors)} error(s) in policy\n" + render_human(errors or self.diagnostics)
        )
