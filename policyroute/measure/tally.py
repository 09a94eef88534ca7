"""The running totals of a replay: small, mergeable, and flat in the number of requests.

Each worker tallies its chunk of lines; the parent merges the tallies. Only requests that
have outcomes keep a row (their group, decisions and scores), for the statistics; everything
else is a counter. Latencies go into log-spaced buckets (1% wide), so percentiles need no
list of every value.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from .traffic import Unreplayable

EXAMPLES_KEPT = 20
LATENCY_STEP = math.log(1.01)
ZERO_BUCKET = -(10**9)


@dataclass
class PolicyTally:
    """Where one policy sends the replayed requests, and what that costs."""

    tier_count: list[int]
    tier_cost: list[float]
    rule_count: list[int]
    rule_cost: list[float]
    baseline_cost: list[float]  # every replayed request on tier i

    @classmethod
    def empty(cls, tiers: int, rules: int) -> PolicyTally:
        return cls([0] * tiers, [0.0] * tiers, [0] * rules, [0.0] * rules, [0.0] * tiers)

    def merge(self, other: PolicyTally) -> None:
        for counts, more in (
            (self.tier_count, other.tier_count),
            (self.rule_count, other.rule_count),
        ):
            for i, n in enumerate(more):
                counts[i] += n
        for costs, extra in (
            (self.tier_cost, other.tier_cost),
            (self.rule_cost, other.rule_cost),
            (self.baseline_cost, other.baseline_cost),
        ):
            for i, x in enumerate(extra):
                costs[i] += x


MAX_DISAGREEMENTS = 5


@dataclass
class ServedTally:
    """What decision records say happened when the traffic was served."""

    records: int = 0
    escalated: int = 0
    trigger_requests: Counter[str] = field(default_factory=Counter)
    attempts: Counter[int] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    # tier -> bucket -> [count, sum of the values]: the sum makes a bucket's value its mean,
    # exact whenever a bucket holds one distinct value.
    latency: dict[str, dict[int, list[float]]] = field(default_factory=dict)
    # Replayed decisions (the first policy) against the recorded ones: how many agree, and
    # the first few that do not (id, recorded tier/rule, replayed tier/rule).
    compared: int = 0
    agree: int = 0
    disagreements: list[tuple[str, str, str, str, str]] = field(default_factory=list)

    def compare(self, rid: str, recorded: tuple[str, str], replayed: tuple[str, str]) -> None:
        self.compared += 1
        if recorded == replayed:
            self.agree += 1
        elif len(self.disagreements) < MAX_DISAGREEMENTS:
            self.disagreements.append((rid, *recorded, *replayed))

    def add(
        self, attempts: int, triggers: tuple[str, ...], outcome: str, tier: str, ms: float | None
    ) -> None:
        self.records += 1
        self.attempts[attempts] += 1
        self.outcomes[outcome] += 1
        if attempts > 1:
            self.escalated += 1
        for t in set(triggers):
            self.trigger_requests[t] += 1
        if ms is not None:
            bucket = ZERO_BUCKET if ms <= 0 else math.floor(math.log(ms) / LATENCY_STEP)
            cell = self.latency.setdefault(tier, {}).setdefault(bucket, [0, 0.0])
            cell[0] += 1
            cell[1] += ms

    def merge(self, other: ServedTally) -> None:
        self.records += other.records
        self.escalated += other.escalated
        self.trigger_requests.update(other.trigger_requests)
        self.attempts.update(other.attempts)
        self.outcomes.update(other.outcomes)
        self.compared += other.compared
        self.agree += other.agree
        room = MAX_DISAGREEMENTS - len(self.disagreements)
        self.disagreements.extend(other.disagreements[: max(room, 0)])
        for tier, hist in other.latency.items():
            mine = self.latency.setdefault(tier, {})
            for bucket, (n, total) in hist.items():
                cell = mine.setdefault(bucket, [0, 0.0])
                cell[0] += n
                cell[1] += total


def percentile(hist: dict[int, list[float]], q: float) -> float:
    """The q-th percentile (0-100, nearest rank) of bucketed latencies: the mean of the bucket
    holding that rank, so within 1% of the exact value."""
    total = sum(n for n, _ in hist.values())
    rank = max(1, math.ceil(q / 100 * total))
    seen = 0.0
    for bucket in sorted(hist):
        n, values = hist[bucket]
        seen += n
        if seen >= rank:
            return values / n
    return 0.0


# A scored request: (group key, tier index per policy, rule index per policy,
# score per tier of the tier universe or None).
Row = tuple[str, tuple[int, ...], tuple[int, ...], tuple[float | None, ...]]


@dataclass
class Tally:
    policies: list[PolicyTally]
    lines: int = 0
    replayed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_kind: Counter[str] = field(default_factory=Counter)
    examples: list[Unreplayable] = field(default_factory=list)
    shapes: Counter[str] = field(default_factory=Counter)
    input_sources: Counter[str] = field(default_factory=Counter)
    output_sources: Counter[str] = field(default_factory=Counter)
    group_missing: int = 0
    rows: list[Row] = field(default_factory=list)
    # Diff only: (old tier, new tier, old rule, new rule) -> requests, for requests that move.
    moves: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    served: ServedTally = field(default_factory=ServedTally)
    # A chunk's replayed ids as (line, id), and the ids of them that have outcomes: handed
    # over and dropped by the parent as it merges (`replay_ids.Ids`), which flags duplicates
    # and counts the outcomes whose id no line has.
    ids: list[tuple[int, str]] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)
    ids_file: str = ""
    # Set once by the parent at the end (see `Ids.finish`).
    duplicates: int = 0
    duplicate_examples: list[str] = field(default_factory=list)
    unmatched_outcomes: int = 0
    unmatched_examples: list[str] = field(default_factory=list)

    def skip(self, problem: Unreplayable) -> None:
        self.skipped[problem.reason] += 1
        self.skipped_kind[problem.kind] += 1
        if len(self.examples) < EXAMPLES_KEPT:
            self.examples.append(problem)

    def merge(self, other: Tally) -> None:
        for mine, theirs in zip(self.policies, other.policies, strict=True):
            mine.merge(theirs)
        self.lines += other.lines
        self.replayed += other.replayed
        self.skipped.update(other.skipped)
        self.skipped_kind.update(other.skipped_kind)
        if len(self.examples) < EXAMPLES_KEPT or other.examples:
            both = sorted(
                [*self.examples, *other.examples], key=lambda p: (p.where.file, p.where.line)
            )
            self.examples = both[:EXAMPLES_KEPT]
        self.shapes.update(other.shapes)
        self.input_sources.update(other.input_sources)
        self.output_sources.update(other.output_sources)
        self.group_missing += other.group_missing
        self.rows.extend(other.rows)
        self.moves.update(other.moves)
        self.served.merge(other.served)
