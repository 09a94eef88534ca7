"""`route --explain`: which one change to a request would have sent it to another tier.

The request is placed in the policy's cell space (each variable's cell read off the request);
then every single-variable change (another cell of one attribute, one phrase added or
removed, a regex's verdict flipped, another classifier answer) is replayed through the rules
top to bottom on cells. The changes that land on a different tier are reported, the
earliest rule first, one line per target rule; for each variable, the line names exactly the
values that move the request there ("if length < 280", not one sample of them). Only single
changes are tried: a tier that needs two attributes to change is not listed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..compiler.atoms import Expr, InAtom, KwAtom, NumAtom
from ..compiler.features import compile_regex, normalize_text, regex_search
from ..decision import Decision
from ..policy import Policy
from ..request import Request
from ..request.attributes import lookup
from .cells import Var
from .containment import contains_at_boundaries
from .describe import describe_cells
from .space import Space

MAX_LINES = 5
MAX_WAYS = 3


def _atom_truth(
    space: Space, policy: Policy
) -> list[tuple[list[int], Callable[[list[int]], bool]]]:
    """For each atom: the variables it reads and its truth given every variable's cell."""
    feats = policy.atoms.features
    out: list[tuple[list[int], Callable[[list[int]], bool]]] = []
    for atom in policy.atoms.atoms:
        k = feats[atom.feature].key
        if isinstance(atom, KwAtom):
            vs = [space.index[("phrase", k[1], policy.atoms.phrases[p])] for p in atom.phrases]
            out.append((vs, _phrases_truth(vs, atom.mode == "any")))
            continue
        if isinstance(atom, NumAtom):
            v = space.index[("confidence", k[1]) if k[0] == "confidence" else ("attr", k[1])]
            truth = [c.kind == "num" and atom.holds(c.rep) for c in space.vars[v].cells]
        else:
            assert isinstance(atom, InAtom)
            v, pred = space._in_atom(k, atom)
            truth = [pred(c) for c in space.vars[v].cells]
        out.append(([v], _cell_truth(v, truth)))
    return out


def _phrases_truth(vs: list[int], any_: bool) -> Callable[[list[int]], bool]:
    def holds(cells: list[int]) -> bool:
        found = (cells[v] == 1 for v in vs)
        return any(found) if any_ else all(found)

    return holds


def _cell_truth(v: int, truth: list[bool]) -> Callable[[list[int]], bool]:
    def holds(cells: list[int]) -> bool:
        return truth[cells[v]]

    return holds


def _eval(
    e: Expr, atoms: list[tuple[list[int], Callable[[list[int]], bool]]], cells: list[int]
) -> bool:
    if not isinstance(e, tuple):
        return bool(e)
    tag = e[0]
    if tag == "a":
        return atoms[e[1]][1](cells)
    if tag == "not":
        return not _eval(e[1], atoms, cells)
    if tag == "and":
        return all(_eval(x, atoms, cells) for x in e[1])
    return any(_eval(x, atoms, cells) for x in e[1])


def _classifications(decision: Decision) -> dict[str, tuple[Any, float]]:
    out: dict[str, tuple[Any, float]] = {}
    for step in decision.explanation or ():
        if step.test.startswith("classifier ") and isinstance(step.value, tuple):
            out[step.test[11:]] = (step.value[0], float(step.value[1]))
    return out


def _cells_of(space: Space, policy: Policy, request: Request, decision: Decision) -> list[int]:
    answers = _classifications(decision)
    cells: list[int] = []
    for var in space.vars:
        k = var.key
        if k[0] == "attr":
            info = lookup(k[1])
            cells.append(var.cell_of_value(info.get(request) if info is not None else None))
        elif k[0] == "phrase":
            text = _text(request, k[1])
            found = text is not None and any(
                _found(policy, text, t) for t in space.members[len(cells)]
            )
            cells.append(1 if found else 0)
        elif k[0] == "regex":
            text = _text(request, k[1])
            cells.append(
                1 if text is not None and regex_search(compile_regex(k[2], k[3]), text) else 0
            )
        elif k[0] == "label":
            cells.append(var.cell_of_value(answers.get(k[1], (None, 0.0))[0]))
        else:
            cells.append(var.cell_of_value(answers.get(k[1], (None, 0.0))[1]))
    return cells


def _text(request: Request, attr: str) -> str | None:
    v = getattr(request, attr, None)
    return v if isinstance(v, str) else None


def _found(policy: Policy, text: str, phrase: str) -> bool:
    ids = policy.matcher.find(text)
    return any(policy.matcher.phrases[i] == phrase for i in ids)


def counterfactual(policy: Policy, request: Request, decision: Decision) -> list[str]:
    """Lines like "would go to opus by rule huge if context_tokens > 60000": the single
    changes to the request that would change its tier, earliest rule first."""
    space = Space([policy])
    atoms = _atom_truth(space, policy)
    conds = policy.conditions
    names = [r.name for r in policy.rules]
    tiers = [r.tier for r in policy.rules]

    def decide(cells: list[int]) -> int:
        for i, c in enumerate(conds):
            if _eval(c, atoms, cells):
                return i
        return len(conds)

    base = _cells_of(space, policy, request, decision)
    phrase_vars = {
        v: var.key
        for v, var in enumerate(space.vars)
        if var.key[0] == "phrase" and len(space.members[v]) == 1
    }
    # target rule -> variable -> the cells of that variable that send the request there
    moves: dict[int, dict[int, list[int]]] = {}
    for v, var in enumerate(space.vars):
        for i in range(len(var.cells)):
            if i == base[v]:
                continue
            cells = list(base)
            cells[v] = i
            if v in phrase_vars:  # grouped phrases stand in no containment
                _keep_containment(space, phrase_vars, cells, v)
            r = decide(cells)
            if tiers[r] != decision.tier:
                moves.setdefault(r, {}).setdefault(v, []).append(i)
    lines = []
    for r in sorted(moves):
        ways = [
            _change(space.vars[v], idxs, space.members.get(v, ()), request)
            for v, idxs in sorted(moves[r].items(), key=lambda kv: _rank(space.vars[kv[0]], kv[1]))
        ]
        target = "rule " + names[r] if r < len(conds) else "the default"
        lines.append(f"would go to {tiers[r]} by {target} if " + ", or if ".join(ways[:MAX_WAYS]))
    return lines[:MAX_LINES]


def _keep_containment(
    space: Space, phrase_vars: dict[int, tuple[Any, ...]], cells: list[int], v: int
) -> None:
    # Adding a phrase adds the phrases inside it; removing one removes those containing it.
    attr, text = phrase_vars[v][1], phrase_vars[v][2]
    for w, key in phrase_vars.items():
        if w == v or key[1] != attr:
            continue
        if cells[v] == 1 and contains_at_boundaries(text, key[2]):
            cells[w] = 1
        if cells[v] == 0 and contains_at_boundaries(key[2], text):
            cells[w] = 0


def _rank(var: Var, idxs: list[int]) -> tuple[int, str]:
    """Changes that give a value before those that take one away, then by name."""
    cells = [var.cells[i] for i in idxs]
    vague = all(c.kind in ("none", "any") or c.other for c in cells)
    return (1 if vague else 0, var.label)


def _quoted(phrases: list[str], limit: int = 3) -> str:
    shown = ", ".join(f'"{p}"' for p in phrases[:limit])
    return shown + (f" (or {len(phrases) - limit} more)" if len(phrases) > limit else "")


def _change(var: Var, idxs: list[int], members: Any, request: Request) -> str:
    """One variable's change, in words: exactly the values (cells) that move the request."""
    key = var.key
    if key[0] == "phrase":
        (i,) = idxs
        # A phrase variable stands for a group of phrases that every rule tests together.
        group = sorted(members) or [key[2]]
        if var.cells[i].rep:
            return f"{key[1]} contained " + (
                _quoted(group) if len(group) == 1 else "one of " + _quoted(group)
            )
        text = _text(request, key[1])
        found = set()
        if text is not None:
            found = {p for p in group if contains_at_boundaries(normalize_text(text), p)}
        return f"{key[1]} did not contain " + _quoted(sorted(found) or group)
    if key[0] == "regex":
        (i,) = idxs
        return (
            f"{key[1]} matched /{key[2]}/{key[3]}"
            if var.cells[i].rep
            else f"{key[1]} did not match /{key[2]}/{key[3]}"
        )
    return describe_cells(var, idxs) or f"{var.label} changed"
