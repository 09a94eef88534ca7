"""Semantic diff of two policies: the regions of requests they route to different tiers.

Both policies are compiled over one shared cell space (phrases by normalized text, so a
renamed keyword set compares equal; numeric cells cut at both policies' thresholds). "Routes
differently" means a different *tier*: a request that moves from one rule to another but
keeps its tier is not a difference (so reordering rules that do not overlap, renaming keyword
sets or rules, or reformatting are all equivalent). Each reported region is one pair (old
rule, new rule) with different tiers whose regions meet, written exactly (see describe.py),
with a witness request checked against both policies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..policy import Policy
from .describe import describe_region
from .mdd import FALSE, deep_recursion
from .reach import compute
from .space import Space
from .witness import decide_json, find_request

MAX_REGIONS = 200


@dataclass(frozen=True, slots=True)
class Difference:
    old_tier: str
    old_rule: str
    new_tier: str
    new_rule: str
    where: str  # the region in words: exactly the requests that move, unless not `exact`
    witness: dict[str, Any] | None  # None: the region is in the cell model, no request found
    cases: tuple[tuple[str, ...], ...] = ()  # `where` as a union of conjunctions
    exact: bool = True  # False: `where` is a box around the region, larger than it

    def to_json(self) -> dict[str, Any]:
        return {
            "old": {"tier": self.old_tier, "rule": self.old_rule},
            "new": {"tier": self.new_tier, "rule": self.new_rule},
            "where": self.where,
            "cases": [list(c) for c in self.cases],
            "exact": self.exact,
            "witness": self.witness,
        }

    def describe(self) -> str:
        return (
            f"{self.old_tier} by {self.old_rule} -> {self.new_tier} by {self.new_rule}"
            f"  where {self.where}"
        )


def diff(old: Policy, new: Policy, limit: int = MAX_REGIONS) -> list[Difference]:
    """Every (old rule, new rule) pair with different tiers whose regions meet."""
    space = Space([old, new])
    ro = compute(old, space)
    rn = compute(new, space)
    old_tiers = [r.tier for r in old.rules]
    new_tiers = [r.tier for r in new.rules]
    out: list[Difference] = []
    with deep_recursion(len(space.vars)):
        old_regions, new_regions = ro.regions, rn.regions
        by_tier: dict[str, int] = {}
        for region, tier in zip(new_regions, new_tiers, strict=True):
            by_tier[tier] = space.or_(by_tier.get(tier, FALSE), region)
        old_by_tier: dict[str, int] = {}
        for region, tier in zip(old_regions, old_tiers, strict=True):
            old_by_tier[tier] = space.or_(old_by_tier.get(tier, FALSE), region)
        # Everywhere the tiers differ, in one diagram: usually small or empty, so each old
        # rule is then met with it rather than with the (large) complement of its tier.
        differ = FALSE
        for tier, region in old_by_tier.items():
            differ = space.or_(differ, space.and_(region, space.not_(by_tier.get(tier, FALSE))))
        if differ == FALSE:
            return []
        for a, region_a in enumerate(old_regions):
            if region_a == FALSE:
                continue
            moved = space.and_(region_a, differ)
            if moved == FALSE:
                continue
            for b, region_b in enumerate(new_regions):
                if new_tiers[b] == old_tiers[a] or region_b == FALSE:
                    continue
                both = space.and_(moved, region_b)
                if both == FALSE:
                    continue
                out.append(_difference(space, old, new, a, b, both))
                if len(out) >= limit:
                    return out
    return out


def _difference(space: Space, old: Policy, new: Policy, a: int, b: int, region: int) -> Difference:
    ra, rb = old.rules[a], new.rules[b]

    def ok(obj: dict[str, Any]) -> bool:
        return decide_json(old, obj) == (ra.tier, ra.name) and decide_json(new, obj) == (
            rb.tier,
            rb.name,
        )

    found = find_request(space, region, ok)
    words = describe_region(space, region)
    return Difference(
        ra.tier, ra.name, rb.tier, rb.name, words.text(), found, words.cases, words.exact
    )
