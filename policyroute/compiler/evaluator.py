"""First match without walking the rules: bit-vector evaluation, lazy in costly features.

Each rule's condition is split into AND-clauses (its disjunctive normal form over atoms);
every clause gets one bit, in rule order from the top bit down, so the first surviving
clause is found from `bit_length()` alone, whatever the number of clauses (see `bit`). For
every feature and every cell of its values
(each listed value, anything else, missing; each interval between and at the thresholds of
a number) a mask holds the clauses that cell does not contradict. A request's answer is the
rule of the lowest clause that survives the masks of all the features it needs.

Features are evaluated lazily, cheapest first, and only for the rule of the lowest surviving
clause: the loop picks that rule, evaluates the cheapest feature one of its surviving clauses
still needs, and ANDs in that feature's mask, which may kill clauses of every rule at once.
A rule is decided when one of its clauses survives with all its features known. So a
request costs one step per feature it needs, whatever the number of rules, and a classifier
(an LLM call) is asked only when the first rule still possible needs it after every cheaper
test of that rule, at most once per request.

Phrase features are the set of phrases found in a text (one automaton pass); their mask is
computed from the phrases found, through per-phrase masks made at compile time, so the cost
grows with the phrases a text holds, not with the keyword rules. A rule whose normal form
would exceed MAX_CLAUSES clauses is kept whole (one *opaque* clause): when it is the first
rule still possible, its own decision diagram is walked.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from itertools import product
from typing import Any

from .atoms import (
    COST_CLASSIFIER,
    COST_STATE,
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
)
from .diagram import CONTINUE, Context, DiagramBuilder, Node, walk

# A rule whose normal form has more clauses than this is evaluated whole, and so are the
# rules past a policy-wide budget of clauses (each is a bit in every mask).
MAX_CLAUSES = 1024
MAX_TOTAL_CLAUSES = 1 << 16

Literal = tuple[int, bool]  # (atom id, polarity)
Clause = frozenset[Literal]
ValueFn = Callable[[Any, dict[Any, Any]], Any]
MaskFn = Callable[[Any], int]


class _TooBig(Exception):
    pass


def normal_form(e: Expr, positive: bool = True) -> list[Clause]:
    """The clauses of `e` (or of `not e`), contradictory ones dropped; _TooBig past the cap."""
    if e is True or e is False:
        return [frozenset()] if e is positive else []
    assert isinstance(e, tuple)
    tag = e[0]
    if tag == "a":
        return [frozenset([(e[1], positive)])]
    if tag == "not":
        return normal_form(e[1], not positive)
    parts = [normal_form(x, positive) for x in e[1]]
    if (tag == "or") == positive:  # a disjunction: the clauses of every part
        out = [c for p in parts for c in p]
    else:
        size = 1
        for p in parts:
            size *= len(p)
            if size > MAX_CLAUSES:
                raise _TooBig
        out = []
        for combo in product(*parts):
            merged = frozenset().union(*combo)
            if not any((a, not s) in merged for a, s in merged):
                out.append(merged)
    unique = list(dict.fromkeys(out))
    if len(unique) > MAX_CLAUSES:
        raise _TooBig
    return unique


def _intersect(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _num_cells(atom: NumAtom, j: int, top: int) -> list[tuple[int, int]]:
    """Cells where `atom` holds; cell 2i lies below threshold i, 2i+1 is it, `top` is above all."""
    return {
        "<": [(0, 2 * j)],
        "<=": [(0, 2 * j + 1)],
        ">": [(2 * j + 2, top)],
        ">=": [(2 * j + 1, top)],
        "==": [(2 * j + 1, 2 * j + 1)],
    }[atom.op]


def _complement(cells: list[tuple[int, int]], top: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    at = 0
    for lo, hi in cells:
        if lo > at:
            out.append((at, lo - 1))
        at = hi + 1
    if at <= top:
        out.append((at, top))
    return out


class Evaluator:
    """Compiled first-match evaluation of a policy's rules; see the module docstring."""

    def __init__(
        self,
        features: Sequence[Feature],
        atoms: Sequence[Atom],
        conditions: Sequence[Expr],
        values: Sequence[ValueFn],
    ) -> None:
        self.default = len(conditions)
        self.features = features
        self.atoms = atoms
        rank = sorted(range(len(features)), key=lambda f: (features[f].cost, f))
        self.order = [0] * len(features)
        for r, f in enumerate(rank):
            self.order[f] = r
        clause_rule: list[int] = []
        needs: list[tuple[int, ...]] = []
        rule_clauses: list[tuple[int, ...]] = []
        # per feature: [(clause bit, [(atom id, polarity), ...]), ...]
        touching: list[list[tuple[int, list[Literal]]]] = [[] for _ in features]
        # Opaque rules: the diagram of `condition ? TRUE : FALSE`, walked when reached.
        self.opaque: dict[int, Node] = {}
        builder = DiagramBuilder(list(features), list(atoms), [])
        for index, cond in enumerate(conditions):
            try:
                clauses = normal_form(cond)
                if len(clause_rule) + len(clauses) > MAX_TOTAL_CLAUSES:
                    raise _TooBig
                if not self._settles_io_exactly(clauses):
                    raise _TooBig
            except _TooBig:
                bit = len(clause_rule)
                self.opaque[bit] = builder.build(cond, builder.leaf(0), CONTINUE)
                clause_rule.append(index)
                fids = {atoms[a].feature for a in atoms_of(cond)}
                needs.append(tuple(sorted(fids, key=self.order.__getitem__)))
                rule_clauses.append((bit,))
                continue
            bits = []
            for clause in clauses:
                bit = len(clause_rule)
                bits.append(bit)
                clause_rule.append(index)
                by_feature: dict[int, list[Literal]] = {}
                for lit in clause:
                    by_feature.setdefault(atoms[lit[0]].feature, []).append(lit)
                for fid, lits in by_feature.items():
                    touching[fid].append((bit, lits))
                needs.append(tuple(sorted(by_feature, key=self.order.__getitem__)))
            rule_clauses.append(tuple(bits))
        self.clause_rule = clause_rule
        self.needs = needs
        self.rule_clauses = rule_clauses
        self.count = len(clause_rule)
        self.all = (1 << self.count) - 1
        self.values = values
        # Classifier features of rules with several clauses: asked only once no cheaper
        # feature of the rule is left (see _before_asking).
        self.careful = frozenset(
            f
            for bits in rule_clauses
            if len(bits) > 1
            for b in bits
            for f in needs[b]
            if features[f].cost >= COST_CLASSIFIER
        )
        self.masks: list[MaskFn] = []
        # The tables behind each mask, for generated code: ("num", thresholds, cells,
        # missing) or ("discrete", table, other); phrase features have none.
        self.tables: dict[int, tuple[Any, ...]] = {}
        for fid, feature in enumerate(features):
            touched = 0
            for index, _ in touching[fid]:
                touched |= self.bit(index)
            base = self.all & ~touched
            if feature.kind == NUM:
                self.masks.append(self._num(fid, base, touching[fid]))
            elif feature.kind == DISCRETE:
                self.masks.append(self._discrete(fid, base, touching[fid]))
            else:
                assert feature.kind == MATCH
                self.masks.append(self._match(base, touching[fid]))

    def _settles_io_exactly(self, clauses: list[Clause]) -> bool:
        """Whether the clauses ask a classifier (or read spend) exactly when the rule's own
        diagram would: only when, every cheaper feature known, the rule still depends on it.

        Clauses are a normal form, not the prime implicants: `not k.label == "a" or
        k.label == "a"` is two clauses each needing `k`, where the diagram knows the rule
        holds without asking. Two cases are exact: one clause has all the costly literals,
        one literal per costly feature, so that once the cheaper features hold, what is
        left is a conjunction neither always true nor always false. Any other rule with
        costly features is walked whole (its diagram), which costs a walk, beside an I/O."""
        atoms, features = self.atoms, self.features
        costly = 0
        for clause in clauses:
            seen: set[int] = set()
            for aid, _ in clause:
                f = atoms[aid].feature
                if features[f].cost >= COST_STATE:
                    if f in seen:
                        return False
                    seen.add(f)
            costly += bool(seen)
        return costly <= 1

    def bit(self, clause: int) -> int:
        """The mask bit of `clause`: clause 0 is the top bit, so the first surviving clause
        of a mask `m` is `count - m.bit_length()` (`count` when none survives)."""
        return 1 << (self.count - 1 - clause)

    # -- masks per feature ---------------------------------------------------------------

    def _num(self, fid: int, base: int, touching: list[tuple[int, list[Literal]]]) -> MaskFn:
        thresholds = sorted(
            {a.value for a in self.atoms if isinstance(a, NumAtom) and a.feature == fid}
        )
        index = {t: j for j, t in enumerate(thresholds)}
        top = 2 * len(thresholds)
        toggles = [0] * (top + 2)
        missing = base
        for bit, lits in touching:
            cells = [(0, top)]
            for aid, positive in lits:
                atom = self.atoms[aid]
                assert isinstance(atom, NumAtom)
                own = _num_cells(atom, index[atom.value], top)
                cells = _intersect(cells, own if positive else _complement(own, top))
            for lo, hi in cells:
                toggles[lo] ^= self.bit(bit)
                toggles[hi + 1] ^= self.bit(bit)
            if not any(positive for _, positive in lits):
                missing |= self.bit(bit)
        masks: list[int] = []
        running = 0
        for k in range(top + 1):
            running ^= toggles[k]
            masks.append(base | running)
        n = len(thresholds)
        self.tables[fid] = ("num", thresholds, masks, missing)

        def mask(v: Any) -> int:
            if v is None or v != v:  # missing, or NaN: no comparison holds
                return missing
            i = bisect_left(thresholds, v)
            return masks[2 * i + 1 if i < n and thresholds[i] == v else 2 * i]

        return mask

    def _discrete(self, fid: int, base: int, touching: list[tuple[int, list[Literal]]]) -> MaskFn:
        other = base
        diff: dict[Any, int] = {}
        for bit, lits in touching:
            at_other = not any(positive for _, positive in lits)
            if at_other:
                other |= self.bit(bit)
            mentioned: set[Any] = set()
            for aid, _ in lits:
                atom = self.atoms[aid]
                assert isinstance(atom, InAtom)
                mentioned |= atom.values
            for v in mentioned:
                held = all(
                    (v in self.atoms[aid].values) == positive  # type: ignore[union-attr]
                    for aid, positive in lits
                )
                if held != at_other:
                    diff[v] = diff.get(v, 0) ^ self.bit(bit)
        table = {v: other ^ d for v, d in diff.items() if d}
        self.tables[fid] = ("discrete", table, other)
        get = table.get

        def mask(v: Any) -> int:
            return get(v, other) if v is not None else other

        return mask

    def _match(self, base: int, touching: list[tuple[int, list[Literal]]]) -> MaskFn:
        none = base
        gain_atom: dict[int, int] = {}
        kill_atom: dict[int, int] = {}
        multi: list[tuple[int, tuple[KwAtom, ...]]] = []
        for bit, lits in touching:
            pos = [aid for aid, positive in lits if positive]
            for aid, positive in lits:
                if not positive:
                    kill_atom[aid] = kill_atom.get(aid, 0) | self.bit(bit)
            if not pos:
                none |= self.bit(bit)
            elif len(pos) == 1:
                gain_atom[pos[0]] = gain_atom.get(pos[0], 0) | self.bit(bit)
            else:
                multi.append((self.bit(bit), tuple(self.atoms[a] for a in pos)))  # type: ignore[misc]
        gain_p: dict[int, int] = {}
        kill_p: dict[int, int] = {}
        all_of_p: dict[int, list[int]] = {}
        for aid in set(gain_atom) | set(kill_atom):
            atom = self.atoms[aid]
            assert isinstance(atom, KwAtom)
            for p in atom.phrases:
                if atom.mode == "any":
                    if aid in gain_atom:
                        gain_p[p] = gain_p.get(p, 0) | gain_atom[aid]
                    if aid in kill_atom:
                        kill_p[p] = kill_p.get(p, 0) | kill_atom[aid]
                else:
                    all_of_p.setdefault(p, []).append(aid)
        atoms = self.atoms

        def mask(found: frozenset[int]) -> int:
            if not found:
                return none
            gain = kill = 0
            for p in found:
                g = gain_p.get(p)
                if g is not None:
                    gain |= g
                k = kill_p.get(p)
                if k is not None:
                    kill |= k
                alls = all_of_p.get(p)
                if alls is not None:
                    for aid in alls:
                        if atoms[aid].phrases <= found:  # type: ignore[union-attr]
                            gain |= gain_atom.get(aid, 0)
                            kill |= kill_atom.get(aid, 0)
            for bit, pos in multi:
                if all(a.holds(found) for a in pos):
                    gain |= bit
            return (none | gain) & ~kill

        return mask

    # -- deciding -------------------------------------------------------------------------

    def decide(self, request: Any, state: dict[Any, Any]) -> int:
        """The index of the deciding rule (the default's index when none holds)."""
        return self.run(request, state, self.all, 0)

    def run(self, request: Any, state: dict[Any, Any], cand: int, done: int) -> int:
        """`decide` from surviving clauses `cand`, the features in `done` already applied."""
        clause_rule, needs, opaque = self.clause_rule, self.needs, self.opaque
        values, masks, careful = self.values, self.masks, self.careful
        count = self.count
        cursor: dict[int, int] | None = None
        while cand:
            low = count - cand.bit_length()  # the first surviving clause
            if low in opaque:
                if self._walk(opaque[low], request, state) is not CONTINUE:
                    return clause_rule[low]
                cand &= ~self.bit(low)
                continue
            fs = needs[low]
            # The first feature the lowest clause still needs; features are only ever added
            # to `done`, so a long clause keeps its place in a cursor.
            if len(fs) < 8:
                i = 0
                while i < len(fs) and (done >> fs[i]) & 1:
                    i += 1
            else:
                if cursor is None:
                    cursor = {}
                i = cursor.get(low, 0)
                while i < len(fs) and (done >> fs[i]) & 1:
                    i += 1
                cursor[low] = i
            if i == len(fs):
                return clause_rule[low]  # every feature of a surviving clause is known
            f = fs[i]
            if f in careful:
                # About to ask a classifier: first settle the rule by its other clauses.
                settled, f = self._before_asking(clause_rule[low], cand, done)
                if settled:
                    return clause_rule[low]
            done |= 1 << f
            cand &= masks[f](values[f](request, state))
        return self.default

    def _before_asking(self, rule: int, cand: int, done: int) -> tuple[bool, int]:
        """(True, -1) when a surviving clause of `rule` already holds; else the cheapest
        feature its surviving clauses still need."""
        best = -1
        order = self.order
        for bit in self.rule_clauses[rule]:
            if cand & self.bit(bit):
                for f in self.needs[bit]:
                    if not (done >> f) & 1:
                        if best < 0 or order[f] < order[best]:
                            best = f
                        break
                else:
                    return True, -1
        return False, best

    def _walk(self, root: Node, request: Any, state: dict[Any, Any]) -> Node:
        values = self.values
        getters = [lambda ctx, f=f: values[f](ctx.request, ctx.scans) for f in range(len(values))]
        ctx = Context(request, getters, state.get("classifier"), None)
        ctx.scans = state  # the same caches: a classifier is still asked at most once
        return walk(root, ctx)


__all__ = ["MAX_CLAUSES", "Evaluator", "normal_form"]
