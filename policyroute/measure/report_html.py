"""A replay report as one self-contained HTML page: inline CSS and an inline SVG of the
cost-quality plane. It references nothing outside itself (no scripts, fonts, images or links),
so it opens offline and can be attached to a review as it is."""

from __future__ import annotations

import math
from html import escape

from .report import Report
from .report_human import _pct, _traffic, _usd, score_text

W, H = 860, 470
LEFT, RIGHT, TOP, BOTTOM = 70, 30, 20, 100


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    step = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * step:
            step *= m
            break
    first = math.ceil(lo / step) * step
    out = []
    v = first
    while v <= hi + step * 1e-9:
        out.append(round(v, 10))
        v += step
    return out


def _tick_usd(value: float, span: float) -> str:
    if value == 0:
        return "$0"
    decimals = max(0, 2 - math.floor(math.log10(span))) if span > 0 else 2
    return f"${value:,.{decimals}f}"


def _label(x: float, y: float, text: str, cls: str, left: bool) -> str:
    """A point's label, beside it; to its left when the point is near the right edge."""
    if left:
        return f'<text x="{x - 10:.1f}" y="{y:.1f}" class="{cls}" text-anchor="end">{escape(text)}</text>'
    return f'<text x="{x + 10:.1f}" y="{y:.1f}" class="{cls}">{escape(text)}</text>'


def _plane(r: Report) -> str:
    q = r.quality
    if q is None:
        return "<p class=note>No outcomes were given (or none on the tiers compared): the cost-quality plane needs scores.</p>"
    base = {b.tier: b for b in r.baselines}
    scored = [(t, base[t].cost_usd, s) for t, s in q.tier_scores.items()]
    random_cost = sum(t.share * base[t.name].cost_usd for t in r.tiers)
    xs = [c for _, c, _ in scored] + [r.cost_usd, random_cost] + [b.cost_usd for b in r.baselines]
    ys = [s for _, _, s in scored] + [
        q.ci95.low,
        q.ci95.high,
        q.random_ci95.low,
        q.random_ci95.high,
    ]
    x_hi = max(xs) * 1.08 or 1.0
    y_lo, y_hi = min(ys), max(ys)
    # Scores of 1e20 swallow a pad of 0.5: pad relative to their size then (a flat plane
    # divided by zero).
    pad = (y_hi - y_lo) * 0.12 or max(abs(y_lo), abs(y_hi)) * 0.12 or 0.5
    y_lo, y_hi = y_lo - pad, y_hi + pad
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + pw * x / x_hi

    def py(y: float) -> float:
        return TOP + ph * (1 - (y - y_lo) / (y_hi - y_lo))

    parts = [
        f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
        'aria-label="cost-quality plane">',
        f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" class="frame"/>',
    ]
    for t in _ticks(0, x_hi):
        parts.append(
            f'<line x1="{px(t):.1f}" y1="{TOP}" x2="{px(t):.1f}" y2="{TOP + ph}" class="grid"/>'
        )
        parts.append(
            f'<text x="{px(t):.1f}" y="{TOP + ph + 18}" class="tick" text-anchor="middle">{escape(_tick_usd(t, x_hi))}</text>'
        )
    for t in _ticks(y_lo, y_hi):
        parts.append(
            f'<line x1="{LEFT}" y1="{py(t):.1f}" x2="{LEFT + pw}" y2="{py(t):.1f}" class="grid"/>'
        )
        parts.append(
            f'<text x="{LEFT - 8}" y="{py(t) + 4:.1f}" class="tick" text-anchor="end">{t:g}</text>'
        )
    parts.append(
        f'<text x="{LEFT + pw / 2}" y="{TOP + ph + 40}" class="axis" text-anchor="middle">cost of the replayed traffic (USD)</text>'
    )
    parts.append(
        f'<text x="16" y="{TOP + ph / 2}" class="axis" text-anchor="middle" '
        f'transform="rotate(-90 16 {TOP + ph / 2})">mean score</text>'
    )
    cheap = next((s for s in scored if s[0] == q.cheap), None)
    top = next((s for s in scored if s[0] == q.top), None)
    if cheap and top and cheap is not top:
        parts.append(
            f'<line x1="{px(cheap[1]):.1f}" y1="{py(cheap[2]):.1f}" x2="{px(top[1]):.1f}" '
            f'y2="{py(top[2]):.1f}" class="random"/>'
        )

    def bar(x: float, lo: float, hi: float, cls: str) -> None:
        parts.append(
            f'<line x1="{px(x):.1f}" y1="{py(lo):.1f}" x2="{px(x):.1f}" y2="{py(hi):.1f}" class="{cls}"/>'
        )
        for y in (lo, hi):
            parts.append(
                f'<line x1="{px(x) - 5:.1f}" y1="{py(y):.1f}" x2="{px(x) + 5:.1f}" y2="{py(y):.1f}" class="{cls}"/>'
            )

    for name, cost, score in scored:
        parts.append(f'<circle cx="{px(cost):.1f}" cy="{py(score):.1f}" r="6" class="tier"/>')
        parts.append(
            _label(
                px(cost),
                py(score) - 9,
                f"every request on {name}",
                "label",
                px(cost) > LEFT + pw * 0.6,
            )
        )
    for b in r.baselines:
        if b.tier not in q.tier_scores:
            parts.append(
                f'<line x1="{px(b.cost_usd):.1f}" y1="{TOP + ph - 8}" x2="{px(b.cost_usd):.1f}" y2="{TOP + ph}" class="unscored"/>'
            )
            parts.append(
                f'<text x="{px(b.cost_usd):.1f}" y="{TOP + ph - 12}" class="label" text-anchor="middle">'
                f"{escape(b.tier)}: no outcome</text>"
            )
    bar(random_cost, q.random_ci95.low, q.random_ci95.high, "rbar")
    parts.append(
        f'<rect x="{px(random_cost) - 5:.1f}" y="{py(q.random_same_share) - 5:.1f}" width="10" height="10" class="rpoint"/>'
    )
    bar(r.cost_usd, q.ci95.low, q.ci95.high, "pbar")
    parts.append(f'<circle cx="{px(r.cost_usd):.1f}" cy="{py(q.score):.1f}" r="7" class="policy"/>')
    parts.append(
        _label(
            px(r.cost_usd),
            py(q.score) + 18,
            f"policy {r.policy or ''}",
            "label strong",
            px(r.cost_usd) > LEFT + pw * 0.6,
        )
    )
    # The legend sits in one row under the axis title, clear of every point and label.
    legend = [
        ("policy", "the policy, with its 95% interval"),
        ("rpoint", "random routing at the same share"),
        ("tier", "every request on one tier"),
        ("random", "random routing, cheapest to top"),
    ]
    for i, (cls, text) in enumerate(legend):
        x = LEFT + (i % 2) * 330.0
        y = TOP + ph + 68 + (i // 2) * 22
        if cls == "rpoint":
            shape = f'<rect x="{x}" y="{y - 9}" width="10" height="10" class="{cls}"/>'
        elif cls == "random":
            shape = f'<line x1="{x - 4}" y1="{y - 4}" x2="{x + 14}" y2="{y - 4}" class="{cls}"/>'
        else:
            shape = f'<circle cx="{x + 5}" cy="{y - 4}" r="5" class="{cls}"/>'
        parts.append(shape + f'<text x="{x + 20}" y="{y}" class="legend">{escape(text)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2430; margin: 2rem auto; max-width: 980px; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.1rem; margin-top: 2rem; border-bottom: 1px solid #d8dee8; padding-bottom: .3rem; }
.sub { color: #5b6678; margin-top: 0; }
table { border-collapse: collapse; margin: .6rem 0; } th, td { padding: .25rem .8rem; text-align: left; border-bottom: 1px solid #eceff4; }
th { background: #f4f6f9; font-weight: 600; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.kpis { display: flex; gap: 1rem; flex-wrap: wrap; margin: 1rem 0; }
.kpi { border: 1px solid #d8dee8; border-radius: 8px; padding: .6rem 1rem; min-width: 150px; }
.kpi b { display: block; font-size: 1.35rem; } .kpi span { color: #5b6678; font-size: .85rem; }
.note { color: #5b6678; } .warn { color: #9a3b00; }
svg text { font: 12px system-ui, sans-serif; fill: #1d2430; } svg .tick { fill: #5b6678; }
svg .axis { font-weight: 600; } svg .strong { font-weight: 700; }
.frame { fill: #fbfcfd; stroke: #c9d1dc; } .grid { stroke: #e6eaf0; }
.random { stroke: #8a94a6; stroke-width: 1.5; stroke-dasharray: 6 5; } .random-text { fill: #5b6678; }
.tier { fill: #8a94a6; } .policy { fill: #1f6feb; stroke: #fff; stroke-width: 2; }
.pbar { stroke: #1f6feb; stroke-width: 2; } .rbar { stroke: #d9822b; stroke-width: 2; } .rpoint { fill: #d9822b; }
.unscored { stroke: #9a3b00; stroke-width: 2; }
"""


def _tr(cells: list[str], numeric: set[int]) -> str:
    return (
        "<tr>"
        + "".join(
            f'<td class="n">{escape(c)}</td>' if i in numeric else f"<td>{escape(c)}</td>"
            for i, c in enumerate(cells)
        )
        + "</tr>"
    )


def _th(cells: list[str]) -> str:
    return "<tr>" + "".join(f"<th>{escape(c)}</th>" for c in cells) + "</tr>"


def render(report: Report) -> str:
    r = report
    q = r.quality
    kpis = [
        (_usd(r.cost_usd), "policy cost"),
        (
            f"{r.savings_pct:.1f}%" if r.savings_pct is not None else "-",
            f"saved against every request on {r.top_baseline.tier}",
        ),
    ]
    if q is not None:
        if q.pct_of_top is not None and q.pct_of_top_ci95 is not None:
            kpis.append(
                (
                    f"{q.pct_of_top:.1f}%",
                    f"of {q.top}'s score [{q.pct_of_top_ci95.low:.1f}, {q.pct_of_top_ci95.high:.1f}]",
                )
            )
        kpis.append(
            (
                f"{q.lift:+.3f}",
                f"lift over random [{q.lift_ci95.low:+.3f}, {q.lift_ci95.high:+.3f}], p = {q.p_value:.4f}",
            )
        )
    if r.coverage is not None:
        kpis.append((_pct(r.coverage), "coverage: requests scored"))
    body = [
        f"<h1>Replay of {escape(r.policy or '(unnamed policy)')}</h1>",
        f'<p class="sub">revision {escape(r.revision)} · traffic {escape(", ".join(r.files))} · '
        f"{r.requests:,} requests, {r.replayed:,} replayed, {r.skipped_total:,} skipped</p>",
        '<div class="kpis">'
        + "".join(
            f'<div class="kpi"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for v, k in kpis
        )
        + "</div>",
        "<h2>Cost and quality</h2>",
        _plane(r),
    ]
    if q is not None:
        grouping = f"--group-by {r.group_by}" if r.group_by else "each request its own group"
        body.append(
            f'<p class="note">Scores are means over the {q.n:,} requests with outcomes on the tier chosen and on '
            f"{escape(q.cheap)} and {escape(q.top)} ({q.groups:,} groups, {escape(grouping)}); costs are over all "
            f"{r.replayed:,} replayed requests. Intervals: 95%, {q.bootstrap:,} bootstrap resamples of groups, seed {q.seed}.</p>"
        )
    for tier, n in r.unscored.items():
        body.append(
            f'<p class="warn">No outcome for tier {escape(tier)}: {n:,} requests sent there are not scored.</p>'
        )
    body.append("<h2>Tiers</h2><table>")
    body.append(_th(["tier", "model", "requests", "share", "cost", "mean score"]))
    for t in r.tiers:
        score = score_text(t, "no outcome for this tier") if r.outcomes_given else ""
        body.append(_tr([t.name, t.model, *_traffic(t), score], {2, 3, 4}))
    body.append("</table><h2>Rules</h2><table>")
    body.append(_th(["rule", "tier", "requests", "share", "cost", "mean score", "where"]))
    for rule in r.rules:
        score = score_text(rule, "no outcome") if r.outcomes_given else ""
        body.append(_tr([rule.name, rule.tier, *_traffic(rule), score, rule.where], {2, 3, 4}))
    body.append("</table><h2>Baselines</h2><table>")
    body.append(_th(["every request on", "cost", "policy saves", "mean score"]))
    for b in r.baselines:
        saved = b.cost_usd - r.cost_usd
        body.append(
            _tr(
                [
                    b.tier,
                    _usd(b.cost_usd),
                    _usd(saved),
                    "no outcome" if b.score is None else f"{b.score:.3f}",
                ],
                {1, 2, 3},
            )
        )
    body.append("</table>")
    if q is not None:
        body.append("<h2>Quality</h2><table>")
        body.append(_th(["figure", "value", "95% interval"]))
        rows = [["policy mean score", f"{q.score:.3f}", f"[{q.ci95.low:.3f}, {q.ci95.high:.3f}]"]]
        if q.pgr is not None and q.pgr_ci95 is not None:
            rows.append(
                [
                    "gap recovered (PGR)",
                    f"{q.pgr:.3f}",
                    f"[{q.pgr_ci95.low:.3f}, {q.pgr_ci95.high:.3f}]",
                ]
            )
        rows.append(
            [
                "random, same share",
                f"{q.random_same_share:.3f}",
                f"[{q.random_ci95.low:.3f}, {q.random_ci95.high:.3f}]",
            ]
        )
        rows.append(
            [
                "lift over random",
                f"{q.lift:+.3f}",
                f"[{q.lift_ci95.low:+.3f}, {q.lift_ci95.high:+.3f}] p = {q.p_value:.4f}",
            ]
        )
        body += [_tr(row, {1}) for row in rows]
        body.append("</table>")
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>policyroute replay: {escape(r.policy or '')}</title><style>{CSS}</style></head>"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
