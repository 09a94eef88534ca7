"""Which rules can decide a request: W001 / W002 lints and witnesses.

Rules are read top to bottom over one MDD: `rest` is the region no earlier rule took (it
starts as every request), rule r decides `rest and cond_r`, and `rest` shrinks by `not
cond_r`. A rule whose region is empty can never decide; the default decides `rest`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..compiler.atoms import Expr
from ..policy import Policy
from ..syntax.diagnostics import Diagnostic
from ..syntax.source import Span
from .mdd import FALSE, TRUE, deep_recursion
from .space import Space
from .variables import AnalysisTooLarge
from .witness import decide_json, find_request

MAX_NAMED = 5


@dataclass(slots=True)
class Reach:
    """Where each rule of a policy decides.

    The rules' variables fall into independent components (rules that share no variable,
    directly or through other rules, constrain disjoint parts of a request). `rest` is kept
    per component: a conjunction over disjoint variables is empty exactly when one of its
    parts is, so rule r can decide iff `rest[comp(r)] and cond_r` is non-empty and no other
    component's `rest` is empty. This keeps each diagram as small as its component.
    """

    policy: Policy
    space: Space
    conds: list[int]  # MDD of each rule's condition (without the default)
    comp: list[int]  # component of each rule (-1: the condition reads no variable)
    snapshots: list[dict[int, int]]  # `rest` per component just before each rule
    base: dict[int, int]  # per component: the constraints of the space alone
    live: list[bool]  # whether each rule (the default last) can decide

    def reachable(self, index: int) -> bool:
        return self.live[index]

    def region(self, index: int) -> int:
        """The MDD of the requests rule `index` decides (the default is the last index)."""
        sp = self.space
        if not self.live[index]:
            return FALSE
        with deep_recursion(len(sp.vars)):
            r = self.conds[index] if index < len(self.conds) else TRUE
            for node in self.snapshots[index].values():
                r = sp.and_(r, node)
            for k, node in self.base.items():
                if k not in self.snapshots[index]:
                    r = sp.and_(r, node)
            return r

    @property
    def regions(self) -> list[int]:
        return [self.region(i) for i in range(len(self.live))]


def _components(space: Space, cond_vars: list[frozenset[int]]) -> list[int]:
    parent = list(range(len(space.vars)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for vs in [*cond_vars, *(v for _, v in space.constraints)]:
        first = next(iter(vs), None)
        for v in vs:
            a, b = find(first), find(v)  # type: ignore[arg-type]
            if a != b:
                parent[a] = b
    return [find(v) for v in range(len(space.vars))]


def _vars_of(e: Expr, atom_vars: list[frozenset[int]], into: set[int]) -> None:
    if isinstance(e, tuple):
        if e[0] == "a":
            into.update(atom_vars[e[1]])
        elif e[0] == "not":
            _vars_of(e[1], atom_vars, into)
        else:
            for x in e[1]:
                _vars_of(x, atom_vars, into)


def compute(policy: Policy, space: Space | None = None) -> Reach:
    space = space or Space([policy])
    atom_vars = space.atom_vars(policy)
    cond_vars: list[frozenset[int]] = []
    for cond in policy.conditions:
        vs: set[int] = set()
        _vars_of(cond, atom_vars, vs)
        cond_vars.append(frozenset(vs))
    comp_of_var = _components(space, cond_vars)
    with deep_recursion(len(space.vars)):
        by_comp: dict[int, list[int]] = {}
        for node, cvs in space.constraints:
            by_comp.setdefault(comp_of_var[next(iter(cvs))], []).append(node)
        base = {k: space.conjoin(nodes) for k, nodes in by_comp.items()}
        rest = dict(base)
        dead = {k for k, n in rest.items() if n == FALSE}
        build = space.compiler(policy)
        conds: list[int] = []
        comps: list[int] = []
        snapshots: list[dict[int, int]] = []
        live: list[bool] = []
        for cond, rvs in zip(policy.conditions, cond_vars, strict=True):
            c = build(cond)
            k = comp_of_var[next(iter(rvs))] if rvs else -1
            conds.append(c)
            comps.append(k)
            snapshots.append(dict(rest))
            mine = rest.get(k, TRUE)
            hit = space.and_(mine, c)
            live.append(hit != FALSE and not (dead - {k}) and c != FALSE)
            if c == TRUE and not rvs:
                dead.add(-1)
                rest[-1] = FALSE
            elif hit != FALSE:
                rest[k] = space.and_(mine, space.not_(c))
                if rest[k] == FALSE:
                    dead.add(k)
        snapshots.append(dict(rest))
        live.append(not dead)
    return Reach(policy, space, conds, comps, snapshots, base, live)


_CACHE: dict[int, tuple[Policy, Reach]] = {}


def reach_of(policy: Policy) -> Reach:
    """Regions of a policy, computed once per policy object (policies are immutable)."""
    hit = _CACHE.get(id(policy))
    if hit is not None and hit[0] is policy:
        return hit[1]
    r = compute(policy)
    if len(_CACHE) > 8:
        _CACHE.clear()
    _CACHE[id(policy)] = (policy, r)
    return r


def _names(names: list[str]) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:MAX_NAMED])
    return shown + (" and more" if len(names) > MAX_NAMED else "")


def shadowing(reach: Reach, index: int) -> list[int] | None:
    """Earlier rules that together cover rule `index`, in order; None when its condition
    holds for no request at all. Only rules of the same component can overlap it; when its
    component still leaves room, another component's rules have covered every request."""
    sp = reach.space
    n = len(reach.conds)
    with deep_recursion(len(sp.vars)):
        k = reach.comp[index] if index < n else None
        if index < n:
            if sp.and_(reach.base.get(reach.comp[index], TRUE), reach.conds[index]) == FALSE:
                return None
            # The space's own constraints (phrase containment, prompt length) rarely matter
            # to a cover and make every step larger: try without them first.
            for left in (
                reach.conds[index],
                sp.and_(reach.base.get(reach.comp[index], TRUE), reach.conds[index]),
            ):
                covered = _cover(reach, index, reach.comp[index], left)
                if covered is not None:
                    return covered
        for other in sorted({c for c in reach.comp[:index] if c != k}):
            covered = _cover(reach, index, other, reach.base.get(other, TRUE))
            if covered is not None:
                return covered
    return []


def _cover(reach: Reach, index: int, comp: int, left: int) -> list[int] | None:
    sp = reach.space
    out: list[int] = []
    own = reach.conds[index] if index < len(reach.conds) and reach.comp[index] == comp else TRUE
    # Projections first: conditions that allow no common cell of a shared variable cannot
    # meet (a few bit tests), and conditions that share no variable always meet; only the
    # rest need a diagram walk.
    pown = _projection(sp, own)
    for i in range(index):
        if reach.comp[i] != comp and reach.comp[i] != -1:
            continue
        c = reach.conds[i]
        pc = _projection(sp, c)
        shared = pown.keys() & pc.keys()
        if any(not pown[v] & pc[v] for v in shared):
            continue
        if shared and sp.and_(own, c) == FALSE:
            continue
        if sp.and_(left, c) != FALSE:
            if sp.and_(own, sp.not_(c)) == FALSE:
                return [i]  # one earlier rule takes everything: the clearest explanation
            out.append(i)
            left = sp.and_(left, sp.not_(c))
            if left == FALSE:
                return out
            if len(out) > MAX_NAMED and not reach.live[index]:
                return out  # enough names for the message ("and more")
    return None


_PROJ: dict[tuple[int, int], dict[int, int]] = {}


def _projection(sp: Space, node: int) -> dict[int, int]:
    """For each variable the diagram tests on every path, the cells some path allows (as a
    bit mask). A variable some path skips allows every cell and is left out."""
    key = (id(sp), node)
    hit = _PROJ.get(key)
    if hit is not None:
        return hit
    if len(_PROJ) > 100_000:
        _PROJ.clear()
    masks: dict[int, int] = {}
    skipped: set[int] = set()
    seen: set[int] = set()
    stack = [node] if node > TRUE else []
    nvars = len(sp.vars)
    root_var = sp.node_var[node] if node > TRUE else nvars
    skipped.update(range(root_var))
    edges: list[tuple[int, int]] = []
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        v = sp.node_var[n]
        m = 0
        for i, k in enumerate(sp.node_kids[n]):
            if k != FALSE:
                m |= 1 << i
                edges.append((v, sp.node_var[k]))
                if k > TRUE:
                    stack.append(k)
        masks[v] = masks.get(v, 0) | m
    for a, b in edges:
        for v in masks:
            if a < v < b:
                skipped.add(v)
    out = {v: m for v, m in masks.items() if v not in skipped}
    _PROJ[key] = out
    return out


def lint(policy: Policy) -> list[Diagnostic]:
    """W001 for each rule that can never decide, W002 when the default can never be reached;
    W011 instead of both when the policy is too large to analyse in bounded time."""
    try:
        reach = reach_of(policy)
    except AnalysisTooLarge as e:
        default = policy.checked.default
        assert default is not None
        return [
            Diagnostic(
                "W011",
                f"the policy is too large to analyse ({e}); W001 and W002 were not checked",
                default.source,
                default.span,
                "fewer keyword phrases that stand inside one another, or fewer distinct tests",
            )
        ]
    out: list[Diagnostic] = []
    checked = policy.checked
    rules = [*checked.rules, checked.default]
    for i, rule in enumerate(rules):
        if rule is None or reach.reachable(i):
            continue
        is_default = i == len(rules) - 1
        covers = shadowing(reach, i)
        if covers is None:
            message = f"rule '{rule.name}' can never decide: its condition holds for no request"
            hint = "the condition contradicts itself; check the bounds and values"
        else:
            names = [policy.rules[j].name for j in covers]
            what = "the default" if is_default else f"rule '{rule.name}'"
            message = (
                f"{what} can never decide: every request it would match is taken by {_names(names)}"
            )
            hint = (
                "add a rule's condition to narrow the earlier rules, or remove this one"
                if not is_default
                else "the rules above cover every request; the default is dead code"
            )
        span = rule.span
        if is_default:
            out.append(Diagnostic("W002", message, rule.source, span, hint))
        else:
            out.append(
                Diagnostic(
                    "W001",
                    message,
                    rule.source,
                    Span(span.start, span.start + len(rule.name)),
                    hint,
                )
            )
    return out


def witness(policy: Policy, rule_name: str) -> dict[str, Any] | None:
    """A request JSON that `rule_name` decides (checked with `Policy.decide`), or None.

    The JSON is what `policyroute route --request` reads; when a rule needs a classifier,
    its answer is in the `route` object: `"classifiers": {"NAME": {"label": ...,
    "confidence": ...}}`, which `route` and `decide` use instead of asking."""
    index = policy.rule_index(rule_name)
    reach = reach_of(policy)
    region = reach.region(index)
    if region == FALSE:
        return None

    def ok(obj: dict[str, Any]) -> bool:
        got = decide_json(policy, obj)
        return got is not None and got[1] == rule_name

    with deep_recursion(len(reach.space.vars)):
        return find_request(reach.space, region, ok)


def why_no_witness(policy: Policy, rule_name: str) -> str:
    index = policy.rule_index(rule_name)
    reach = reach_of(policy)
    if reach.reachable(index):
        return (
            f"rule '{rule_name}' can decide some request, but no concrete request was found "
            "(a regex too complex to sample, or attributes that depend on each other)"
        )
    covers = shadowing(reach, index)
    if covers is None:
        return f"rule '{rule_name}' can never decide: its condition holds for no request"
    names = [policy.rules[j].name for j in covers]
    return f"rule '{rule_name}' can never decide: every request it would match is taken by {_names(names)}"
