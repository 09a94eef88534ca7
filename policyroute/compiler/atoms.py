"""Conditions -> boolean expressions over interned atoms.

A *feature* is one thing computed from a request (a number, a string, the set of phrases
found in a text, a regex's verdict, a classifier's answer). An *atom* is one test on one
feature. Expressions are plain tuples, so equal conditions intern to equal keys:

    True | False | ("a", atom_id) | ("not", e) | ("and", (e, ...)) | ("or", (e, ...))
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..request.attributes import BOOL, DYNAMIC, INT, LABEL, NUMBER, STRING, TEXT, USD, lookup
from ..syntax import ast
from .check import CheckedPolicy
from .features import normalize_phrase

Expr = bool | tuple[Any, ...]

# Kinds of feature, and how the diagram branches on them.
NUM = "num"  # interval split
DISCRETE = "discrete"  # dispatch on the value
MATCH = "match"  # phrase set found by the automaton; atoms test it one at a time

# Cost classes: cheap tests first, so costly ones run only on paths that still need them.
COST_ATTR = 0
COST_PRESENCE = 1
COST_MATCH = 2
COST_REGEX = 3
# Spend is read from the runtime's state (I/O, under a timeout): only on paths still needing it.
COST_STATE = 8
COST_CLASSIFIER = 9


@dataclass(frozen=True, slots=True)
class Feature:
    key: tuple[str, ...]
    kind: str
    cost: int

    @property
    def label(self) -> str:
        k = self.key
        if k[0] == "regex":
            return f"{k[1]} matches /{k[2]}/{k[3]}"
        if k[0] == "present":
            return f"has {k[1]}"
        if k[0] == "match":
            return f"phrases in {k[1]}"
        if k[0] in ("label", "confidence"):
            return f"{k[1]}.{k[0]}"
        return k[1]


_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True, slots=True)
class NumAtom:
    feature: int
    op: str
    value: int | float

    def holds(self, x: int | float | None) -> bool:
        return x is not None and _CMP[self.op](x, self.value)

    def describe(self, features: list[Feature]) -> str:
        return f"{features[self.feature].label} {self.op} {_fmt_num(self.value)}"


@dataclass(frozen=True, slots=True)
class InAtom:
    """The feature's value is one of `values` (strings, or True/False for bool features)."""

    feature: int
    values: frozenset[Any]

    def holds(self, x: Any) -> bool:
        return x is not None and x in self.values

    def describe(self, features: list[Feature]) -> str:
        f = features[self.feature]
        if f.key[0] in ("regex", "present", "bool"):
            return f.label if True in self.values else f"not {f.label}"
        vals = sorted(self.values, key=str)
        if len(vals) == 1:
            return f"{f.label} == {_fmt_val(vals[0])}"
        return f"{f.label} in [{', '.join(_fmt_val(v) for v in vals)}]"


@dataclass(frozen=True, slots=True)
class KwAtom:
    """Phrases found in a text: `any` holds when one of `phrases` was found, `all` when all were."""

    feature: int
    mode: str
    phrases: frozenset[int]
    shown: str

    def holds(self, found: frozenset[int] | None) -> bool:
        if not found:
            return False
        if self.mode == "any":
            return not self.phrases.isdisjoint(found)
        return self.phrases <= found

    def describe(self, features: list[Feature]) -> str:
        return f"{features[self.feature].key[1]} contains {self.shown}"


Atom = NumAtom | InAtom | KwAtom


def _num(v: ast.Value) -> int | float:
    assert isinstance(v, ast.Num), "the checker makes a numeric list all numbers"
    return v.value


def _fmt_num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def _fmt_val(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _fmt_num(v)


class AtomTable:
    """Interns features, atoms and phrases for one policy."""

    def __init__(self, policy: CheckedPolicy) -> None:
        self.policy = policy
        self.features: list[Feature] = []
        self._feature_ids: dict[tuple[str, ...], int] = {}
        self.atoms: list[Atom] = []
        self._atom_ids: dict[Atom, int] = {}
        self.phrases: list[str] = []
        self._phrase_ids: dict[str, int] = {}

    def feature(self, key: tuple[str, ...], kind: str, cost: int) -> int:
        fid = self._feature_ids.get(key)
        if fid is None:
            fid = self._feature_ids[key] = len(self.features)
            self.features.append(Feature(key, kind, cost))
        return fid

    def atom(self, atom: Atom) -> Expr:
        aid = self._atom_ids.get(atom)
        if aid is None:
            aid = self._atom_ids[atom] = len(self.atoms)
            self.atoms.append(atom)
        return ("a", aid)

    def phrase(self, text: str) -> int:
        norm = normalize_phrase(text)
        pid = self._phrase_ids.get(norm)
        if pid is None:
            pid = self._phrase_ids[norm] = len(self.phrases)
            self.phrases.append(norm)
        return pid

    # -- lowering -----------------------------------------------------------------------

    def lower(self, expr: ast.Expr) -> Expr:
        if isinstance(expr, ast.And):
            return make_and(tuple(self.lower(e) for e in expr.operands))
        if isinstance(expr, ast.Or):
            return make_or(tuple(self.lower(e) for e in expr.operands))
        if isinstance(expr, ast.Not):
            return make_not(self.lower(expr.operand))
        return self._condition(expr)

    def _attr_kind(self, attr: ast.Attr) -> str:
        if attr.parts[0] in self.policy.classifiers:
            return LABEL if attr.parts[1] == "label" else NUMBER
        info = lookup(attr.dotted)
        assert info is not None, "the checker lets no unknown attribute through"
        return info.type

    def _num(self, attr: ast.Attr) -> int:
        if attr.parts[0] in self.policy.classifiers:
            return self.feature(("confidence", attr.parts[0]), NUM, COST_CLASSIFIER)
        info = lookup(attr.dotted)
        cost = COST_STATE if info is not None and info.type == USD else COST_ATTR
        return self.feature(("num", attr.dotted), NUM, cost)

    def _discrete(self, attr: ast.Attr, kind: str) -> int:
        if attr.parts[0] in self.policy.classifiers:
            return self.feature(("label", attr.parts[0]), DISCRETE, COST_CLASSIFIER)
        return self.feature((kind, attr.dotted), DISCRETE, COST_ATTR)

    def _value_feature(self, attr: ast.Attr, sample: ast.Value | None) -> tuple[int, bool]:
        """The feature a comparison reads, and whether it is numeric."""
        t = self._attr_kind(attr)
        if t == DYNAMIC:
            if isinstance(sample, ast.Num):
                t = NUMBER
            elif isinstance(sample, ast.Bool):
                t = BOOL
            else:
                t = STRING
        if t in (INT, NUMBER, USD):
            return self._num(attr), True
        if t == BOOL:
            return self._discrete(attr, "bool"), False
        return self._discrete(attr, "str"), False

    def _condition(self, c: ast.Condition) -> Expr:
        if isinstance(c, ast.Compare):
            fid, numeric = self._value_feature(c.attr, c.value)
            op = c.op
            if numeric:
                assert isinstance(c.value, ast.Num)
                atom = self.atom(NumAtom(fid, "==" if op == "!=" else op, c.value.value))
            else:
                atom = self.atom(InAtom(fid, frozenset([c.value.value])))
            return make_not(atom) if op == "!=" else atom
        if isinstance(c, ast.In):
            if not c.values:
                self._value_feature(c.attr, None)
                return c.negated
            fid, numeric = self._value_feature(c.attr, c.values[0])
            if numeric:
                expr = make_or(tuple(self.atom(NumAtom(fid, "==", _num(v))) for v in c.values))
            else:
                expr = self.atom(InAtom(fid, frozenset(v.value for v in c.values)))
            return make_not(expr) if c.negated else expr
        if isinstance(c, ast.Contains):
            fid = self.feature(("match", c.attr.dotted), MATCH, COST_MATCH)
            target = c.target
            if isinstance(target, ast.Str):
                phrases: tuple[str, ...] = (target.value,)
                shown = _fmt_val(target.value)
            elif isinstance(target, ast.Ident):
                phrases = self.policy.keywords[target.name]
                shown = f"{c.mode} {target.name}"
            else:
                phrases = tuple(p.value for p in target.phrases)
                shown = f"{c.mode} [{', '.join(_fmt_val(p) for p in phrases)}]"
            pids = frozenset(self.phrase(p) for p in phrases)
            mode = "all" if c.mode == "all" else "any"
            return self.atom(KwAtom(fid, mode, pids, shown))
        if isinstance(c, ast.Matches):
            key = ("regex", c.attr.dotted, c.regex.pattern, c.regex.flags)
            fid = self.feature(key, DISCRETE, COST_REGEX)
            return self.atom(InAtom(fid, frozenset([True])))
        if isinstance(c, ast.Has):
            if c.attr.parts[0] in self.policy.classifiers:
                if c.attr.parts[1] == "confidence":
                    return True  # a failed classifier still answers confidence 0
                spec = self.policy.classifiers[c.attr.parts[0]]
                return self.atom(InAtom(self._discrete(c.attr, "str"), frozenset(spec.labels)))
            fid = self.feature(("present", c.attr.dotted), DISCRETE, COST_PRESENCE)
            return self.atom(InAtom(fid, frozenset([True])))
        # Truthy: a bool attribute alone.
        return self.atom(InAtom(self._discrete(c.attr, "bool"), frozenset([True])))


# -- expression algebra ---------------------------------------------------------------------


def make_not(e: Expr) -> Expr:
    if e is True:
        return False
    if e is False:
        return True
    assert isinstance(e, tuple)
    if e[0] == "not":
        inner: Expr = e[1]
        return inner
    return ("not", e)


def make_and(items: tuple[Expr, ...]) -> Expr:
    return _junction("and", items, False)


def make_or(items: tuple[Expr, ...]) -> Expr:
    return _junction("or", items, True)


def _junction(tag: str, items: tuple[Expr, ...], absorbing: bool) -> Expr:
    """`and` (absorbing False) or `or` (absorbing True) of `items`, flattened, without
    repeats or the neutral constant."""
    out: list[Expr] = []
    for e in items:
        if e is absorbing:
            return absorbing
        if e is (not absorbing):
            continue
        assert isinstance(e, tuple)
        if e[0] == tag:
            out.extend(e[1])
        elif e not in out:
            out.append(e)
    if not out:
        return not absorbing
    return out[0] if len(out) == 1 else (tag, tuple(out))


def atoms_of(e: Expr, into: set[int] | None = None) -> set[int]:
    into = set() if into is None else into
    if isinstance(e, tuple):
        if e[0] == "a":
            into.add(e[1])
        elif e[0] == "not":
            atoms_of(e[1], into)
        else:
            for x in e[1]:
                atoms_of(x, into)
    return into


def restrict(e: Expr, assignment: dict[int, bool]) -> Expr:
    """`e` with the assigned atoms replaced by their truth values, simplified."""
    if not isinstance(e, tuple):
        return e
    tag = e[0]
    if tag == "a":
        v = assignment.get(e[1])
        return e if v is None else v
    if tag == "not":
        return make_not(restrict(e[1], assignment))
    parts = tuple(restrict(x, assignment) for x in e[1])
    return make_and(parts) if tag == "and" else make_or(parts)


def evaluate(e: Expr, truth: Callable[[int], bool]) -> bool:
    """Plain evaluation of an expression, atom by atom."""
    if not isinstance(e, tuple):
        return e
    tag = e[0]
    if tag == "a":
        return truth(e[1])
    if tag == "not":
        return not evaluate(e[1], truth)
    if tag == "and":
        return all(evaluate(x, truth) for x in e[1])
    return any(evaluate(x, truth) for x in e[1])


__all__ = [
    "COST_CLASSIFIER",
    "COST_STATE",
    "DISCRETE",
    "MATCH",
    "NUM",
    "STRING",
    "TEXT",
    "Atom",
    "AtomTable",
    "Expr",
    "Feature",
    "InAtom",
    "KwAtom",
    "NumAtom",
    "atoms_of",
    "evaluate",
    "make_and",
    "make_not",
    "make_or",
    "restrict",
]
