"""First match without walking the rules: bit-vector evaluation, lazy in costly features.

Each rule's condition is split into AND-clauses (its disjunctive normal form over atoms);
every clause gets one bit, in rule order. For every feature and every cell of its values
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
would exceed MAX_CLAUSES clauses is kept whole (one *opaque* clause): its features are
evaluated one by one, cheapest first, until a three-valued reading of its condition is
decided.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from itertools import product
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
)

# A rule whose normal form has more clauses than this is evaluated whole.
MAX_CLAUSES = 64

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


def kleene(e: Expr, truth: Callable[[int], bool | None]) -> bool | None:
    """Three-valued reading of `e`; None while an atom it depends on is unknown."""
    if e is True or e is False:
        return e
    assert isinstance(e, tuple)
    tag = e[0]
    if tag == "a":
        return truth(e[1])
    if tag == "not":
        v = kleene(e[1], truth)
        return None if v is None else not v
    unknown = False
    stop = tag == "or"  # the value that settles the operator
    for x in e[1]:
        v = kleene(x, truth)
        if v is None:
            unknown = True
        elif v is stop:
            return stop
    return None if unknown else not stop


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
        self.opaque: dict[int, Expr] = {}
        for index, cond in enumerate(conditions):
            try:
                clauses = normal_form(cond)
            except _TooBig:
                clauses = []
                bit = len(clause_rule)
                self.opaque[bit] = cond
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
        self.all = (1 << len(clause_rule)) - 1
        self.values = values
        self.masks: list[MaskFn] = []
        for fid, feature in enumerate(features):
            touched = 0
            for bit, _ in touching[fid]:
                touched |= 1 << bit
            base = self.all & ~touched
            if feature.kind == NUM:
                self.masks.append(self._num(fid, base, touching[fid]))
            elif feature.kind == DISCRETE:
                self.masks.append(self._discrete(base, touching[fid]))
            else:
                assert feature.kind == MATCH
                self.masks.append(self._match(base, touching[fid]))

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
                toggles[lo] ^= 1 << bit
                toggles[hi + 1] ^= 1 << bit
            if not any(positive for _, positive in lits):
                missing |= 1 << bit
        masks: list[int] = []
        running = 0
        for k in range(top + 1):
            running ^= toggles[k]
            masks.append(base | running)
        n = len(thresholds)

        def mask(v: Any) -> int:
            if v is None or v != v:  # missing, or NaN: no comparison holds
                return missing
            i = bisect_left(thresholds, v)
            return masks[2 * i + 1 if i < n and thresholds[i] == v else 2 * i]

        return mask

    def _discrete(self, base: int, touching: list[tuple[int, list[Literal]]]) -> MaskFn:
        other = base
        diff: dict[Any, int] = {}
        for bit, lits in touching:
            at_other = not any(positive for _, positive in lits)
            if at_other:
                other |= 1 << bit
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
                    diff[v] = diff.get(v, 0) ^ (1 << bit)
        table = {v: other ^ d for v, d in diff.items() if d}
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
                    kill_atom[aid] = kill_atom.get(aid, 0) | (1 << bit)
            if not pos:
                none |= 1 << bit
            elif len(pos) == 1:
                gain_atom[pos[0]] = gain_atom.get(pos[0], 0) | (1 << bit)
            else:
                multi.append((bit, tuple(self.atoms[a] for a in pos)))  # type: ignore[misc]
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
                    gain |= 1 << bit
            return (none | gain) & ~kill

        return mask

    # -- deciding -------------------------------------------------------------------------

    def decide(self, request: Any, state: dict[Any, Any]) -> int:
        """The index of the deciding rule (the default's index when none holds)."""
        cand = self.all
        done = 0
        clause_rule, needs, rule_clauses = self.clause_rule, self.needs, self.rule_clauses
        order, values, masks, opaque = self.order, self.values, self.masks, self.opaque
        known: dict[int, Any] | None = {} if opaque else None
        while cand:
            low = (cand & -cand).bit_length() - 1
            rule = clause_rule[low]
            clauses = rule_clauses[rule]
            best = -1
            if low in opaque:
                assert known is not None
                verdict = kleene(opaque[low], lambda a: self._truth(a, known))
                if verdict is True:
                    return rule
                if verdict is False:
                    cand &= ~(1 << low)
                    continue
                for f in needs[low]:
                    if not (done >> f) & 1:
                        best = f
                        break
            else:
                for bit in clauses:
                    if (cand >> bit) & 1:
                        for f in needs[bit]:
                            if not (done >> f) & 1:
                                if best < 0 or order[f] < order[best]:
                                    best = f
                                break
                        else:
                            return rule  # a clause whose every feature is known holds
            done |= 1 << best
            v = values[best](request, state)
            if known is not None:
                known[best] = v
            cand &= masks[best](v)
        return self.default

    def _truth(self, aid: int, known: dict[int, Any]) -> bool | None:
        atom = self.atoms[aid]
        if atom.feature not in known:
            return None
        return atom.holds(known[atom.feature])


__all__ = ["MAX_CLAUSES", "Evaluator", "kleene", "normal_form"]
