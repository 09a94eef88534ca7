"""The space of requests, cut into finitely many cells, and a decision diagram over it.

Every analysis (unreachable rules, witnesses, diff, counterfactuals) asks one kind of
question: is there a request with these properties? The atoms of one or more policies cut
each attribute's values into *cells* on which every atom is constant:

- a number attribute: the intervals and points between the thresholds the atoms mention
  (whole numbers only for int attributes, so `length > 3 and length < 4` is empty; `length`
  is never negative; a classifier's confidence lies in [0, 1]) and "missing";
- a string attribute: each value the atoms mention, "another value", and "missing";
- a bool attribute: true, false, missing; `metadata.KEY` may hold any of the kinds;
- a classifier label: each declared label, and "failed" (no label);
- a regex: matches or not, one boolean per distinct regex;
- a phrase: found or not, one boolean per (text attribute, normalized phrase), with the one
  dependency the language creates: a phrase that contains another at word boundaries
  implies it ("sort imports" found means "imports" found).

Everything else is treated as independent, which can only make the space larger than the
set of real requests: a region found empty here is empty for real requests (so "never
decides" is never wrong), while a non-empty region gets a concrete witness request that is
checked with `Policy.decide` before anyone sees it.

Regions are multi-valued decision diagrams (MDDs) over the cells, hash-consed, so the
emptiness of a region is a pointer comparison. The stages: variables.py finds the variables
and their cells, this module orders them, states the space's own constraints and turns a
policy's expressions into regions; mdd.py holds the diagram operations, cells.py the cells,
containment.py phrase containment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..compiler.atoms import Expr, InAtom, KwAtom, NumAtom
from ..compiler.features import compile_regex
from ..policy import Policy
from .cells import Cell, Var, describe_cell
from .mdd import FALSE, TRUE, Mdd, deep_recursion
from .variables import collect_variables


class Space(Mdd):
    """The variables of one or more policies and the MDD machinery over them."""

    def __init__(self, policies: Sequence[Policy]) -> None:
        self.policies = list(policies)
        found = collect_variables(self.policies)
        self.vars: list[Var] = found.vars
        self.index: dict[tuple[Any, ...], int] = found.index
        self.members: dict[int, tuple[str, ...]] = found.members
        self._inside = found.inside
        self._order_by_component()
        self._start_tables()
        with deep_recursion(len(self.vars)):
            self.universe = self._containment()

    def _containment(self) -> int:
        """Phrase p containing phrase q at word boundaries: p found implies q found."""
        by_attr: dict[str, list[tuple[str, int]]] = {}
        for i, var in enumerate(self.vars):
            if var.key[0] == "phrase" and len(self.members[i]) == 1:
                by_attr.setdefault(var.key[1], []).append((var.key[2], i))
        u = TRUE
        self.constraints: list[tuple[int, frozenset[int]]] = []

        def add(node: int, vs: frozenset[int]) -> None:
            self.constraints.append((node, vs))

        single = {(attr, text): v for attr, items in by_attr.items() for text, v in items}
        for outer, inner in self._inside:
            vp, vq = single.get(outer), single.get(inner)
            if vp is not None and vq is not None:
                add(
                    self.or_(
                        self.lit(vp, lambda c: not c.rep),
                        self.lit(vq, lambda c: bool(c.rep)),
                    ),
                    frozenset((vp, vq)),
                )
        # A phrase found in the prompt, or a regex that matched it, means there is a prompt;
        # for a phrase of n characters (normalized), one of at least ceil(n / 3): case folding
        # turns one character into at most three ("ﬃ" -> "ffi") and white space only folds.
        lv = self.index.get(("attr", "length"))
        if lv is not None:
            for i, var in enumerate(self.vars):
                if var.key[0] in ("phrase", "regex") and var.key[1] == "prompt":
                    if var.key[0] == "phrase":
                        need = -(-min(len(t) for t in self.members[i]) // 3)
                    else:  # a regex that cannot match the empty prompt needs a character
                        need = 0 if compile_regex(var.key[2], var.key[3]).search("") else 1
                    has_len = self.lit(lv, _at_least(need))
                    add(self.or_(self.lit(i, lambda c: not c.rep), has_len), frozenset((i, lv)))
        return self.and_(u, self.conjoin(node for node, _ in self.constraints))

    # -- expressions of one policy -------------------------------------------------------

    def compiler(self, policy: Policy) -> Callable[[Expr], int]:
        """A function from the policy's expressions to MDD nodes (memoized)."""
        feats = policy.atoms.features
        atoms = policy.atoms.atoms
        phrases = policy.atoms.phrases
        atom_nodes: dict[int, int] = {}

        def atom_node(aid: int) -> int:
            node = atom_nodes.get(aid)
            if node is not None:
                return node
            atom = atoms[aid]
            k = feats[atom.feature].key
            if isinstance(atom, KwAtom):
                lits = [
                    self.lit(self.index[("phrase", k[1], phrases[p])], lambda c: bool(c.rep))
                    for p in sorted(atom.phrases)
                ]
                # Lowest variable first, so each step adds one node above the result so far
                # (in the other order every step rebuilds it: quadratic in the phrases).
                lits.sort(key=lambda n: self.node_var[n], reverse=True)
                node = FALSE if atom.mode == "any" else TRUE
                for x in lits:
                    node = self.or_(node, x) if atom.mode == "any" else self.and_(node, x)
            elif isinstance(atom, NumAtom):
                vkey = ("confidence", k[1]) if k[0] == "confidence" else ("attr", k[1])
                node = self.lit(self.index[vkey], lambda c: c.kind == "num" and atom.holds(c.rep))
            else:
                node = self.lit(*self._in_atom(k, atom))
            atom_nodes[aid] = node
            return node

        memo: dict[Any, int] = {}

        def build(e: Expr) -> int:
            if e is True:
                return TRUE
            if e is False:
                return FALSE
            assert isinstance(e, tuple)
            r = memo.get(e)
            if r is not None:
                return r
            tag = e[0]
            if tag == "a":
                r = atom_node(e[1])
            elif tag == "not":
                r = self.not_(build(e[1]))
            elif tag == "and":
                r = TRUE
                for x in e[1]:
                    r = self.and_(r, build(x))
                    if r == FALSE:
                        break
            else:
                r = FALSE
                for x in e[1]:
                    r = self.or_(r, build(x))
                    if r == TRUE:
                        break
            memo[e] = r
            return r

        return build

    def _order_by_component(self) -> None:
        """Renumber variables so each group of variables that rules tie together (directly,
        through other rules, or through the space's own constraints) is contiguous. Regions
        are conjunctions over such groups, and a conjunction of diagrams over disjoint,
        contiguous variables is just one stacked on the other: no product blow-up."""
        n = len(self.vars)
        parent = list(range(n))

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        def union(vs: Iterable[int]) -> None:
            it = iter(vs)
            first = next(it, None)
            if first is None:
                return
            for v in it:
                a, b = find(first), find(v)
                if a != b:
                    parent[b] = a

        for p in self.policies:
            atom_vars = self.atom_vars(p)
            for cond in p.conditions:
                vs: set[int] = set()
                _collect(cond, atom_vars, vs)
                union(vs)
        lv = self.index.get(("attr", "length"))
        prompt_vars = [
            i
            for i, v in enumerate(self.vars)
            if v.key[0] in ("phrase", "regex") and v.key[1] == "prompt"
        ]
        if lv is not None:
            union([lv, *prompt_vars])
        by_attr: dict[str, list[int]] = {}
        for i, v in enumerate(self.vars):
            if v.key[0] == "phrase" and len(self.members[i]) == 1:
                by_attr.setdefault(v.key[1], []).append(i)
        single = {
            (self.vars[i].key[1], self.vars[i].key[2]): i
            for items in by_attr.values()
            for i in items
        }
        for outer, inner in self._inside:
            a, b = single.get(outer), single.get(inner)
            if a is not None and b is not None:
                union([a, b])
        first_of: dict[int, int] = {}
        for i in range(n):
            first_of.setdefault(find(i), i)
        order = sorted(range(n), key=lambda i: (first_of[find(i)], i))
        new_index = {old: new for new, old in enumerate(order)}
        self.vars = [self.vars[i] for i in order]
        self.index = {k: new_index[v] for k, v in self.index.items()}
        self.members = {new_index[k]: v for k, v in self.members.items()}

    def atom_vars(self, policy: Policy) -> list[frozenset[int]]:
        """The variables each atom of the policy reads."""
        feats = policy.atoms.features
        out: list[frozenset[int]] = []
        for atom in policy.atoms.atoms:
            k = feats[atom.feature].key
            if isinstance(atom, KwAtom):
                out.append(
                    frozenset(
                        self.index[("phrase", k[1], policy.atoms.phrases[p])] for p in atom.phrases
                    )
                )
            elif isinstance(atom, NumAtom):
                out.append(
                    frozenset(
                        [
                            self.index[
                                ("confidence", k[1]) if k[0] == "confidence" else ("attr", k[1])
                            ]
                        ]
                    )
                )
            else:
                out.append(frozenset([self._in_atom(k, atom)[0]]))
        return out

    def _in_atom(self, k: tuple[Any, ...], atom: Any) -> tuple[int, Callable[[Cell], bool]]:
        assert isinstance(atom, InAtom)
        values = atom.values
        kind = k[0]
        if kind == "regex":
            return self.index[k], lambda c: bool(c.rep)
        if kind == "label":
            return self.index[k], lambda c: c.kind == "str" and c.rep in values
        v = self.index[("attr", k[1])]
        if kind == "present":
            return v, lambda c: c.kind != "none" and True in values
        if kind == "bool":
            return v, lambda c: c.kind == "bool" and any(c.rep is x for x in values)
        return v, lambda c: c.kind == "str" and not c.other and c.rep in values

    def describe(self, v: int, i: int) -> str:
        return describe_cell(self.vars[v], self.vars[v].cells[i])


def _at_least(n: int) -> Callable[[Cell], bool]:
    """A number cell holding some value >= n."""

    def holds(c: Cell) -> bool:
        return c.kind == "num" and (c.hi > n or (c.hi_closed and c.hi >= n))

    return holds


def _collect(e: Expr, atom_vars: list[frozenset[int]], into: set[int]) -> None:
    if isinstance(e, tuple):
        if e[0] == "a":
            into.update(atom_vars[e[1]])
        elif e[0] == "not":
            _collect(e[1], atom_vars, into)
        else:
            for x in e[1]:
                _collect(x, atom_vars, into)
