"""Regions and cell sets in words, exactly.

A region (an MDD over the cell space) is written as a union of *cases*; a case is a
conjunction of one condition per variable it constrains, and a condition is a set of that
variable's cells, written with the intervals merged ("length >= 280 and length < 500",
"(seats is missing or seats <= 50)"). Read off the diagram with the edges to one child
grouped, the cases are exactly the region; literals that only restate the space's own
constraints (a phrase found means the prompt has some length) are then dropped where that
keeps the region the same. When a region has more cases than can be shown, it is written as
the smallest box holding it and marked as an over-approximation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .cells import INF, Cell, Var
from .mdd import FALSE, TRUE
from .space import Space

MAX_CASES = 6
MAX_PATHS = 64


@dataclass(frozen=True, slots=True)
class Region:
    """A region in words: `cases` (each a list of conditions, all of which hold); `exact`
    is False when the text is a box around the region, larger than it."""

    cases: tuple[tuple[str, ...], ...]
    exact: bool

    def text(self) -> str:
        if not self.cases:
            return "no request"
        parts = [" and ".join(c) if c else "any request" for c in self.cases]
        body = parts[0] if len(parts) == 1 else "; or ".join(f"({p})" for p in parts)
        if not self.exact:
            body += " (over-approximation: the region is inside this, not all of it)"
        return body


# -- one variable ---------------------------------------------------------------------------


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _q(s: object) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _domain(var: Var) -> tuple[float, float]:
    """A bounded domain (length from 0, a confidence in [0, 1]) begins and ends with a point
    cell; an unbounded one with an open interval."""
    nums = [c for c in var.cells if c.kind == "num"]
    if not nums:
        return -INF, INF
    lo = nums[0].lo if nums[0].lo == nums[0].hi else -INF
    hi = nums[-1].hi if nums[-1].lo == nums[-1].hi else INF
    return lo, hi


def _intervals(var: Var, idxs: Sequence[int]) -> list[str]:
    """Runs of adjacent number cells, merged, in words."""
    name = var.label
    cells = var.cells
    order = [i for i, c in enumerate(cells) if c.kind == "num"]
    chosen = set(idxs)
    lo_dom, hi_dom = _domain(var)
    out: list[str] = []
    run: list[Cell] = []

    def flush() -> None:
        if not run:
            return
        first, last = run[0], run[-1]
        lo, lo_closed, hi, hi_closed = first.lo, first.lo_closed, last.hi, last.hi_closed
        if lo == hi:
            out.append(f"{name} == {_num(lo)}")
        else:
            bits = []
            if lo != -INF and not (lo == lo_dom and lo_closed):
                bits.append(f"{name} {'>=' if lo_closed else '>'} {_num(lo)}")
            if hi != INF and not (hi == hi_dom and hi_closed):
                bits.append(f"{name} {'<=' if hi_closed else '<'} {_num(hi)}")
            out.append(" and ".join(bits) if bits else f"{name} is a number")
        run.clear()

    for i in order:
        if i in chosen:
            run.append(cells[i])
        else:
            flush()
    flush()
    return out


def describe_cells(var: Var, idxs: Sequence[int]) -> str | None:
    """The cells `idxs` of `var` in words; None when they are all of its cells."""
    chosen = sorted(set(idxs))
    if len(chosen) == len(var.cells):
        return None
    if not chosen:
        return "false"
    kind = var.key[0]
    name = var.label
    cells = [var.cells[i] for i in chosen]
    if kind in ("phrase", "regex"):
        (c,) = cells
        if kind == "regex":
            what = name.split(" matches ", 1)
            return name if c.rep else f"{what[0]} does not match {what[1]}"
        attr, _, rest = name.partition(" contains ")
        if c.rep:
            return name
        if rest.startswith("any of "):
            return f"{attr} contains none of {rest[7:]}"
        return f"{attr} does not contain {rest}"
    parts: list[str] = []
    if any(c.kind == "none" for c in cells):
        parts.append(f"{name} failed (no label)" if kind == "label" else f"{name} is missing")
    parts += _intervals(var, chosen)
    strs = [c for c in cells if c.kind == "str" and not c.other]
    if any(c.kind == "str" and c.other for c in cells):
        left_out = [c.rep for c in var.cells if c.kind == "str" and not c.other and c not in cells]
        parts.append(
            f"{name} is a string not in [{', '.join(_q(x) for x in left_out)}]"
            if left_out
            else f"{name} is a string"
        )
    if strs:
        parts.append(
            f"{name} == {_q(strs[0].rep)}"
            if len(strs) == 1
            else f"{name} in [{', '.join(_q(c.rep) for c in strs)}]"
        )
    for c in cells:
        if c.kind == "bool":
            parts.append(f"{name} is {'true' if c.rep else 'false'}")
    if any(c.kind == "any" for c in cells):
        tested = [
            word
            for kind, word in (("num", "a number"), ("str", "a string"), ("bool", "a boolean"))
            if any(c.kind == kind for c in var.cells)
        ]
        parts.append(
            f"{name} is given but not {' or '.join(tested)}" if tested else f"{name} is given"
        )
    if len(parts) == 1:
        return parts[0]
    return "(" + " or ".join(parts) + ")"


# -- regions --------------------------------------------------------------------------------

Case = dict[int, frozenset[int]]


def _cases(space: Space, node: int) -> Iterator[Case]:
    """Paths to TRUE with the edges to each child grouped: disjoint cases covering the node."""
    stack: list[tuple[int, Case]] = [(node, {})]
    while stack:
        n, case = stack.pop()
        if n == TRUE:
            yield case
            continue
        if n == FALSE:
            continue
        v = space.node_var[n]
        by_child: dict[int, list[int]] = {}
        for i, k in enumerate(space.node_kids[n]):
            if k != FALSE:
                by_child.setdefault(k, []).append(i)
        for child, idxs in reversed(list(by_child.items())):
            stack.append((child, {**case, v: frozenset(idxs)}))


def _case_node(space: Space, case: Case) -> int:
    node = TRUE
    for v, idxs in sorted(case.items(), reverse=True):
        size = len(space.vars[v].cells)
        lit = space.mk(v, tuple(TRUE if i in idxs else FALSE for i in range(size)))
        node = space.and_(node, lit)
    return node


def _simplify(space: Space, region: int, case: Case) -> Case:
    """Drop literals the space's own constraints imply: the case, widened, still meets the
    universe only inside the region."""
    outside = space.not_(region)
    for v in sorted(case):
        trial = {w: s for w, s in case.items() if w != v}
        widened = space.and_(space.and_(_case_node(space, trial), space.universe), outside)
        if widened == FALSE:
            case = trial
    return case


def describe_region(space: Space, region: int, limit: int = MAX_CASES) -> Region:
    if region == FALSE:
        return Region((), True)
    cases: list[Case] = []
    for case in _cases(space, region):
        cases.append(case)
        if len(cases) > MAX_PATHS:
            break
    exact = len(cases) <= limit
    if exact:
        cases = [_simplify(space, region, c) for c in cases]
    else:
        # The smallest box: per variable, every cell some case allows.
        box: Case = {}
        free: set[int] = set()
        every = set().union(*(c.keys() for c in cases))
        for v in every:
            if any(v not in c for c in cases):
                free.add(v)
                continue
            box[v] = frozenset().union(*(c[v] for c in cases))
        cases = [box]
    words: list[tuple[str, ...]] = []
    for case in cases:
        conds = []
        for v in sorted(case, key=lambda v: space.vars[v].label):
            text = describe_cells(space.vars[v], sorted(case[v]))
            if text is not None:
                conds.append(text)
        words.append(tuple(conds))
    return Region(distinct(words), exact)


def distinct(words: list[tuple[str, ...]]) -> tuple[tuple[str, ...], ...]:
    """Each alternative once: two paths of the diagram can simplify to the same conditions,
    and a case with no condition left holds for every request of the region on its own."""
    if () in words:
        return ((),)
    return tuple(dict.fromkeys(words))
