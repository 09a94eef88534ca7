"""Checking `shadow TIER sample N%` statements.

A shadow statement asks the runtime to send a sampled share of the requests routed above
TIER to TIER as well, so both answers can be judged side by side. It must name a declared
tier, give a share in (0, 100] percent, appear at most once per tier, and name a tier that
sits below some tier a rule or the default routes to: otherwise no request could ever be
shadowed to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ...decision import Shadow
from ...syntax import ast
from ...syntax.source import Source

if TYPE_CHECKING:
    from . import Checker
    from .model import Located


def check_shadows(checker: Checker, main: Sequence[Located]) -> list[Shadow]:
    """Check the main file's shadow statements (after rules and default) and return them."""
    policy = checker.policy
    seen: dict[str, ast.ShadowDecl] = {}
    shadows: list[Shadow] = []
    order = [t.name for t in policy.tiers]
    routed = [r.tier.name for r in policy.rules]
    if policy.default is not None:
        routed.append(policy.default.tier.name)
    highest = max((order.index(t) for t in routed if t in order), default=-1)
    for located in main:
        node, src = located.node, located.source
        if not isinstance(node, ast.ShadowDecl):
            continue
        tier = checker._tier_ref(node.tier, src)
        share = _share(checker, node, src)
        first = seen.get(node.tier.name)
        if first is not None:
            line, col = src.line_col(first.span.start)
            checker.error(
                "E118",
                f"tier '{node.tier.name}' is shadowed twice",
                src,
                node.span,
                f"first at {src.name}:{line}:{col}; keep one shadow statement per tier",
            )
            continue
        seen[node.tier.name] = node
        if tier is None or share is None:
            continue
        if highest >= 0 and order.index(tier.name) >= highest:
            _never_shadowed(checker, node, src, order, routed)
            continue
        shadows.append(Shadow(tier, share))
    return shadows


def _share(checker: Checker, node: ast.ShadowDecl, src: Source) -> float | None:
    value = node.percent.value
    if not 0 < value <= 100:
        checker.error(
            "E204",
            f"a sample share lies in (0, 100]%, not {node.percent.text or value}%",
            src,
            node.percent.span,
            "remove the statement to stop shadowing"
            if value <= 0
            else "100% shadows every request",
        )
        return None
    return float(value) / 100


def _never_shadowed(
    checker: Checker, node: ast.ShadowDecl, src: Source, order: list[str], routed: list[str]
) -> None:
    top = max((order.index(t) for t in routed if t in order), default=0)
    hint = (
        f"shadow a tier below '{order[top]}', the highest tier a rule or the default routes to"
        if top > 0
        else f"every request is routed to '{order[0]}', the cheapest tier: there is nothing "
        "cheaper to shadow it to"
    )
    checker.error(
        "E119",
        f"no request is routed above tier '{node.tier.name}', so none would be shadowed to it",
        src,
        node.tier.span,
        hint,
    )
