"""A replay report as one CSV table, for spreadsheets: a row per tier, rule, baseline and
quality figure, in the columns below. Empty cells are figures that do not apply."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from .report import Report

if TYPE_CHECKING:  # stats imports numpy
    from .stats import Interval

COLUMNS = (
    "section",
    "name",
    "tier",
    "count",
    "share",
    "cost_usd",
    "scored",
    "score",
    "ci95_low",
    "ci95_high",
    "p_value",
)


def _f(x: float | None, digits: int = 6) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def _row(
    section: str,
    name: str,
    *,
    tier: str | None = None,
    count: int | None = None,
    share: float | None = None,
    cost_usd: float | None = None,
    scored: int | None = None,
    score: float | None = None,
    ci95_low: float | None = None,
    ci95_high: float | None = None,
    p_value: float | None = None,
) -> list[str | int]:
    """One line in COLUMNS order: figures printed to 6 places, anything not given empty."""
    counts = (tier or "", "" if count is None else count)
    figures = (_f(share), _f(cost_usd), "" if scored is None else scored, _f(score))
    return [section, name, *counts, *figures, _f(ci95_low), _f(ci95_high), _f(p_value)]


def render(report: Report) -> str:
    r = report
    rows = [
        _row("summary", "requests", count=r.requests),
        _row("summary", "replayed", count=r.replayed),
        _row("summary", "skipped", count=r.skipped_total),
        *(_row("skipped", reason, count=n) for reason, n in r.skipped.items()),
    ]
    # A tier line is its own tier; a rule line names the tier it routes to.
    lines = [("tier", t, t.name) for t in r.tiers] + [("rule", u, u.tier) for u in r.rules]
    for section, line, tier in lines:
        rows.append(
            _row(
                section,
                line.name,
                tier=tier,
                count=line.count,
                share=line.share,
                cost_usd=line.cost_usd,
                scored=line.scored if r.outcomes_given else None,
                score=line.mean_score,
            )
        )
    q = r.quality
    rows.append(
        _row(
            "policy",
            r.policy or "",
            count=r.replayed,
            cost_usd=r.cost_usd,
            scored=q.n if q else None,
            score=q.score if q else None,
            ci95_low=q.ci95.low if q else None,
            ci95_high=q.ci95.high if q else None,
        )
    )
    for b in r.baselines:
        rows.append(
            _row(
                "baseline",
                f"every request on {b.tier}",
                tier=b.tier,
                count=r.replayed,
                cost_usd=b.cost_usd,
                score=b.score,
            )
        )
    if q is not None:
        figures: list[tuple[str, str | None, float | None, Interval | None, float | None]] = [
            ("pct_of_top", q.top, q.pct_of_top, q.pct_of_top_ci95, None),
            ("pgr", None, q.pgr, q.pgr_ci95, None),
            ("random_same_share", None, q.random_same_share, q.random_ci95, None),
            ("lift_over_random", None, q.lift, q.lift_ci95, q.p_value),
        ]
        for figure, top, value, ci, p in figures:
            if value is None or ci is None:
                continue  # a figure that does not apply to these outcomes
            rows.append(
                _row(
                    "quality",
                    figure,
                    tier=top,
                    scored=q.n,
                    score=value,
                    ci95_low=ci.low,
                    ci95_high=ci.high,
                    p_value=p,
                )
            )
    if r.coverage is not None:
        rows.append(_row("quality", "coverage", share=r.coverage))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    w.writerows(rows)
    return buf.getvalue()
