"""The variables of an analysis: what the atoms of one or more policies test, and the cells
each one's values are cut into (the cut itself is in cells.py).

One variable per attribute the atoms read, per distinct regex, per classifier label and
confidence, and per phrase group (phrases that the same atoms read, and that stand in no
other phrase, share one variable: "one of them was found").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..compiler.atoms import InAtom, KwAtom, NumAtom
from ..policy import Policy
from ..request.attributes import BOOL, DYNAMIC, INT, STRING, TEXT, USD, lookup
from .cells import INF, NO, NONE, YES, Cell, Var, _num_cells
from .containment import containment_pairs

OTHER_STRING = "zz-other"
# Variables of one analysis: far above a real policy's (tens), and low enough that the
# recursive MDD operations stay well inside the native stack.
MAX_VARIABLES = 2_000

Phrase = tuple[str, str]  # (text attribute, normalized phrase)


class AnalysisTooLarge(Exception):
    """The policy is too large, or its phrases too entangled, to analyse in bounded time."""


@dataclass(slots=True)
class Variables:
    vars: list[Var] = field(default_factory=list)
    index: dict[tuple[Any, ...], int] = field(default_factory=dict)
    # phrase variable -> the phrases it stands for
    members: dict[int, tuple[str, ...]] = field(default_factory=dict)
    # (outer, inner): phrase `outer` contains phrase `inner` at word boundaries
    inside: list[tuple[Phrase, Phrase]] = field(default_factory=list)

    def add(self, key: tuple[Any, ...], cells: list[Cell], attr: str | None, label: str) -> None:
        self.index[key] = len(self.vars)
        self.vars.append(Var(key, cells, attr, label))


@dataclass(slots=True)
class _Group:
    attr: str
    typ: str
    thresholds: set[float] = field(default_factory=set)
    strings: set[str] = field(default_factory=set)
    numeric: bool = False
    stringy: bool = False
    booly: bool = False


def collect_variables(policies: Sequence[Policy]) -> Variables:
    """The variables the policies' atoms test, in a first order (Space reorders them)."""
    groups: dict[str, _Group] = {}
    labels: dict[str, list[str]] = {}
    confidences: dict[str, set[float]] = {}
    regexes: list[tuple[Any, ...]] = []
    phrases: list[Phrase] = []
    # Which atoms read each phrase: phrases read by exactly the same `any` atoms are
    # interchangeable, so they share one variable ("one of them was found").
    signature: dict[Phrase, set[tuple[int, int]]] = {}
    in_all: set[Phrase] = set()
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
    out = Variables()
    for g in groups.values():
        out.add(("attr", g.attr), _attr_cells(g), g.attr, g.attr)
    for k in regexes:
        out.add(k, [NO, YES], None, f"{k[1]} matches /{k[2]}/{k[3]}")
    for name, ls in labels.items():
        cells = [NONE, *(Cell("str", x) for x in ls)]
        out.add(("label", name), cells, None, f"{name}.label")
    for name, ts in confidences.items():
        out.add(("confidence", name), _num_cells(ts, False, 0.0, 1.0), None, f"{name}.confidence")
    # Phrase containment, found once (near-linearly) for the space's three uses of it.
    out.inside = _containment_of(phrases)
    for group in _phrase_groups(phrases, signature, in_all, out.inside):
        attr, text = group[0]
        texts = tuple(t for _, t in group)
        shown = (
            f'"{text}"'
            if len(texts) == 1
            else "any of [" + ", ".join(f'"{t}"' for t in texts) + "]"
        )
        out.add(("phrase", attr, text), [NO, YES], None, f"{attr} contains {shown}")
        out.members[len(out.vars) - 1] = texts
        for t in texts[1:]:
            out.index[("phrase", attr, t)] = len(out.vars) - 1
    if len(out.vars) > MAX_VARIABLES:
        # The MDD operations recurse once per variable, and far past this both the time
        # and the native stack run out.
        raise AnalysisTooLarge(
            f"{len(out.vars):,} independent tests to analyse; the most is {MAX_VARIABLES:,}"
        )
    return out


def _never_missing(name: str) -> bool:
    """A flag a Request holds (False unless given) is never missing."""
    info = lookup(name)
    return info is not None and info.type == BOOL and info.field is not None


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
        # a length counts characters; a spend is dollars spent
        lo = 0.0 if g.attr == "length" or typ == USD else -INF
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


def _containment_of(phrases: list[Phrase]) -> list[tuple[Phrase, Phrase]]:
    """(outer, inner) for each phrase standing in another of the same text attribute."""
    texts_by_attr: dict[str, list[str]] = {}
    for attr, text in phrases:
        texts_by_attr.setdefault(attr, []).append(text)
    out: list[tuple[Phrase, Phrase]] = []
    for attr, texts in texts_by_attr.items():
        pairs = containment_pairs(texts)
        if pairs is None:
            raise AnalysisTooLarge(f"the phrases read from '{attr}' stand in each other too often")
        out.extend(((attr, texts[i]), (attr, texts[j])) for i, j in pairs)
    return out


def _phrase_groups(
    phrases: list[Phrase],
    signature: dict[Phrase, set[tuple[int, int]]],
    in_all: set[Phrase],
    inside: list[tuple[Phrase, Phrase]],
) -> list[list[Phrase]]:
    """Phrases in groups that can share a variable: same text attribute, read by the same
    atoms, never by a multi-phrase `all`, and not containing or contained in another phrase
    (containment ties a phrase to others, so it keeps its own variable)."""
    tied = {ph for pair in inside for ph in pair}
    groups: dict[Any, list[Phrase]] = {}
    for ph in phrases:
        attr, _ = ph
        alone = ph in in_all or ph in tied
        key: Any = ph if alone else (attr, frozenset(signature[ph]))
        groups.setdefault(key, []).append(ph)
    return list(groups.values())
