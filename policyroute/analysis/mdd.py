"""Multi-valued decision diagrams (MDDs): the operations every region of the analysis uses.

Nodes are integers into two tables (the variable a node tests, and its children, one per
cell of that variable); node 0 is FALSE, node 1 is TRUE, and terminals sit below every
variable. Nodes are hash-consed, so two equal regions are the same integer and emptiness is
a comparison with FALSE. What the variables mean is `Space`'s business (space.py); this
module only needs how many cells each one has.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from .cells import Cell, Var

FALSE = 0
TRUE = 1


class Mdd:
    """Hash-consed MDD nodes over `vars`, with memoized AND, OR and NOT."""

    vars: list[Var]

    def _start_tables(self) -> None:
        """Empty node tables over the variables as they are now (set `vars` first)."""
        n = len(self.vars)
        self.node_var: list[int] = [n, n]
        self.node_kids: list[tuple[int, ...]] = [(), ()]
        self._unique: dict[tuple[int, tuple[int, ...]], int] = {}
        self._and: dict[tuple[int, int], int] = {}
        self._or: dict[tuple[int, int], int] = {}
        self._not: dict[int, int] = {}

    def mk(self, v: int, kids: tuple[int, ...]) -> int:
        first = kids[0]
        if all(k == first for k in kids):
            return first
        key = (v, kids)
        node = self._unique.get(key)
        if node is None:
            node = self._unique[key] = len(self.node_var)
            self.node_var.append(v)
            self.node_kids.append(kids)
        return node

    def lit(self, v: int, truth: Callable[[Cell], bool]) -> int:
        return self.mk(v, tuple(TRUE if truth(c) else FALSE for c in self.vars[v].cells))

    def and_(self, a: int, b: int) -> int:
        if a == FALSE or b == FALSE:
            return FALSE
        if a == TRUE:
            return b
        if b == TRUE or a == b:
            return a
        if a > b:
            a, b = b, a
        key = (a, b)
        r = self._and.get(key)
        if r is None:
            r = self._and[key] = self._apply(a, b, self.and_)
        return r

    def or_(self, a: int, b: int) -> int:
        if a == TRUE or b == TRUE:
            return TRUE
        if a == FALSE:
            return b
        if b == FALSE or a == b:
            return a
        if a > b:
            a, b = b, a
        key = (a, b)
        r = self._or.get(key)
        if r is None:
            r = self._or[key] = self._apply(a, b, self.or_)
        return r

    def _apply(self, a: int, b: int, op: Callable[[int, int], int]) -> int:
        va, vb = self.node_var[a], self.node_var[b]
        v = min(va, vb)
        size = len(self.vars[v].cells)
        ka = self.node_kids[a] if va == v else (a,) * size
        kb = self.node_kids[b] if vb == v else (b,) * size
        # A number variable can have hundreds of cells whose children are mostly the same
        # few nodes: combine each distinct pair once.
        local: dict[tuple[int, int], int] = {}
        kids: list[int] = []
        for pair in zip(ka, kb, strict=True):
            r = local.get(pair)
            if r is None:
                r = local[pair] = op(*pair)
            kids.append(r)
        return self.mk(v, tuple(kids))

    def not_(self, a: int) -> int:
        if a <= TRUE:
            return TRUE - a
        r = self._not.get(a)
        if r is None:
            kids = self.node_kids[a]
            r = self._not[a] = self.mk(
                self.node_var[a], tuple(TRUE - k if k <= TRUE else self.not_(k) for k in kids)
            )
        return r

    def conjoin(self, nodes: Iterable[int]) -> int:
        """The AND of many diagrams, joined in a balanced tree, neighbours in variable order
        first: each step joins two diagrams of similar size over nearby variables, where
        folding them one by one into a growing result rebuilds that result at every step."""
        level = sorted(nodes, key=lambda n: self.node_var[n], reverse=True)
        while len(level) > 1:
            paired = [self.and_(a, b) for a, b in zip(level[::2], level[1::2], strict=False)]
            if len(level) % 2:
                paired.append(level[-1])
            level = paired
        return level[0] if level else TRUE

    def paths(
        self, node: int, prefer: Callable[[int, int], float] | None = None
    ) -> Iterator[dict[int, int]]:
        """Assignments (variable -> cell index) along paths to TRUE; untested variables are
        free. Children are tried in `prefer` order (lower first)."""
        if node == FALSE:
            return
        stack: list[tuple[int, dict[int, int]]] = [(node, {})]
        while stack:
            n, assign = stack.pop()
            if n == TRUE:
                yield assign
                continue
            v = self.node_var[n]
            kids = self.node_kids[n]
            order = _ordered(len(kids), v, prefer)
            for i in reversed(order):
                if kids[i] != FALSE:
                    stack.append((kids[i], {**assign, v: i}))

    def size(self) -> int:
        return len(self.node_var)


def _ordered(size: int, v: int, prefer: Callable[[int, int], float] | None) -> list[int]:
    if prefer is None:
        return list(range(size))
    return sorted(range(size), key=lambda i: prefer(v, i))


@contextmanager
def deep_recursion(depth: int) -> Iterator[None]:
    """MDD operations recurse once per variable; a policy with thousands of phrases needs
    more than Python's default depth."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, depth * 3 + 1000))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)
