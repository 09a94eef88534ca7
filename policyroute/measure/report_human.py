"""A replay report as text for a terminal: tables of tiers and rules, cost, quality."""

from __future__ import annotations

from collections.abc import Sequence

from .costing import INPUT_SOURCES, OUTPUT_SOURCES, SOURCE_TEXT
from .report import ImpactReport, Report, RuleLine, TierLine, served_json

SHAPE_TEXT = {"request": "request object", "batch": "batch line", "record": "decision record"}


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _usd(x: float) -> str:
    sign = "-" if x < 0 else ""
    return f"{sign}${abs(x):,.4f}" if abs(x) < 100 else f"{sign}${abs(x):,.2f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _traffic(line: TierLine | RuleLine) -> list[str]:
    """The requests, share and cost cells of a tier's or a rule's row."""
    return [f"{line.count:,}", _pct(line.share), _usd(line.cost_usd)]


def score_text(line: TierLine | RuleLine, no_outcome: str) -> str:
    """A tier's or a rule's mean score: "-" when nothing went there, `no_outcome` when
    nothing sent there has an outcome."""
    if line.count == 0:
        return "-"
    if line.scored == 0:
        return no_outcome
    return f"{line.mean_score:.3f}"


def _num(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    out = []
    for row in (header, *rows):
        cells = [
            (c.rjust(w) if i in right else c.ljust(w))
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    return out


def _sources(counts: dict[str, int], order: Sequence[str]) -> str:
    total = sum(counts.values())
    parts = [f"{counts[k]:,} of {total:,} {SOURCE_TEXT[k]}" for k in order if counts.get(k)]
    return "; ".join(parts) if parts else "none"


def warnings(r: Report) -> list[str]:
    """Lines on what makes the figures less than they seem: repeated ids, stray outcomes."""
    out = []
    if r.duplicate_ids:
        out.append(
            f"  {r.duplicate_ids:,} requests repeat an earlier request's id (first at "
            f"{r.duplicate_examples[0]}): each is counted, and an outcome joins every copy"
        )
    if r.outcomes_given and r.unmatched_outcomes:
        shown = ", ".join(repr(i) for i in r.unmatched_examples[:3])
        out.append(
            f"  {r.unmatched_outcomes:,} outcome ids match no replayed request ({shown}"
            f"{', ...' if r.unmatched_outcomes > 3 else ''}): they are not in any figure"
        )
    return out


def render(report: Report) -> str:
    r = report
    lines = [f"replay of {r.policy or '(unnamed policy)'} (revision {r.revision})"]
    lines.append("traffic: " + ", ".join(r.files))
    shapes = ", ".join(_plural(n, SHAPE_TEXT.get(k, k)) for k, n in r.shapes.items())
    lines.append(
        f"requests {r.requests:,}, replayed {r.replayed:,}"
        + (f" ({shapes})" if shapes else "")
        + f", skipped {r.skipped_total:,}"
    )
    for reason, n in r.skipped.items():
        lines.append(f"  skipped {n:,}: {reason}")
    if r.classifier_unasked:
        lines.append(
            f"  a classifier was consulted {r.classifier_unasked:,} times and not asked: replay "
            "makes no API calls, so those conditions saw a failed classifier (no label, "
            "confidence 0)"
        )
    if r.group_by and r.group_missing:
        lines.append(
            f"  {r.group_missing:,} requests have no '{r.group_by}' field: each is its own group"
        )
    lines.extend(warnings(r))
    lines.append("")

    scored_col = r.outcomes_given
    header = ["tier", "model", "requests", "share", "cost"] + (["mean score"] if scored_col else [])
    rows = []
    for t in r.tiers:
        row = [t.name, t.model, *_traffic(t)]
        if scored_col:
            part = f" ({t.scored:,} of {t.count:,} scored)" if 0 < t.scored < t.count else ""
            row.append(score_text(t, "no outcome for this tier") + part)
        rows.append(row)
    lines += _table(header, rows, {2, 3, 4})
    lines.append("")

    header = ["rule", "tier", "requests", "share", "cost"] + (["mean score"] if scored_col else [])
    header.append("where")
    rows = []
    for rule in r.rules:
        row = [rule.name, rule.tier, *_traffic(rule)]
        if scored_col:
            row.append(score_text(rule, "no outcome"))
        row.append(rule.where)
        rows.append(row)
    lines += _table(header, rows, {2, 3, 4})
    lines.append("")

    lines.append(f"cost of the policy: {_usd(r.cost_usd)}")
    rows = []
    for b in r.baselines:
        saved = b.cost_usd - r.cost_usd
        pct = f" ({100 * saved / b.cost_usd:.1f}%)" if b.cost_usd > 0 else ""
        what = (
            f"policy saves {_usd(saved)}{pct}"
            if saved >= 0
            else f"policy costs {_usd(-saved)} more"
        )
        rows.append([f"  every request on {b.tier}", _usd(b.cost_usd), what])
    lines += _table(["  baseline", "cost", ""], rows, {1})
    top = r.top_baseline
    lines.append(
        f"savings against the most expensive tier ({top.tier}): {_usd(r.savings_usd)}"
        + (f" ({r.savings_pct:.1f}%)" if r.savings_pct is not None else "")
    )
    lines.append("tokens, per request and tier priced:")
    lines.append("  input:  " + _sources(r.input_sources, INPUT_SOURCES))
    lines.append("  output: " + _sources(r.output_sources, OUTPUT_SOURCES))

    if r.outcomes_given:
        lines.append("")
        lines += _quality(r)
    if r.served is not None:
        lines.append("")
        lines += _served(r)
    if r.spend is not None:
        lines.append("")
        lines += _spend(r)
    return "\n".join(lines) + "\n"


def _quality(r: Report) -> list[str]:
    q = r.quality
    lines = [
        f"quality (coverage {_pct(r.coverage)}: requests with an outcome for the tier they were sent to)"
    ]
    for tier, n in r.unscored.items():
        lines.append(
            f"  no outcome for this tier: {tier} ({n:,} requests sent there are not scored)"
        )
    if q is None:
        lines.append("  no request has outcomes on the tiers compared: nothing to score")
        return lines
    grouping = f"--group-by {r.group_by}" if r.group_by else "each request its own group"
    lines.append(
        f"  evaluated on {q.n:,} requests in {q.groups:,} groups ({grouping}); "
        f"95% intervals from {q.bootstrap:,} bootstrap resamples of groups, seed {q.seed}"
    )

    def iv(i: object, fmt: str = "{:.3f}") -> str:
        from .stats import Interval

        if not isinstance(i, Interval):
            return ""
        return "[" + fmt.format(i.low) + ", " + fmt.format(i.high) + "]"

    rows = [["  policy", f"{q.score:.3f}", iv(q.ci95), ""]]
    for tier, score in q.tier_scores.items():
        rows.append([f"  every request on {tier}", f"{score:.3f}", "", ""])
    if q.pct_of_top is not None:
        rows.append(
            [f"  % of top ({q.top})", f"{q.pct_of_top:.1f}%", iv(q.pct_of_top_ci95, "{:.1f}%"), ""]
        )
    if q.pgr is not None:
        rows.append(
            [f"  gap recovered (PGR, {q.cheap} to {q.top})", f"{q.pgr:.3f}", iv(q.pgr_ci95), ""]
        )
    shares = ", ".join(f"{t} {_pct(s)}" for t, s in q.shares.items())
    rows.append(
        [f"  random, same share ({shares})", f"{q.random_same_share:.3f}", iv(q.random_ci95), ""]
    )
    rows.append(
        [
            "  lift over random",
            f"{q.lift:+.3f}",
            iv(q.lift_ci95, "{:+.3f}"),
            f"p = {q.p_value:.4f} (one-sided)",
        ]
    )
    lines += _table(["", "score", "95% interval", ""], rows, {1})
    return lines


def _spend(r: Report) -> list[str]:
    sp = r.spend
    assert sp is not None
    lines = [
        f"spend rules (simulated counters, in traffic order: {', '.join(sp.attributes)})",
        f"  spend changed the tier of {_plural(sp.changed, 'request')} of {r.replayed:,}",
    ]
    if sp.untimed:
        lines.append(
            f"  {_plural(sp.untimed, 'request')} without a 'time': spend missing, not counted"
        )
    if sp.unsimulated:
        lines.append(
            f"  {', '.join(sp.unsimulated)}: not simulated (no credential or shadow calls in "
            "traffic), read as missing"
        )
    rows = [
        [
            f"  {s.scope}",
            f"{s.owners:,}",
            _usd(s.simulated_usd),
            _usd(s.recorded_usd) if s.recorded_usd is not None else "-",
            _usd(s.top_day_simulated_usd),
            _usd(s.top_day_recorded_usd) if s.top_day_recorded_usd is not None else "-",
        ]
        for s in sp.scopes
    ]
    if rows:
        header = ["  scope", "owners", "simulated", "recorded", "top day sim.", "top day rec."]
        lines += _table(header, rows, {1, 2, 3, 4, 5})
    return lines


def _served(r: Report) -> list[str]:
    assert r.served is not None
    s = served_json(r.served)
    lines = [f"as served (from {_plural(s['records'], 'decision record')})"]
    by = ", ".join(f"{t} {_pct(v)}" for t, v in s["escalation_rate_by_trigger"].items())
    lines.append(
        f"  escalated {_pct(s['escalation_rate'])}" + (f" (by trigger: {by})" if by else "")
    )
    lines.append(f"  attempts per request {s['attempts_per_request']:.2f}")
    d = s["decisions"]
    if d["compared"]:
        lines.append(
            f"  decisions: {d['agree']:,} of {d['compared']:,} replayed agree with the recorded"
            + (" ones" if d["agree"] == d["compared"] else "; the first that do not:")
        )
        for x in d["first_disagreements"]:
            lines.append(f"    {x['id']}: recorded {x['recorded']}, replayed {x['replayed']}")
    rows = [
        [f"  {tier}", f"{v['n']:,}", f"{v['p50']:.0f}", f"{v['p95']:.0f}", f"{v['p99']:.0f}"]
        for tier, v in s["latency_ms"].items()
    ]
    if rows:
        lines += _table(["  latency ms, final tier", "n", "p50", "p95", "p99"], rows, {1, 2, 3, 4})
    return lines


def render_impact(report: ImpactReport) -> str:
    old, new = report.old, report.new
    lines = [
        f"impact of {old.policy or 'OLD'} ({old.revision}) -> {new.policy or 'NEW'} ({new.revision})",
        "traffic: " + ", ".join(new.files),
        f"requests {new.requests:,}, replayed {new.replayed:,}, skipped {new.skipped_total:,}",
        f"{report.changed:,} requests change tier ({_pct(report.changed / new.replayed if new.replayed else 0)})",
        *warnings(new),
    ]
    if report.moves:
        rows = [[f"  {a} -> {b}", f"{n:,}", f"{r0} -> {r1}"] for a, b, r0, r1, n in report.moves]
        lines += _table(["  move", "requests", "rules (old -> new)"], rows, {1})
    delta = new.cost_usd - old.cost_usd
    pct = f" ({100 * delta / old.cost_usd:+.1f}%)" if old.cost_usd else ""
    lines.append(
        f"cost: {_usd(old.cost_usd)} -> {_usd(new.cost_usd)}, difference "
        f"{'+' if delta >= 0 else '-'}{_usd(abs(delta))}{pct}"
    )
    d = report.difference
    if d is not None:
        lines.append(
            f"quality on {d.n:,} requests scored under both ({d.groups:,} groups): "
            f"{d.old:.3f} -> {d.new:.3f}, difference {d.diff:+.3f} "
            f"[{d.ci95.low:+.3f}, {d.ci95.high:+.3f}] (95%, {d.bootstrap:,} resamples, seed {d.seed})"
        )
    elif new.outcomes_given:
        lines.append("quality: no request has an outcome for the tiers both policies chose")
    return "\n".join(lines) + "\n"
