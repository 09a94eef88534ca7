"""The report object of a replay, built from a tally; `to_json` gives the documented keys.

Renderers (report_human, report_json, report_csv, report_html) only format what is here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..policy import Policy
from .costing import INPUT_SOURCES, OUTPUT_SOURCES, SOURCE_TEXT
from .spend_sim import SpendSummary
from .tally import ServedTally, Tally, percentile
from .traffic import Unreplayable

if TYPE_CHECKING:  # stats imports numpy: only a replay with outcomes loads it
    from .stats import Difference, Interval, Quality


@dataclass(frozen=True, slots=True)
class TierLine:
    name: str
    model: str
    count: int
    share: float
    cost_usd: float
    scored: int  # requests sent here that have an outcome for this tier
    mean_score: float | None


@dataclass(frozen=True, slots=True)
class RuleLine:
    name: str
    tier: str
    where: str
    count: int
    share: float
    cost_usd: float
    scored: int
    mean_score: float | None


@dataclass(frozen=True, slots=True)
class Baseline:
    tier: str
    cost_usd: float
    score: float | None  # mean over the evaluated set, when this tier has outcomes


@dataclass
class Report:
    policy: str | None
    revision: str
    files: list[str]
    requests: int
    replayed: int
    skipped: dict[str, int]
    skipped_total: int
    skipped_examples: list[Unreplayable]
    shapes: dict[str, int]
    tiers: list[TierLine]
    rules: list[RuleLine]
    cost_usd: float
    baselines: list[Baseline]
    input_sources: dict[str, int]
    output_sources: dict[str, int]
    classifier_unasked: int
    group_by: str | None
    group_missing: int
    outcomes_given: bool
    with_outcomes: int = 0  # replayed requests with an outcome for any tier
    coverage: float | None = None
    unscored: dict[str, int] = field(default_factory=dict)  # tier -> requests sent, no outcome
    quality: Quality | None = None
    served: ServedTally | None = None
    spend: SpendSummary | None = None  # the simulated spend counters, when the policy reads any
    duplicate_ids: int = 0  # replayed lines whose id an earlier line has
    duplicate_examples: list[str] = field(default_factory=list)  # their file:line
    unmatched_outcomes: int = 0  # outcome ids no replayed line has
    unmatched_examples: list[str] = field(default_factory=list)

    @property
    def top_baseline(self) -> Baseline:
        return self.baselines[-1]

    @property
    def savings_usd(self) -> float:
        return self.top_baseline.cost_usd - self.cost_usd

    @property
    def savings_pct(self) -> float | None:
        top = self.top_baseline.cost_usd
        return 100.0 * self.savings_usd / top if top > 0 else None

    def _line_json(self, line: TierLine | RuleLine) -> dict[str, Any]:
        """What a tier's and a rule's lines of the report both say: traffic, cost, score."""
        out: dict[str, Any] = {"count": line.count, "share": line.share, "cost_usd": line.cost_usd}
        if self.outcomes_given:
            out.update(scored=line.scored, mean_score=line.mean_score)
        return out

    def to_json(self) -> dict[str, Any]:
        q = self.quality
        out: dict[str, Any] = {
            "policy": self.policy,
            "revision": self.revision,
            "traffic": self.files,
            "requests": self.requests,
            "replayed": self.replayed,
            "skipped": {
                "total": self.skipped_total,
                "reasons": self.skipped,
                "examples": [
                    {"where": str(p.where), "kind": p.kind, "reason": p.reason, "detail": p.detail}
                    for p in self.skipped_examples
                ],
            },
            "shapes": self.shapes,
            "tiers": {
                t.name: {"model": t.model, **self._line_json(t)} for t in self.tiers
            },
            "rules": {
                r.name: {"tier": r.tier, "where": r.where, **self._line_json(r)}
                for r in self.rules
            },
            "cost_usd": self.cost_usd,
            "baselines": {
                b.tier: {"cost_usd": b.cost_usd, "savings_usd": b.cost_usd - self.cost_usd}
                | ({"score": b.score} if b.score is not None else {})
                for b in self.baselines
            },
            "savings": {
                "against": self.top_baseline.tier,
                "usd": self.savings_usd,
                "pct": self.savings_pct,
            },
            "tokens": {
                "input": {
                    k: self.input_sources[k] for k in INPUT_SOURCES if self.input_sources.get(k)
                },
                "output": {
                    k: self.output_sources[k] for k in OUTPUT_SOURCES if self.output_sources.get(k)
                },
                "sources": {
                    k: SOURCE_TEXT[k]
                    for k in (*INPUT_SOURCES, *OUTPUT_SOURCES)
                    if self.input_sources.get(k) or self.output_sources.get(k)
                },
            },
            "classifier_unasked": self.classifier_unasked,
            "group_by": self.group_by,
            "group_missing": self.group_missing,
            "duplicate_ids": {"count": self.duplicate_ids, "examples": self.duplicate_examples},
        }
        if self.outcomes_given:
            out["quality"] = quality_json(q, self.coverage, self.unscored)
            out["quality"]["unmatched_outcomes"] = {
                "count": self.unmatched_outcomes,
                "examples": self.unmatched_examples,
            }
        if self.served is not None and self.served.records:
            out["served"] = served_json(self.served)
        if self.spend is not None:
            out["spend"] = self.spend.to_json()
        return out


def _iv(i: Interval | None) -> list[float] | None:
    return i.to_list() if i is not None else None


def quality_json(
    q: Quality | None, coverage: float | None, unscored: dict[str, int]
) -> dict[str, Any]:
    out: dict[str, Any] = {"coverage": coverage, "no_outcome": unscored}
    if q is None:
        out["score"] = None
        return out
    out.update(
        {
            "n": q.n,
            "groups": q.groups,
            "score": q.score,
            "score_ci95": q.ci95.to_list(),
            "top_tier": q.top,
            "cheapest_tier": q.cheap,
            "pct_of_top": q.pct_of_top,
            "ci95": _iv(q.pct_of_top_ci95),
            "pgr": q.pgr,
            "pgr_ci95": _iv(q.pgr_ci95),
            "tier_scores": q.tier_scores,
            "shares": q.shares,
            "random_same_share": {"score": q.random_same_share, "ci95": q.random_ci95.to_list()},
            "lift_over_random": {
                "value": q.lift,
                "ci95": q.lift_ci95.to_list(),
                "p_value": q.p_value,
            },
            "bootstrap": {"resamples": q.bootstrap, "seed": q.seed},
        }
    )
    return out


def served_json(s: ServedTally) -> dict[str, Any]:
    return {
        "records": s.records,
        "escalation_rate": s.escalated / s.records,
        "escalation_rate_by_trigger": {
            t: n / s.records for t, n in sorted(s.trigger_requests.items())
        },
        "attempts_per_request": sum(k * v for k, v in s.attempts.items()) / s.records,
        "outcomes": dict(sorted(s.outcomes.items())),
        "latency_ms": {
            tier: {f"p{q}": round(percentile(h, q), 1) for q in (50, 95, 99)}
            | {"n": int(sum(n for n, _ in h.values()))}
            for tier, h in sorted(s.latency.items())
        },
        "decisions": {
            "compared": s.compared,
            "agree": s.agree,
            "first_disagreements": [
                {"id": i, "recorded": f"{t0} by {r0}", "replayed": f"{t1} by {r1}"}
                for i, t0, r0, t1, r1 in s.disagreements
            ],
        },
    }


def _mean(total: float, n: int) -> float | None:
    return total / n if n else None


def build(
    policy: Policy,
    tally: Tally,
    index: int,
    files: Sequence[str],
    universe: Sequence[str],
    outcomes_given: bool,
    quality: Quality | None,
    classifier_unasked: int,
    group_by: str | None,
    spend: SpendSummary | None = None,
) -> Report:
    """The report of policy number ``index`` of the tally (0 for replay; 0 or 1 for a diff)."""
    pt = tally.policies[index]
    n = tally.replayed
    tier_names = [t.name for t in policy.tiers]
    at = {name: universe.index(name) for name in tier_names}
    tier_scored = [0] * len(tier_names)
    tier_sum = [0.0] * len(tier_names)
    rule_scored = [0] * len(policy.rules)
    rule_sum = [0.0] * len(policy.rules)
    for row in tally.rows:
        ti, ri = row[1][index], row[2][index]
        s = row[3][at[tier_names[ti]]]
        if s is not None:
            tier_scored[ti] += 1
            tier_sum[ti] += s
            rule_scored[ri] += 1
            rule_sum[ri] += s
    tiers = [
        TierLine(
            t.name,
            t.model,
            pt.tier_count[i],
            pt.tier_count[i] / n if n else 0.0,
            pt.tier_cost[i],
            tier_scored[i],
            _mean(tier_sum[i], tier_scored[i]),
        )
        for i, t in enumerate(policy.tiers)
    ]
    rules = [
        RuleLine(
            r.name,
            r.tier,
            f"{r.file}:{r.line}",
            pt.rule_count[r.index],
            pt.rule_count[r.index] / n if n else 0.0,
            pt.rule_cost[r.index],
            rule_scored[r.index],
            _mean(rule_sum[r.index], rule_scored[r.index]),
        )
        for r in policy.rules
    ]
    scores = quality.tier_scores if quality is not None else {}
    baselines = [
        Baseline(t.name, pt.baseline_cost[i], scores.get(t.name))
        for i, t in enumerate(policy.tiers)
    ]
    covered = sum(tier_scored)
    unscored = {
        t.name: t.count - t.scored for t in tiers if outcomes_given and t.count - t.scored > 0
    }
    return Report(
        policy=policy.name,
        revision=policy.revision,
        files=list(files),
        requests=tally.lines,
        replayed=n,
        skipped=dict(sorted(tally.skipped.items())),
        skipped_total=sum(tally.skipped.values()),
        skipped_examples=list(tally.examples),
        shapes=dict(sorted(tally.shapes.items())),
        tiers=tiers,
        rules=rules,
        cost_usd=sum(pt.tier_cost),
        baselines=baselines,
        input_sources=dict(tally.input_sources),
        output_sources=dict(tally.output_sources),
        classifier_unasked=classifier_unasked,
        group_by=group_by,
        group_missing=tally.group_missing,
        outcomes_given=outcomes_given,
        with_outcomes=len(tally.rows),
        coverage=covered / n if outcomes_given and n else None,
        unscored=unscored,
        quality=quality,
        served=tally.served if tally.served.records else None,
        spend=spend,
        duplicate_ids=tally.duplicates,
        duplicate_examples=list(tally.duplicate_examples),
        unmatched_outcomes=tally.unmatched_outcomes,
        unmatched_examples=list(tally.unmatched_examples),
    )


@dataclass
class ImpactReport:
    """`policyroute diff OLD NEW --traffic`: what changes, measured on real traffic."""

    old: Report
    new: Report
    moves: list[tuple[str, str, str, str, int]]  # old tier, new tier, old rule, new rule, n
    difference: Difference | None

    @property
    def changed(self) -> int:
        return sum(m[4] for m in self.moves)

    def to_json(self) -> dict[str, Any]:
        d = self.difference
        return {
            "old": {"policy": self.old.policy, "revision": self.old.revision},
            "new": {"policy": self.new.policy, "revision": self.new.revision},
            "requests": self.new.requests,
            "replayed": self.new.replayed,
            "skipped": self.new.skipped_total,
            "changed": self.changed,
            "moves": [
                {"from": a, "to": b, "old_rule": r0, "new_rule": r1, "count": n}
                for a, b, r0, r1, n in self.moves
            ],
            "cost_usd": {
                "old": self.old.cost_usd,
                "new": self.new.cost_usd,
                "difference": self.new.cost_usd - self.old.cost_usd,
            },
            "quality": None
            if d is None
            else {
                "n": d.n,
                "groups": d.groups,
                "old": d.old,
                "new": d.new,
                "difference": d.diff,
                "ci95": d.ci95.to_list(),
                "bootstrap": {"resamples": d.bootstrap, "seed": d.seed},
            },
        }
