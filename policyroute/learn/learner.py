"""The whole of `learn`: split, mine, select, emit, evaluate on the held-out part, write.

The held-out part is used once, after the policy is fixed, to write the report in its header;
nothing the learner chooses depends on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..policy import Policy
from .data import Example, Loaded, Split, split_by_group
from .emit import EmitError, LearnedRule, describe, pick_example, render, verify
from .evaluate import HeldOut, heldout_report, temporary_path, write_lines
from .features import generate
from .select import Config, select
from .tiers import TierFile, tier_lines


class LearnError(Exception):
    """Learning cannot go on (no usable examples, nothing to hold out...): exit 1."""


@dataclass(frozen=True, slots=True)
class Settings:
    cheap: str
    strong: str
    budget: float  # share in [0, 1]
    holdout: float = 0.3
    group_by: str | None = None
    max_rules: int = 8
    seed: int = 0
    resamples: int = 100
    bootstrap: int = 1000  # resamples for the held-out report's intervals


@dataclass(slots=True)
class Learned:
    text: str
    policy: Policy
    rules: list[LearnedRule]
    split: Split
    train_strong_share: float
    heldout: HeldOut | None
    notes: list[str] = field(default_factory=list)


def min_support(n_train: int) -> int:
    """At least 1% of the training requests, and never fewer than 10."""
    return max(10, math.ceil(0.01 * n_train))


def learn(
    loaded: Loaded,
    tiers: TierFile,
    settings: Settings,
    out: Path,
    *,
    traffic: Sequence[str],
    outcomes: Sequence[str],
    heldout_out: Path | None = None,
    command: str = "",
    name: str | None = None,
) -> Learned:
    """Learn a policy from `loaded` (read from `traffic` and `outcomes`) and return its text,
    checked and tested; `out` is where it will be written (imports are relative to it).

    The held-out requests' TRAFFIC lines go to `heldout_out` (a temporary file if None) and
    replay's report on them becomes the header.
    """
    import numpy as np

    s = settings
    if not loaded.examples:
        raise LearnError(
            f"no request has an outcome on both {s.cheap} and {s.strong} "
            f"({loaded.requests} requests read, {loaded.no_outcome} without both outcomes)"
        )
    split = split_by_group(loaded.examples, s.holdout, s.seed)
    train = list(split.train)
    n = len(train)
    gain = np.array([ex.gain(s.cheap, s.strong) for ex in train], dtype=np.float64)
    support = min_support(n)
    exclude = frozenset({s.group_by, f"metadata.{s.group_by}"} if s.group_by else set())
    candidates = generate(train, min_support=support, min_groups=3, exclude=exclude)
    config = Config(
        budget=s.budget,
        min_support=support,
        max_rules=s.max_rules,
        resamples=s.resamples,
        seed=s.seed,
    )
    selection = select(candidates, gain, [ex.group for ex in train], config)
    if not selection.items:
        raise LearnError(
            f"no condition sends requests to {s.strong} with a steady gain within a "
            f"{s.budget:.0%} budget (support >= {support} requests in >= 3 groups, chosen by "
            f">= 20% of {s.resamples} resampled learners): the best policy found is "
            f"`default -> {s.cheap}`; try a larger budget or more data"
        )
    rules = describe(selection, candidates.items, candidates.masks, train, gain, tiers.names)
    default_example = pick_example(train, ~selection.strong, gain, want_gain=False)
    lines = tier_lines(tiers, [s.cheap, s.strong], out)
    policy_name = name or out.stem

    def text_with(header: Sequence[str]) -> str:
        return render(
            header=header,
            policy_name=policy_name,
            tier_lines=lines,
            rules=rules,
            cheap=s.cheap,
            strong=s.strong,
            n_train=n,
            resamples=s.resamples,
            default_example=default_example,
        )

    base = out.resolve().parent
    _, policy = verify(text_with(["# (report pending)"]), out.name, base)
    decided = [policy.decide(ex.request).tier == s.strong for ex in train]
    train_share = sum(decided) / n
    if decided != [bool(x) for x in selection.strong]:
        raise EmitError("the emitted rules do not decide the training requests as selected")
    heldout = None
    report_lines: list[str] = []
    if split.heldout:
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
        replay_command = " ".join(
            [
                "policyroute replay",
                str(out),
                shown,
                *(f"--outcomes {o}" for o in outcomes),
                *([f"--group-by {s.group_by}"] if s.group_by else []),
                f"--seed {s.seed}",
            ]
        )
        report_lines = heldout.lines(_groups(split.heldout), replay_command)
        if heldout_out is None:
            report_lines.insert(
                2, "#   (HELDOUT.jsonl: the held-out lines; --write-heldout FILE writes them)"
            )
    header = header_lines(
        loaded,
        split,
        s,
        train_share,
        report_lines,
        support,
        command,
        len(candidates.items),
        selection.z,
        selection.notes,
    )
    text, policy = verify(text_with(header), out.name, base)
    return Learned(text, policy, rules, split, train_share, heldout, list(selection.notes))


def _groups(examples: Sequence[Example]) -> int:
    return len({ex.group for ex in examples})


def header_lines(
    loaded: Loaded,
    split: Split,
    s: Settings,
    train_share: float,
    report_lines: list[str],
    support: int,
    command: str,
    candidates: int,
    z: float,
    notes: Sequence[str] = (),
) -> list[str]:
    grouping = f"grouped by {s.group_by}" if s.group_by else "each request its own group"
    out = [
        "# Learned by `policyroute learn` from outcomes; a reviewed policy like any other:",
        "# edit it, test it, and replay it before and after (`policyroute replay`).",
    ]
    if command:
        out.append(f"#   {command}")
    out += [
        f"# {loaded.requests} requests read; {len(loaded.examples)} have outcomes on both "
        f"{s.cheap} and {s.strong} ({grouping}).",
        f"# Training: {len(split.train)} requests in {_groups(split.train)} groups. "
        f"{candidates} candidate conditions matched >= {support} requests in >= 3 groups. A "
        f"condition must gain with its lower bound (mean - {z:.2f} standard errors, "
        "the Benjamini-Hochberg bar at 5% over the candidates) above zero; conditions are "
        f"taken in order of how often learners on {s.resamples} bootstrap resamples of the groups chose them "
        f"(at least 20%). Budget {s.budget:.0%} to {s.strong}; used {train_share:.1%} "
        "on training.",
    ]
    out += [f"# Note: {note}." for note in notes]
    if not split.heldout:
        out.append(
            "# Held-out: none (--holdout 0): no figure here says how it does on new requests."
        )
    out += report_lines
    return out
