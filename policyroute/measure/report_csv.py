"""A replay report as one CSV table, for spreadsheets: a row per tier, rule, baseline and
quality figure, in the columns below. Empty cells are figures that do not apply."""

from __future__ import annotations

import csv
import io

from .report import Report

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


def render(report: Report) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    r = report
    w.writerow(["summary", "requests", "", r.requests, "", "", "", "", "", "", ""])
    w.writerow(["summary", "replayed", "", r.replayed, "", "", "", "", "", "", ""])
    w.writerow(["summary", "skipped", "", r.skipped_total, "", "", "", "", "", "", ""])
    for reason, n in r.skipped.items():
        w.writerow(["skipped", reason, "", n, "", "", "", "", "", "", ""])
    for t in r.tiers:
        scored = t.scored if r.outcomes_given else ""
        w.writerow(
            [
                "tier",
                t.name,
                t.name,
                t.count,
                _f(t.share),
                _f(t.cost_usd),
                scored,
                _f(t.mean_score),
                "",
                "",
                "",
            ]
        )
    for rule in r.rules:
        scored = rule.scored if r.outcomes_given else ""
        w.writerow(
            [
                "rule",
                rule.name,
                rule.tier,
                rule.count,
                _f(rule.share),
                _f(rule.cost_usd),
                scored,
                _f(rule.mean_score),
                "",
                "",
                "",
            ]
        )
    q = r.quality
    policy_ci = (q.ci95.low, q.ci95.high) if q is not None else (None, None)
    w.writerow(
        [
            "policy",
            r.policy or "",
            "",
            r.replayed,
            "",
            _f(r.cost_usd),
            q.n if q else "",
            _f(q.score if q else None),
            _f(policy_ci[0]),
            _f(policy_ci[1]),
            "",
        ]
    )
    for b in r.baselines:
        w.writerow(
            [
                "baseline",
                f"every request on {b.tier}",
                b.tier,
                r.replayed,
                "",
                _f(b.cost_usd),
                "",
                _f(b.score),
                "",
                "",
                "",
            ]
        )
    if q is not None:
        if q.pct_of_top is not None and q.pct_of_top_ci95 is not None:
            w.writerow(
                [
                    "quality",
                    "pct_of_top",
                    q.top,
                    "",
                    "",
                    "",
                    q.n,
                    _f(q.pct_of_top),
                    _f(q.pct_of_top_ci95.low),
                    _f(q.pct_of_top_ci95.high),
                    "",
                ]
            )
        if q.pgr is not None and q.pgr_ci95 is not None:
            w.writerow(
                [
                    "quality",
                    "pgr",
                    "",
                    "",
                    "",
                    "",
                    q.n,
                    _f(q.pgr),
                    _f(q.pgr_ci95.low),
                    _f(q.pgr_ci95.high),
                    "",
                ]
            )
        w.writerow(
            [
                "quality",
                "random_same_share",
                "",
                "",
                "",
                "",
                q.n,
                _f(q.random_same_share),
                _f(q.random_ci95.low),
                _f(q.random_ci95.high),
                "",
            ]
        )
        w.writerow(
            [
                "quality",
                "lift_over_random",
                "",
                "",
                "",
                "",
                q.n,
                _f(q.lift),
                _f(q.lift_ci95.low),
                _f(q.lift_ci95.high),
                _f(q.p_value),
            ]
        )
    if r.coverage is not None:
        w.writerow(["quality", "coverage", "", "", _f(r.coverage), "", "", "", "", "", ""])
    return buf.getvalue()
