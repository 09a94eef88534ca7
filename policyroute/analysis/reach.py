"""Which rules can decide a request: W001 / W002 lints and witnesses.

Rules are read top to bottom over one MDD: `rest` is the region no earlier rule took (it
starts as every request), rule r decides `rest and cond_r`, and `rest` shrinks by `not
cond_r`. A rule whose region is empty can never decide; the default decides `rest`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..policy import Policy
from ..syntax.diagnostics import Diagnostic
from ..syntax.source import Span
from .space import FALSE, Space, deep_recursion
from .witness import decide_json, find_request

MAX_NAMED = 5


@dataclass(slots=True)
class Reach:
    """A policy's rule regions: `regions[i]` is where rule i (the default last) decides."""

    policy: Policy
    space: Space
    conds: list[int]  # MDD of each rule's condition (without the default)
    regions: list[int]

    def reachable(self, index: int) -> bool:
        return self.regions[index] != FALSE


def compute(policy: Policy, space: Space | None = None) -> Reach:
    space = space or Space([policy])
    with deep_recursion(len(space.vars)):
        build = space.compiler(policy)
        rest = space.universe
        conds: list[int] = []
        regions: list[int] = []
        for cond in policy.conditions:
            c = build(cond)
            conds.append(c)
            regions.append(space.and_(rest, c))
            rest = space.and_(rest, space.not_(c))
        regions.append(rest)
    return Reach(policy, space, conds, regions)


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
    return shown + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")


def shadowing(reach: Reach, index: int) -> list[int] | None:
    """Earlier rules that together cover rule `index`'s condition, in order; None when the
    condition holds for no request at all."""
    sp = reach.space
    with deep_recursion(len(sp.vars)):
        left = sp.and_(sp.universe, reach.conds[index]) if index < len(reach.conds) else sp.universe
        if left == FALSE:
            return None
        out: list[int] = []
        for i in range(index):
            if sp.and_(left, reach.conds[i]) != FALSE:
                out.append(i)
                left = sp.and_(left, sp.not_(reach.conds[i]))
                if left == FALSE:
                    break
    return out


def lint(policy: Policy) -> list[Diagnostic]:
    """W001 for each rule that can never decide, W002 when the default can never be reached."""
    reach = reach_of(policy)
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
            message = f"{what} can never decide: every request it would match is taken by {_names(names)}"
            hint = (
                "add a rule's condition to narrow the earlier rules, or remove this one"
                if not is_default
                else "the rules above cover every request; the default is dead code"
            )
        span = rule.span
        if is_default:
            out.append(Diagnostic("W002", message, rule.source, span, hint))
        else:
            out.append(Diagnostic("W001", message, rule.source, Span(span.start, span.start + len(rule.name)), hint))
    return out


def witness(policy: Policy, rule_name: str) -> dict[str, Any] | None:
    """A request JSON that `rule_name` decides (checked with `Policy.decide`), or None.

    The JSON is what `policyroute route --request` reads; when a rule needs a classifier,
    its answer is under the extra key `classifier_answers` ({"NAME": {"label": ...,
    "confidence": ...}}), which `route` ignores."""
    index = policy.rule_index(rule_name)
    reach = reach_of(policy)
    region = reach.regions[index]
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
