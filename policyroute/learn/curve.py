"""`--budgets`: held-out quality against strong share, as CSV and a self-contained HTML plot.

One point per learned policy (its held-out strong share and % of the strong tier's score,
with the interval), the two single tiers, and random routing (the straight line between
them: sending a share s of requests to the strong tier at random scores, in expectation,
cheap + s x (strong - cheap)). Every figure comes from replay's held-out reports. The page
references nothing outside itself, like replay's own HTML report.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from .evaluate import HeldOut


@dataclass(frozen=True, slots=True)
class Point:
    budget: float
    policy: str
    rules: int
    train_share: float
    heldout: HeldOut | None


COLUMNS = (
    "budget_pct",
    "policy",
    "rules",
    "train_strong_share",
    "heldout_requests",
    "heldout_strong_share",
    "score",
    "score_ci_low",
    "score_ci_high",
    "pct_of_strong",
    "pct_ci_low",
    "pct_ci_high",
    "random_score",
    "random_ci_low",
    "random_ci_high",
    "lift",
    "lift_ci_low",
    "lift_ci_high",
    "p_value",
)


def _f(x: float | None, digits: int = 6) -> str:
    return "" if x is None else f"{x:.{digits}g}"


def to_csv(points: Sequence[Point]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for p in points:
        row: list[str] = [_f(100 * p.budget), p.policy, str(p.rules), _f(p.train_share)]
        q = p.heldout.quality if p.heldout else {}
        if not p.policy:
            row[1] = "(none: no condition gained within this budget)"
        if not p.policy or p.heldout is None or q.get("pct_of_top") is None:
            row += [""] * (len(COLUMNS) - len(row))
        else:
            rnd, lift = q["random_same_share"], q["lift_over_random"]
            row += [
                str(p.heldout.report["replayed"]),
                _f(p.heldout.strong_share),
                _f(q["score"]),
                *(_f(x) for x in q["score_ci95"]),
                _f(q["pct_of_top"]),
                *(_f(x) for x in q["ci95"]),
                _f(rnd["score"]),
                *(_f(x) for x in rnd["ci95"]),
                _f(lift["value"]),
                *(_f(x) for x in lift["ci95"]),
                _f(lift["p_value"]),
            ]
        w.writerow(row)
    return buf.getvalue()


W, H = 680, 440
LEFT, RIGHT, TOP, BOTTOM = 70, 30, 40, 60


def to_html(points: Sequence[Point], cheap: str, strong: str, title: str) -> str:
    measured = [p for p in points if p.heldout and p.heldout.pct_of_top is not None]
    if not measured:
        body = "<p>No held-out figures (was --holdout 0?): nothing to plot.</p>"
        return _page(title, body)
    q0 = measured[0].heldout.quality  # type: ignore[union-attr]
    top = q0["tier_scores"][strong]
    cheap_pct = 100.0 * q0["tier_scores"][cheap] / top if cheap in q0["tier_scores"] else None
    ys: list[float] = [100.0] + ([cheap_pct] if cheap_pct is not None else [])
    for p in measured:
        ys += [float(v) for v in p.heldout.quality["ci95"]]  # type: ignore[union-attr]
    y_lo = min(ys) - 1.0
    y_hi = max(ys) + 1.0
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(share: float) -> float:
        return LEFT + pw * share

    def py(pct: float) -> float:
        return TOP + ph * (1 - (pct - y_lo) / (y_hi - y_lo))

    svg: list[str] = [f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img">']
    svg.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" class="frame"/>')
    for i in range(6):
        share = i / 5
        svg.append(f'<text x="{px(share):.1f}" y="{TOP + ph + 18}" class="tick">{share:.0%}</text>')
    # Ticks on round percentages: a step of 1, 2, 5 or 10 points, at its multiples.
    step = next((m for m in (1, 2, 5, 10) if (y_hi - y_lo) / m <= 8), 20)
    v = math.ceil(y_lo / step) * step
    while v < y_hi:
        svg.append(f'<text x="{LEFT - 8}" y="{py(v) + 4:.1f}" class="tick y">{v}%</text>')
        svg.append(
            f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{py(v):.1f}" y2="{py(v):.1f}" class="grid"/>'
        )
        v += step
    svg.append(
        f'<text x="{LEFT + pw / 2}" y="{H - 15}" class="label">share of requests sent to '
        f"{escape(strong)} (held-out)</text>"
    )
    svg.append(
        f'<text x="18" y="{TOP + ph / 2}" class="label" transform="rotate(-90 18 {TOP + ph / 2})">'
        f"% of all-{escape(strong)} score (held-out)</text>"
    )
    if cheap_pct is not None:
        svg.append(
            f'<line x1="{px(0):.1f}" y1="{py(cheap_pct):.1f}" x2="{px(1):.1f}" y2="{py(100):.1f}" '
            'class="random"><title>random routing at each share</title></line>'
        )
        svg.append(f'<circle cx="{px(0):.1f}" cy="{py(cheap_pct):.1f}" r="5" class="tier"/>')
        svg.append(
            f'<text x="{px(0) + 8:.1f}" y="{py(cheap_pct) - 8:.1f}" class="note">all-{escape(cheap)}</text>'
        )
    svg.append(f'<circle cx="{px(1):.1f}" cy="{py(100):.1f}" r="5" class="tier"/>')
    svg.append(
        f'<text x="{px(1) - 8:.1f}" y="{py(100) + 18:.1f}" class="note end">all-{escape(strong)}</text>'
    )
    line: list[str] = []
    marks: list[str] = []
    for p in sorted(measured, key=lambda p: p.heldout.strong_share):  # type: ignore[union-attr]
        h = p.heldout
        assert h is not None and h.pct_of_top is not None
        x, lo, hi = px(h.strong_share), py(h.quality["ci95"][0]), py(h.quality["ci95"][1])
        marks.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{lo:.1f}" y2="{hi:.1f}" class="ci"/>')
        tip = (
            f"{p.policy}: budget {p.budget:.0%}, {h.strong_share:.1%} to {strong}, "
            f"{h.pct_of_top:.1f}% [{h.quality['ci95'][0]:.1f}, {h.quality['ci95'][1]:.1f}]"
        )
        marks.append(
            f'<circle cx="{x:.1f}" cy="{py(h.pct_of_top):.1f}" r="5" class="learned">'
            f"<title>{escape(tip)}</title></circle>"
        )
        marks.append(
            f'<text x="{x + 8:.1f}" y="{py(h.pct_of_top) - 8:.1f}" class="note">{p.budget:.0%}</text>'
        )
        line.append(f"{x:.1f},{py(h.pct_of_top):.1f}")
    svg.append(f'<polyline points="{" ".join(line)}" class="curve"/>')
    svg += marks
    svg.append("</svg>")
    rows = "".join(
        "<tr>"
        + f"<td>{p.budget:.0%}</td><td>{escape(p.policy)}</td><td>{p.rules}</td>"
        + f"<td>{p.train_share:.1%}</td>"
        + (
            f"<td>{p.heldout.strong_share:.1%}</td><td>{p.heldout.pct_of_top:.1f}% "
            f"[{p.heldout.quality['ci95'][0]:.1f}, {p.heldout.quality['ci95'][1]:.1f}]</td>"
            f"<td>{p.heldout.quality['lift_over_random']['value']:+.3g} "
            f"(p = {p.heldout.quality['lift_over_random']['p_value']:.3g})</td>"
            if p.heldout is not None and p.heldout.pct_of_top is not None
            else "<td colspan=3>no held-out figures</td>"
            if p.policy
            else f"<td colspan=3>no policy: all to {escape(cheap)}</td>"
        )
        + "</tr>"
        for p in points
    )
    table = (
        "<table><tr><th>budget</th><th>policy</th><th>rules</th><th>strong share (training)</th>"
        "<th>strong share (held-out)</th><th>% of strong score [95% CI]</th>"
        "<th>lift over random (score)</th></tr>" + rows + "</table>"
    )
    legend = (
        "<p>Points: learned policies, with the bootstrap interval of their held-out score. "
        "Line: random routing at each share, between the single tiers. Figures from "
        "<code>policyroute replay</code> on the held-out split.</p>"
    )
    return _page(title, "".join(svg) + legend + table)


def _page(title: str, body: str) -> str:
    style = (
        "body{font:14px system-ui,sans-serif;margin:24px;color:#222}"
        "table{border-collapse:collapse;margin-top:12px}td,th{border:1px solid #ccc;padding:4px 8px}"
        ".frame{fill:none;stroke:#999}.grid{stroke:#eee}.tick{font-size:11px;text-anchor:middle}"
        ".tick.y{text-anchor:end}.label{font-size:12px;text-anchor:middle}.note{font-size:11px}"
        ".note.end{text-anchor:end}.random{stroke:#aaa;stroke-dasharray:5 4}"
        ".tier{fill:#777}.learned{fill:#1f6feb}.ci{stroke:#1f6feb;stroke-width:2}"
        ".curve{fill:none;stroke:#1f6feb;stroke-opacity:.5}"
    )
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>\n"
    )
