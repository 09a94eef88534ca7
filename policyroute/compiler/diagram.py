"""The decision diagram builder: rule conditions in, shared diagram nodes (nodes.py) out.

Built from the rules bottom-up: the diagram for rules i.. is `cond_i ? leaf_i : diagram(i+1)`,
each condition expanded over its features cheapest first (an interval split for a number, a
dispatch for a string, one node per phrase test), with identical nodes shared. A run of rules
that each need a phrase from one text becomes one `PhraseIndex` node, which jumps straight to
the rules whose phrases were found, so a thousand keyword rules cost what the matches cost.

The node types and the walk are re-exported here, so `compiler.diagram` stays the one name
for the diagram as a whole.
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
from .nodes import (
    CONTINUE,
    Context,
    DispatchNode,
    Leaf,
    Node,
    NumNode,
    PhraseIds,
    PhraseIndex,
    PhraseNode,
    count_nodes,
    walk,
)

# A run of at least this many phrase-led rules is indexed rather than chained.
INDEX_MIN_RUN = 3
# A split is merged into the next rule's split on the same feature only while that one is
# this narrow: merging wider ones makes n rules on one attribute cost n^2 to build.
MERGE_MAX = 64
# An `and`/`or` of at least this many operands is built group by group (see _chain_parts).
CHAIN_MIN = 16


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


__all__ = [
    "CONTINUE",
    "Context",
    "DiagramBuilder",
    "DispatchNode",
    "Leaf",
    "Node",
    "NumNode",
    "PhraseIds",
    "PhraseIndex",
    "PhraseNode",
    "count_nodes",
    "walk",
]
