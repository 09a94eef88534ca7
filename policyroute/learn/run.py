"""One `learn` run over one or more budgets: the header of each file, its held-out report
(replay's figures per request, and the curve's APGR and 95% share), and cross-fitting."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .data import Example, Loaded, Split
from .evaluate import HeldOut, heldout_report, temporary_path, write_lines
from .figures import Curve, measure
from .learner import (
    Choice,
    Learned,
    Model,
    Settings,
    decide_units,
    policy_for,
    prepare,
    split_of,
    units_of,
    write_policy,
)

if TYPE_CHECKING:
    from .tiers import TierFile


@dataclass(frozen=True, slots=True)
class Target:
    budget: float
    out: Path
    command: str


def _groups(examples: Sequence[Example]) -> int:
    return len({ex.group for ex in examples})


def _judge(
    model: Model,
    choice: Choice,
    tiers: TierFile,
    s: Settings,
    out: Path,
    judged: Sequence[Example],
) -> Curve:
    """The curve of `choice`'s policy on `judged` (examples it was not learned from)."""
    _, policy = write_policy(model, choice, tiers, s, out, ["# (judging)"])
    units = units_of(judged, s)
    return measure(decide_units(policy, units, choice.rules), len(choice.rules), s.seed)


def run(
    loaded: Loaded,
    tiers: TierFile,
    s: Settings,
    targets: Sequence[Target],
    *,
    traffic: Sequence[str],
    outcomes: Sequence[str],
    heldout_out: Path | None = None,
) -> list[Learned]:
    split = split_of(loaded, s)
    model = prepare(split.train, s)
    other = prepare(split.heldout, s) if s.cross_fit and split.heldout else None
    results = []
    for t in targets:
        choice = policy_for(model, t.budget, s)
        curve = None
        cross = None
        if split.heldout:
            _, policy = write_policy(model, choice, tiers, s, t.out, ["# (report pending)"])
            units = units_of(split.heldout, s)
            curve = measure(decide_units(policy, units, choice.rules), len(choice.rules), s.seed)
        if other is not None:
            cross = _judge(other, policy_for(other, t.budget, s), tiers, s, t.out, split.train)
        heldout = None
        replay_lines: list[str] = []
        if split.heldout and not s.conversation:
            heldout, replay_lines = _replay(
                policy, loaded, split, s, t, traffic, outcomes, heldout_out
            )
        header = header_lines(loaded, split, s, model, choice, t, curve, replay_lines, cross)
        text, policy = write_policy(model, choice, tiers, s, t.out, header)
        notes = _notes(model)
        results.append(
            Learned(
                text,
                policy,
                choice.rules,
                split,
                choice.train_share,
                curve,
                heldout,
                choice.reason,
                cross,
                notes,
            )
        )
    return results


def _replay(
    policy: object,
    loaded: Loaded,
    split: Split,
    s: Settings,
    t: Target,
    traffic: Sequence[str],
    outcomes: Sequence[str],
    heldout_out: Path | None,
) -> tuple[HeldOut, list[str]]:
    from ..policy import Policy

    assert isinstance(policy, Policy)
    path = heldout_out or temporary_path()
    try:
        write_lines([loaded.items[ex.id].where for ex in split.heldout], traffic, path)
        heldout = heldout_report(
            policy,
            path,
            loaded.outcomes,
            cheap=s.cheap,
            strong=s.strong,
            group_by=s.group_by,
            seed=s.seed,
        )
    finally:
        if heldout_out is None:
            path.unlink(missing_ok=True)
    shown = str(heldout_out) if heldout_out else "HELDOUT.jsonl"
    command = " ".join(
        [
            "policyroute replay",
            str(t.out),
            shown,
            *(f"--outcomes {o}" for o in outcomes),
            *([f"--group-by {s.group_by}"] if s.group_by else []),
            f"--seed {s.seed}",
        ]
    )
    lines = heldout.lines(_groups(split.heldout), command)
    if heldout_out is None:
        lines.insert(2, "#   (HELDOUT.jsonl: the held-out lines; --write-heldout FILE writes them)")
    return heldout, lines


def _notes(model: Model) -> list[str]:
    """The conditions that came closest without holding up, and why."""
    import numpy as np

    v = model.validation
    items = model.candidates.items
    near = np.flatnonzero((v.eligible > 0) & ~v.validated)
    near = near[np.argsort(-(v.eligible[near] * 10 + v.wins[near]), kind="stable")]
    if not near.size:
        return []
    shown = "; ".join(f"{items[j].label()} ({v.why(int(j))})" for j in near[:5])
    more = f"; and {near.size - 5} more" if near.size > 5 else ""
    return [f"eligible on inner folds but not validated: {shown}{more}"]


def _bars(model: Model) -> str:
    """The families' bars on the whole training part, as the header says them."""
    from .learner import family_of

    v = model.validation
    family = family_of(model.candidates.items)
    names = {0: "single structural conditions", 1: "their conjunctions", 2: "phrases"}
    shown = [
        f"z = {float(v.z[family == f][0]):.2f} for {names[int(f)]}"
        for f in sorted(set(family.tolist()))
    ]
    return "; ".join(shown) or "no condition"


def header_lines(
    loaded: Loaded,
    split: Split,
    s: Settings,
    model: Model,
    choice: Choice,
    t: Target,
    curve: Curve | None,
    replay_lines: list[str],
    cross: Curve | None,
) -> list[str]:
    grouping = f"grouped by {s.group_by}" if s.group_by else "each request its own group"
    unit = "conversation" if s.conversation else "request"
    v = model.validation
    out = [
        "# Learned by `policyroute learn` from outcomes; a reviewed policy like any other:",
        "# edit it, test it, and replay it before and after (`policyroute replay`).",
        f"#   {t.command}",
        f"# {loaded.requests} requests read; {len(loaded.examples)} have outcomes on both "
        f"{s.cheap} and {s.strong} ({grouping}).",
    ]
    if s.conversation:
        out.append(
            "# Conversation-level routing: each conversation is decided on its first turn and "
            "all its turns go to that tier (as RouteLLM evaluates MT-Bench); a strong call is "
            "one turn."
        )
    if s.exclude:
        out.append(f"# Not used as conditions: {', '.join(sorted(s.exclude))}.")
    out.append(
        f"# Training: {len(model.units.examples)} {unit}s in {_groups(split.train)} groups. "
        f"{len(model.candidates.items)} candidate conditions ({model.atoms} single, "
        f"{len(model.candidates.items) - model.atoms} conjunctions of two or three), each on "
        f">= {model.support} {unit}s (1%, at least 5). A condition is kept when it beats random "
        f"routing per strong call out of fold: eligible (its lower "
        f"bound above zero at one-sided 95%) without a fold on half of {v.folds} group "
        f"folds, winning on two thirds of those, and its pooled out-of-fold excess above zero "
        f"on 95% of {s.resamples} bootstrap resamples of the groups, clearing the "
        f"Benjamini-Hochberg bar within its family (5% shared by the families; on the whole "
        f"training part {_bars(model)}): {int(v.validated.sum())} kept. Budget "
        f"{t.budget:.0%} to {s.strong}; used {choice.train_share:.1%} on training."
    )
    out += [f"# Note: {note}." for note in _notes(model)]
    if choice.reason:
        out.append(f"# {choice.reason}")
    if not split.heldout:
        out.append(
            "# Held-out: none (--holdout 0): no figure here says how it does on new requests."
        )
    if curve is not None:
        if replay_lines:
            out += replay_lines
        else:
            out.append(
                f"# Held-out report: {curve.units} conversations in {_groups(split.heldout)} "
                "groups never seen while learning, each decided on its first turn (replay "
                "scores turns one by one, so it does not say this):"
            )
            out.append(f"#   {curve.point_line(s.strong)}")
        out += [f"#   {line}" for line in curve.lines()]
    if cross is not None:
        out.append(
            "# Cross-fitted: the same settings learned on the held-out part and judged on the "
            "training part:"
        )
        out += [f"#   {line}" for line in [cross.point_line(s.strong), *cross.lines()]]
    return out


def learn(
    loaded: Loaded,
    tiers: TierFile,
    s: Settings,
    out: Path,
    *,
    traffic: Sequence[str],
    outcomes: Sequence[str],
    heldout_out: Path | None = None,
    command: str = "",
) -> Learned:
    """One policy at `s.budget`, written nowhere: its text, compiled policy and figures."""
    target = Target(s.budget, out, command or f"policyroute learn ... -o {out}")
    return run(
        loaded, tiers, s, [target], traffic=traffic, outcomes=outcomes, heldout_out=heldout_out
    )[0]
