"""The decision diagram: inner nodes test one feature, leaves are decisions.

Built from the rules bottom-up: the diagram for rules i.. is `cond_i ? leaf_i : diagram(i+1)`,
each condition expanded over its features cheapest first (an interval split for a number, a
dispatch for a string, one node per phrase test), with identical nodes shared. A run of rules
that each need a phrase from one text becomes one `PhraseIndex` node, which jumps straight to
the rules whose phrases were found, so a thousand keyword rules cost what the matches cost.

Over 500 lines, and kept whole: the builder, its node types and the walk `--explain` uses
share one hash-consing table and one notion of a feature's order; split, each half would
import the other's internals.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any

from .atoms import (
    DISCRETE,
    MATCH,
    NUM,
    Atom,
    Expr,
    Feature,
    InAtom,
    KwAtom,
    NumAtom,
    atoms_of,
    make_and,
    make_or,
    restrict,
)

_UNSET: Any = object()
# A run of at least this many phrase-led rules is indexed rather than chained.
INDEX_MIN_RUN = 3
# A split is merged into the next rule's split on the same feature only while that one is
# this narrow: merging wider ones makes n rules on one attribute cost n^2 to build.
MERGE_MAX = 64
# An `and`/`or` of at least this many operands is built group by group (see _chain_parts).
CHAIN_MIN = 16


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


class DiagramBuilder:
    """Builds a shared (hash-consed) diagram from rule conditions over interned atoms."""

    def __init__(self, features: list[Feature], atoms: list[Atom], phrases: list[str]) -> None:
        self.features = features
        self.atoms = atoms
        self.phrases = phrases
        self._unique: dict[Any, Node] = {}
        self._memo: dict[tuple[Expr, int, int], Node] = {}
        self.leaves: dict[int, Leaf] = {-1: CONTINUE}

    def leaf(self, index: int) -> Leaf:
        leaf = self.leaves.get(index)
        if leaf is None:
            leaf = self.leaves[index] = Leaf(index)
        return leaf

    def _intern(self, key: Any, make: Callable[[], Node]) -> Node:
        node = self._unique.get(key)
        if node is None:
            node = self._unique[key] = make()
        return node

    def _label(self, fid: int) -> str:
        return self.features[fid].label

    def build(self, e: Expr, hi: Node, lo: Node) -> Node:
        """The diagram of `e ? hi : lo`."""
        if e is True:
            return hi
        if e is False:
            return lo
        key = (e, id(hi), id(lo))
        node = self._memo.get(key)
        if node is None:
            node = self._chain_parts(e, hi, lo)
            if node is None:
                node = self._expand(e, hi, lo)
            self._memo[key] = node
        return node

    def _chain_parts(self, e: Expr, hi: Node, lo: Node) -> Node | None:
        """An `and`/`or` whose operands fall into groups over disjoint features, built group
        by group, last first: linear and without recursion in the number of operands (a
        Shannon expansion would restrict the whole expression once per feature)."""
        assert isinstance(e, tuple)
        if e[0] not in ("and", "or") or len(e[1]) < CHAIN_MIN:
            return None
        groups = self._groups(e[1])
        if len(groups) < 2:
            return None
        node = hi if e[0] == "and" else lo
        for _, ops in reversed(groups):
            if e[0] == "and":
                node = self.build(make_and(ops), node, lo)
            else:
                node = self.build(make_or(ops), hi, node)
        return node

    def _groups(self, operands: tuple[Expr, ...]) -> list[tuple[Any, tuple[Expr, ...]]]:
        """Operands joined when they share a feature; a group with a costlier feature (a
        classifier) after the others, so it is reached only when they leave it open."""
        parent: dict[int, int] = {}

        def find(f: int) -> int:
            while parent.setdefault(f, f) != f:
                parent[f] = parent[parent[f]]
                f = parent[f]
            return f

        feats = []
        for op in operands:
            fs = {self.atoms[a].feature for a in atoms_of(op)}
            feats.append(fs)
            first = next(iter(fs))
            for f in fs:
                parent[find(f)] = find(first)
        by_root: dict[int, list[Expr]] = {}
        costs: dict[int, tuple[int, int, int]] = {}
        for op, fs in zip(operands, feats, strict=True):
            root = find(next(iter(fs)))
            by_root.setdefault(root, []).append(op)
            for f in fs:
                top, low, first = costs.get(root, (0, 1 << 30, f))
                cost = self.features[f].cost
                costs[root] = (max(top, cost), min(low, cost), min(first, f))
        order = sorted(by_root, key=costs.__getitem__)
        return [(costs[r], tuple(by_root[r])) for r in order]

    def _expand(self, e: Expr, hi: Node, lo: Node) -> Node:
        ids = atoms_of(e)
        fid = min(
            (self.atoms[a].feature for a in ids),
            key=lambda f: (self.features[f].cost, f),
        )
        feature = self.features[fid]
        mine = sorted(a for a in ids if self.atoms[a].feature == fid)
        if feature.kind == MATCH:
            aid = mine[0]
            atom = self.atoms[aid]
            assert isinstance(atom, KwAtom)
            yes = self.build(restrict(e, {aid: True}), hi, lo)
            no = self.build(restrict(e, {aid: False}), hi, lo)
            if yes is no:
                return yes
            label = atom.describe(self.features)
            return self._intern(
                ("phrase", aid, id(yes), id(no)), lambda: PhraseNode(fid, label, atom, yes, no)
            )
        # When the else-diagram tests this same feature at its root, each branch here already
        # knows which way that test goes: continue at the matching child instead of testing
        # again. Runs of rules on one attribute thus become one split rather than a chain.
        merge = lo if lo.feature == fid and _width(lo) <= MERGE_MAX else None
        if feature.kind == NUM:
            num_atoms = [(a, at) for a in mine if isinstance(at := self.atoms[a], NumAtom)]
            values = {at.value for _, at in num_atoms}
            if isinstance(merge, NumNode):
                values.update(merge.thresholds)
            ts = sorted(values)
            index = {t: j for j, t in enumerate(ts)}
            top = 2 * len(ts)
            cells = [
                self.build(
                    restrict(
                        e, {a: _num_holds(at, index[at.value], k, top) for a, at in num_atoms}
                    ),
                    hi,
                    _num_child(merge, ts, k) if isinstance(merge, NumNode) else lo,
                )
                for k in range(top + 1)
            ]
            lo_missing = merge.missing if isinstance(merge, NumNode) else lo
            missing = self.build(restrict(e, dict.fromkeys(mine, False)), hi, lo_missing)
            if all(c is missing for c in cells):
                return missing
            return self._intern(
                ("num", fid, tuple(ts), tuple(map(id, cells)), id(missing)),
                lambda: NumNode(fid, self._label(fid), ts, cells, missing),
            )
        assert feature.kind == DISCRETE
        in_atoms = [(a, self.atoms[a]) for a in mine]
        values_d: set[Any] = set()
        for _, at in in_atoms:
            assert isinstance(at, InAtom)
            values_d |= at.values
        lo_table: dict[Any, Node] = {}
        lo_other = lo
        if isinstance(merge, DispatchNode):
            lo_table, lo_other = merge.table, merge.other
        unmatched = restrict(e, dict.fromkeys(mine, False))
        other = self.build(unmatched, hi, lo_other)
        table: dict[Any, Node] = {}
        own = sorted(values_d, key=lambda x: (str(type(x)), str(x)))
        for v in own:
            child = self.build(
                restrict(e, {a: at.holds(v) for a, at in in_atoms}), hi, lo_table.get(v, lo_other)
            )
            if child is not other:
                table[v] = child
        # Values only the else-diagram dispatches on: here every atom is false.
        for v, lo_child in lo_table.items():
            if v not in values_d:
                child = self.build(unmatched, hi, lo_child)
                if child is not other:
                    table[v] = child
        if not table:
            return other
        return self._intern(
            ("dispatch", fid, tuple((v, id(c)) for v, c in table.items()), id(other)),
            lambda: DispatchNode(fid, self._label(fid), table, other),
        )

    def chain(self, conditions: Sequence[Expr], default_index: int) -> Node:
        """The first-match diagram of rules 0..n-1 (rule i decides leaf i) and the default."""
        led = [self._phrase_led(c) for c in conditions]
        current: Node = self.leaf(default_index)
        i = len(conditions) - 1
        while i >= 0:
            here = led[i]
            if here is not None:
                fid = here[0].feature
                run = [here]
                j = i
                while j > 0 and (prev := led[j - 1]) is not None and prev[0].feature == fid:
                    run.append(prev)
                    j -= 1
                if len(run) >= INDEX_MIN_RUN:
                    entries = [
                        (atom, self.build(rest, self.leaf(j + n), CONTINUE))
                        for n, (atom, rest) in enumerate(reversed(run))
                    ]
                    label = f"phrase index over {self.features[fid].key[1]} (rules {j + 1}-{i + 1})"
                    labels = [atom.describe(self.features) for atom, _ in entries]
                    current = PhraseIndex(fid, label, entries, current, labels)
                    i = j - 1
                    continue
            current = self.build(conditions[i], self.leaf(i), current)
            i -= 1
        return current

    def _phrase_led(self, e: Expr) -> tuple[KwAtom, Expr] | None:
        """(atom, rest) when `e` is `any-phrase-atom and rest`."""
        if not isinstance(e, tuple):
            return None
        conjuncts = e[1] if e[0] == "and" else (e,)
        for k, c in enumerate(conjuncts):
            if isinstance(c, tuple) and c[0] == "a":
                atom = self.atoms[c[1]]
                if isinstance(atom, KwAtom) and atom.mode == "any":
                    return atom, make_and(tuple(conjuncts[:k]) + tuple(conjuncts[k + 1 :]))
        return None


def _width(node: Node) -> int:
    if isinstance(node, NumNode):
        return len(node.thresholds)
    if isinstance(node, DispatchNode):
        return len(node.table)
    return MERGE_MAX + 1  # leaves and phrase nodes are never merged


def _num_holds(atom: NumAtom, j: int, k: int, top: int) -> bool:
    """Whether `atom` (its value is threshold j) holds in cell k of a split (see NumNode);
    exact for any numbers, infinities and huge integers included."""
    op = atom.op
    if k % 2:  # the threshold k // 2 itself
        i = k // 2
        return {"<": i < j, "<=": i <= j, "==": i == j, ">": i > j, ">=": i >= j}[op]
    i = k // 2  # below threshold i (above all when k == top)
    return {"<": i <= j, "<=": i <= j, "==": False, ">": i > j, ">=": i > j}[op]


def _num_child(node: NumNode, ts: list[Any], k: int) -> Node:
    """The child `node` (whose thresholds are a subset of `ts`) takes in cell k of `ts`."""
    sub = node.thresholds
    if k % 2:
        v = ts[k // 2]
        i = bisect_left(sub, v)
        return node.cells[2 * i + 1 if i < len(sub) and sub[i] == v else 2 * i]
    i = k // 2
    return node.cells[2 * (bisect_left(sub, ts[i]) if i < len(ts) else len(sub))]


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


__all__ = [
    "CONTINUE",
    "Context",
    "DiagramBuilder",
    "DispatchNode",
    "Leaf",
    "Node",
    "NumNode",
    "PhraseIndex",
    "PhraseNode",
    "count_nodes",
    "walk",
]
