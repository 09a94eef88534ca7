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
emptiness of a region is a pointer comparison.

About 600 lines, and kept whole: the variables, their order and the MDD operations on them
are one data structure (the cells are in cells.py, phrase containment in containment.py).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..compiler.atoms import Expr, InAtom, KwAtom, NumAtom
from ..compiler.features import compile_regex
from ..policy import Policy
from ..request.attributes import BOOL, DYNAMIC, INT, STRING, TEXT, lookup
from .cells import INF, NO, NONE, YES, Cell, Var, _num_cells, describe_cell
from .containment import containment_pairs

FALSE = 0
TRUE = 1


@dataclass(slots=True)
class _Group:
    attr: str
    typ: str
    thresholds: set[float] = field(default_factory=set)
    strings: set[str] = field(default_factory=set)
    numeric: bool = False
    stringy: bool = False
    booly: bool = False


OTHER_STRING = "zz-other"


def _never_missing(name: str) -> bool:
    """A flag a Request holds (False unless given) is never missing."""
    info = lookup(name)
    return info is not None and info.type == BOOL and info.field is not None
# Variables of one analysis: far above a real policy's (tens), and low enough that the
# recursive MDD operations stay well inside the native stack.
MAX_VARIABLES = 2_000


class Space:
    """The variables of one or more policies and the MDD machinery over them."""

    def __init__(self, policies: Sequence[Policy]) -> None:
        self.policies = list(policies)
        groups: dict[str, _Group] = {}
        labels: dict[str, list[str]] = {}
        confidences: dict[str, set[float]] = {}
        regexes: list[tuple[Any, ...]] = []
        phrases: list[tuple[str, str]] = []
        # Which atoms read each phrase: phrases read by exactly the same `any` atoms are
        # interchangeable, so they share one variable ("one of them was found").
        signature: dict[tuple[str, str], set[tuple[int, int]]] = {}
        in_all: set[tuple[str, str]] = set()
        for pi, p in enumerate(policies):
            for name, spec in p.classifiers.items():
                known = labels.setdefault(name, [])
                known.extend(x for x in spec.labels if x not in known)
            feats = p.atoms.features
            for f in feats:
                k = f.key
                if k[0] in ("num", "str", "bool", "present"):
                    info = lookup(k[1])
                    typ = info.type if info is not None else DYNAMIC
                    g = groups.setdefault(k[1], _Group(k[1], typ))
                    g.numeric |= k[0] == "num"
                    g.stringy |= k[0] == "str"
                    g.booly |= k[0] == "bool"
                elif k[0] == "confidence":
                    confidences.setdefault(k[1], set())
                elif k[0] == "label":
                    labels.setdefault(k[1], [])
                elif k[0] == "regex" and k not in regexes:
                    regexes.append(k)
            for aid, atom in enumerate(p.atoms.atoms):
                k = feats[atom.feature].key
                if isinstance(atom, NumAtom):
                    if k[0] == "confidence":
                        confidences[k[1]].add(float(atom.value))
                    else:
                        groups[k[1]].thresholds.add(float(atom.value))
                elif isinstance(atom, InAtom) and k[0] == "str":
                    groups[k[1]].strings.update(v for v in atom.values if isinstance(v, str))
                elif isinstance(atom, KwAtom):
                    for pid in atom.phrases:
                        ph = (k[1], p.atoms.phrases[pid])
                        if ph not in signature:
                            phrases.append(ph)
                        signature.setdefault(ph, set()).add((pi, aid))
                        if atom.mode == "all" and len(atom.phrases) > 1:
                            in_all.add(ph)
        self.vars: list[Var] = []
        self.index: dict[tuple[Any, ...], int] = {}
        for g in groups.values():
            self._add(("attr", g.attr), self._attr_cells(g), g.attr, g.attr)
        for k in regexes:
            self._add(k, [NO, YES], None, f"{k[1]} matches /{k[2]}/{k[3]}")
        for name, ls in labels.items():
            cells = [NONE, *(Cell("str", x) for x in ls)]
            self._add(("label", name), cells, None, f"{name}.label")
        for name, ts in confidences.items():
            self._add(
                ("confidence", name), _num_cells(ts, False, 0.0, 1.0), None, f"{name}.confidence"
            )
        # Phrase containment, found once (near-linearly) for the three uses below.
        self._inside: list[tuple[tuple[str, str], tuple[str, str]]] = _containment_of(phrases)
        self.members: dict[int, tuple[str, ...]] = {}
        for group in _phrase_groups(phrases, signature, in_all, self._inside):
            attr, text = group[0]
            texts = tuple(t for _, t in group)
            shown = (
                f'"{text}"'
                if len(texts) == 1
                else "any of [" + ", ".join(f'"{t}"' for t in texts) + "]"
            )
            self._add(("phrase", attr, text), [NO, YES], None, f"{attr} contains {shown}")
            self.members[len(self.vars) - 1] = texts
            for t in texts[1:]:
                self.index[("phrase", attr, t)] = len(self.vars) - 1
        if len(self.vars) > MAX_VARIABLES:
            # The MDD operations recurse once per variable, and far past this both the time
            # and the native stack run out.
            raise AnalysisTooLarge(
                f"{len(self.vars):,} independent tests to analyse; the most is {MAX_VARIABLES:,}"
            )
        self._order_by_component()
        # MDD tables. Node 0 is FALSE, 1 is TRUE; terminals sit below every variable.
        n = len(self.vars)
        self.node_var: list[int] = [n, n]
        self.node_kids: list[tuple[int, ...]] = [(), ()]
        self._unique: dict[tuple[int, tuple[int, ...]], int] = {}
        self._and: dict[tuple[int, int], int] = {}
        self._or: dict[tuple[int, int], int] = {}
        self._not: dict[int, int] = {}
        with deep_recursion(n):
            self.universe = self._containment()

    def _add(self, key: tuple[Any, ...], cells: list[Cell], attr: str | None, label: str) -> None:
        self.index[key] = len(self.vars)
        self.vars.append(Var(key, cells, attr, label))

    @staticmethod
    def _attr_cells(g: _Group) -> list[Cell]:
        # A request always says whether it carries tools or images (false unless it does).
        cells = [] if _never_missing(g.attr) else [NONE]
        typ = g.typ
        if (
            typ == INT
            or (typ == DYNAMIC and g.numeric)
            or (typ not in (STRING, TEXT, DYNAMIC) and g.numeric)
        ):
            integer = typ == INT
            lo = 0.0 if g.attr == "length" else -INF  # a length counts characters
            cells += _num_cells(g.thresholds, integer, lo, INF)
        if typ == STRING or (typ == DYNAMIC and g.stringy):
            cells += [Cell("str", s) for s in sorted(g.strings)]
            other = OTHER_STRING
            while other in g.strings:
                other += "-"
            cells.append(Cell("str", other, other=True))
        if typ == "bool" or (typ == DYNAMIC and g.booly):
            cells += [Cell("bool", True), Cell("bool", False)]
        if typ in (DYNAMIC, TEXT) or len(cells) == 1:
            cells.append(Cell("any", "x"))
        return cells

    # -- MDD core ------------------------------------------------------------------------

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

    # -- reading regions -----------------------------------------------------------------

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

    def describe(self, v: int, i: int) -> str:
        return describe_cell(self.vars[v], self.vars[v].cells[i])

    def size(self) -> int:
        return len(self.node_var)


def _ordered(size: int, v: int, prefer: Callable[[int, int], float] | None) -> list[int]:
    if prefer is None:
        return list(range(size))
    return sorted(range(size), key=lambda i: prefer(v, i))


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


class AnalysisTooLarge(Exception):
    """The policy is too large, or its phrases too entangled, to analyse in bounded time."""


def _containment_of(
    phrases: list[tuple[str, str]],
) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """(outer, inner) for each phrase standing in another of the same text attribute."""
    texts_by_attr: dict[str, list[str]] = {}
    for attr, text in phrases:
        texts_by_attr.setdefault(attr, []).append(text)
    out: list[tuple[tuple[str, str], tuple[str, str]]] = []
    for attr, texts in texts_by_attr.items():
        pairs = containment_pairs(texts)
        if pairs is None:
            raise AnalysisTooLarge(f"the phrases read from '{attr}' stand in each other too often")
        out.extend(((attr, texts[i]), (attr, texts[j])) for i, j in pairs)
    return out


def _phrase_groups(
    phrases: list[tuple[str, str]],
    signature: dict[tuple[str, str], set[tuple[int, int]]],
    in_all: set[tuple[str, str]],
    inside: list[tuple[tuple[str, str], tuple[str, str]]],
) -> list[list[tuple[str, str]]]:
    """Phrases in groups that can share a variable: same text attribute, read by the same
    atoms, never by a multi-phrase `all`, and not containing or contained in another phrase
    (containment ties a phrase to others, so it keeps its own variable)."""
    tied = {ph for pair in inside for ph in pair}
    groups: dict[Any, list[tuple[str, str]]] = {}
    for ph in phrases:
        attr, _ = ph
        alone = ph in in_all or ph in tied
        key: Any = ph if alone else (attr, frozenset(signature[ph]))
        groups.setdefault(key, []).append(ph)
    return list(groups.values())


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
