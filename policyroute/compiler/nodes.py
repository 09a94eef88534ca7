"""The decision diagram's nodes and the walk over them: what `decide` runs per request.

Each inner node tests one feature of the request (computed at most once, on demand, through
the walk's `Context`) and steps to a child; a `Leaf` is a decision. The builder that makes
these nodes from rule conditions is in diagram.py.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any

from .atoms import KwAtom

_UNSET: Any = object()


class Context:
    """Per-request state of one walk: features computed at most once, on demand."""

    __slots__ = ("classifier", "getters", "request", "scans", "trace", "vals")

    def __init__(
        self,
        request: Any,
        getters: Sequence[Callable[[Context], Any]],
        classifier: Any,
        trace: list[tuple[str, Any, str]] | None,
    ) -> None:
        self.request = request
        self.getters = getters
        self.vals = [_UNSET] * len(getters)
        self.classifier = classifier
        # Per-request caches shared with the evaluator's readers: text scans, classifications.
        self.scans: dict[Any, Any] = {}
        self.trace = trace

    def get(self, fid: int) -> Any:
        v = self.vals[fid]
        if v is _UNSET:
            v = self.vals[fid] = self.getters[fid](self)
        return v


class PhraseIds(list[int]):
    """Phrase ids in a trace; `decide(explain=True)` shows them as the phrases."""


class Node:
    __slots__ = ("feature", "label")
    feature: int  # the feature this node tests; -1 for a leaf
    label: str

    def step(self, ctx: Context) -> Node:  # pragma: no cover - every node overrides it
        raise AssertionError("abstract")

    def children(self) -> tuple[Node, ...]:
        return ()


class Leaf(Node):
    """A decision (index into the policy's decisions), or -1: go on with the next rule."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index
        self.feature = -1
        self.label = "leaf"

    def step(self, ctx: Context) -> Node:
        return self


CONTINUE = Leaf(-1)


class NumNode(Node):
    """Interval split: cell 2i is below thresholds[i], 2i+1 equals it, the last is above all."""

    __slots__ = ("cells", "missing", "thresholds")

    def __init__(
        self, feature: int, label: str, thresholds: list[Any], cells: list[Node], missing: Node
    ) -> None:
        self.feature, self.label = feature, label
        self.thresholds, self.cells, self.missing = thresholds, cells, missing

    def step(self, ctx: Context) -> Node:
        v = ctx.vals[self.feature]
        if v is _UNSET:
            v = ctx.get(self.feature)
        if v is None or v != v:  # missing, or NaN: no comparison holds
            nxt = self.missing
        else:
            ts = self.thresholds
            i = bisect_left(ts, v)
            nxt = self.cells[2 * i + 1 if i < len(ts) and ts[i] == v else 2 * i]
        if ctx.trace is not None:
            ctx.trace.append((self.label, v, "tested"))
        return nxt

    def children(self) -> tuple[Node, ...]:
        return (*self.cells, self.missing)


class DispatchNode(Node):
    """Dispatch on a discrete value; anything not in the table (or missing) goes to `other`."""

    __slots__ = ("other", "table")

    def __init__(self, feature: int, label: str, table: dict[Any, Node], other: Node) -> None:
        self.feature, self.label = feature, label
        self.table, self.other = table, other

    def step(self, ctx: Context) -> Node:
        v = ctx.vals[self.feature]
        if v is _UNSET:
            v = ctx.get(self.feature)
        if ctx.trace is not None:
            ctx.trace.append((self.label, v, "tested"))
        # bool values must not meet 1/0 keys, and unhashable metadata reads as other.
        try:
            return self.table.get(v, self.other) if v is not None else self.other
        except TypeError:
            return self.other

    def children(self) -> tuple[Node, ...]:
        return (*self.table.values(), self.other)


class PhraseNode(Node):
    """One phrase test on the set of phrases the automaton found in a text."""

    __slots__ = ("atom", "hi", "lo")

    def __init__(self, feature: int, label: str, atom: KwAtom, hi: Node, lo: Node) -> None:
        self.feature, self.label = feature, label
        self.atom, self.hi, self.lo = atom, hi, lo

    def step(self, ctx: Context) -> Node:
        found = ctx.vals[self.feature]
        if found is _UNSET:
            found = ctx.get(self.feature)
        a = self.atom
        if not found:
            ok = False
        elif a.mode == "any":
            ok = not a.phrases.isdisjoint(found)
        else:
            ok = a.phrases <= found
        if ctx.trace is not None:
            ctx.trace.append(
                (self.label, PhraseIds(sorted(found & a.phrases) if found else []), str(ok).lower())
            )
        return self.hi if ok else self.lo

    def children(self) -> tuple[Node, ...]:
        return (self.hi, self.lo)


class PhraseIndex(Node):
    """First match over a run of rules, each led by an `any` phrase test on one text.

    Entry k is tried only if one of its phrases was found; its sub-diagram answers a leaf or
    CONTINUE (the rest of that rule's condition failed). No entry answering: `rest`.
    """

    __slots__ = ("by_phrase", "entries", "entry_labels", "rest")

    def __init__(
        self,
        feature: int,
        label: str,
        entries: list[tuple[KwAtom, Node]],
        rest: Node,
        entry_labels: list[str],
    ) -> None:
        self.feature, self.label = feature, label
        self.entries, self.rest = entries, rest
        # For --explain, made once here rather than on the hot path.
        self.entry_labels = entry_labels
        multi: dict[int, list[int]] = {}
        for k, (atom, _) in enumerate(entries):
            for pid in atom.phrases:
                multi.setdefault(pid, []).append(k)
        self.by_phrase: dict[int, tuple[int, ...]] = {p: tuple(ks) for p, ks in multi.items()}

    def step(self, ctx: Context) -> Node:
        found = ctx.vals[self.feature]
        if found is _UNSET:
            found = ctx.get(self.feature)
        if found:
            hits: set[int] = set()
            by_phrase = self.by_phrase
            for pid in found:
                ks = by_phrase.get(pid)
                if ks is not None:
                    hits.update(ks)
            for k in sorted(hits):
                atom, sub = self.entries[k]
                if ctx.trace is not None:
                    ctx.trace.append(
                        (self.entry_labels[k], PhraseIds(sorted(found & atom.phrases)), "true")
                    )
                node = sub
                while not isinstance(node, Leaf):
                    node = node.step(ctx)
                if node is not CONTINUE:
                    return node
        if ctx.trace is not None:
            ctx.trace.append(
                (self.label, PhraseIds(sorted(found) if found else []), "no rule of the run")
            )
        return self.rest

    def children(self) -> tuple[Node, ...]:
        return (*(sub for _, sub in self.entries), self.rest)


def walk(root: Node, ctx: Context) -> Leaf:
    node = root
    while not isinstance(node, Leaf):
        node = node.step(ctx)
    return node


def count_nodes(root: Node) -> int:
    seen: set[int] = set()
    stack = [root]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        stack.extend(n.children())
    return len(seen)
