"""The cells of the request space: one attribute's values cut where the atoms cut them.

A `Var` is one variable of the analysis (an attribute, a phrase, a regex, a classifier) and
its cells; `describe_cell` says a cell in the language's words (`files > 10`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

INF = math.inf


# -- cells ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    """One class of values of a variable on which every atom agrees.

    kind: "none" (missing), "num" (an interval, `rep` a value inside it), "str" (`rep` the
    value; `other=True` for any value no atom mentions), "bool", "any" (a value of a kind no
    atom tests), "yes"/"no" (a regex matched, a phrase was found)."""

    kind: str
    rep: Any = None
    lo: float = -INF
    hi: float = INF
    lo_closed: bool = False
    hi_closed: bool = False
    other: bool = False

    def contains_num(self, x: float) -> bool:
        if self.kind != "num":
            return False
        above = x > self.lo or (self.lo_closed and x == self.lo)
        below = x < self.hi or (self.hi_closed and x == self.hi)
        return above and below


NONE = Cell("none")
YES = Cell("yes", True)
NO = Cell("no", False)


def _num_cells(thresholds: set[float], integer: bool, lo: float, hi: float) -> list[Cell]:
    """Intervals and points between thresholds, within [lo, hi], whole numbers if `integer`."""
    ts = sorted(
        {t for t in thresholds if lo <= t <= hi} | {x for x in (lo, hi) if x not in (-INF, INF)}
    )
    cells: list[Cell] = []
    bounds = [-INF, *ts, INF]
    for i in range(len(bounds) - 1):
        a, b = bounds[i], bounds[i + 1]
        if i > 0 and (not integer or float(a).is_integer()):  # the point a itself
            cells.append(Cell("num", _int(a) if integer else a, a, a, True, True))
        if b <= lo or a >= hi:
            continue  # outside the domain
        rep = _open_rep(a, b, integer)
        if rep is not None:
            cells.append(Cell("num", rep, a, b, False, False))
    return cells


def _int(x: float) -> int:
    return int(x)


def _open_rep(a: float, b: float, integer: bool) -> float | int | None:
    """A value strictly between a and b (an integer if `integer`), or None if none exists."""
    if integer:
        if a == -INF and b == INF:
            return 0
        n = math.floor(a) + 1 if a != -INF else math.ceil(b) - 1
        return n if a < n < b else None
    if a == -INF and b == INF:
        return 0
    if a == -INF:
        return b - 1
    if b == INF:
        return a + 1
    return (a + b) / 2


# -- variables --------------------------------------------------------------------------------


@dataclass(slots=True)
class Var:
    key: tuple[Any, ...]
    cells: list[Cell]
    # How to read this variable's value off a request; set for scalar variables.
    attr: str | None = None
    label: str = ""

    def cell_of_value(self, v: Any) -> int:
        """Index of the cell a raw attribute value falls in."""
        for i, c in enumerate(self.cells):
            if v is None:
                if c.kind == "none":
                    return i
            elif isinstance(v, bool):
                if c.kind == "bool" and c.rep is v:
                    return i
            elif isinstance(v, (int, float)):
                if c.contains_num(v):
                    return i
            elif isinstance(v, str) and c.kind == "str" and (c.rep == v):
                return i
        if isinstance(v, str):
            for i, c in enumerate(self.cells):
                if c.kind == "str" and c.other:
                    return i
        for i, c in enumerate(self.cells):
            if c.kind == "any":
                return i
        return 0


def describe_cell(var: Var, c: Cell) -> str:
    name = var.label
    k = var.key[0]
    if k in ("phrase", "regex"):
        return name if c.rep else f"not {name}"
    if c.kind == "none":
        return f"{name} failed (no label)" if k == "label" else f"{name} is missing"
    if c.kind == "any":
        return f"{name} is given"
    if c.kind == "bool":
        return name if c.rep else f"not {name}"
    if c.kind == "str":
        if c.other:
            others = sorted(x.rep for x in var.cells if x.kind == "str" and not x.other)
            return (
                f"{name} not in [{', '.join(_q(x) for x in others)}]"
                if others
                else f"{name} is given"
            )
        return f"{name} == {_q(c.rep)}"
    if c.lo == c.hi:
        return f"{name} == {_n(c.lo)}"
    parts = []
    if c.lo != -INF and not (var.attr == "length" and c.lo == 0 and c.lo_closed):
        parts.append(f"{name} {'>=' if c.lo_closed else '>'} {_n(c.lo)}")
    if c.hi != INF:
        parts.append(f"{name} {'<=' if c.hi_closed else '<'} {_n(c.hi)}")
    return " and ".join(parts) if parts else f"{name} is given"


def _q(s: Any) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _n(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
