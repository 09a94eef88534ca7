"""What the learner learns from: examples with both tiers' scores, split by group.

An example is one request that has an outcome on the cheap tier and on the strong tier.
Requests of one group (a question's two turns, an MMLU subject, a conversation) always land
on the same side of the split, so the held-out part says something about requests the
learner has never seen, not about a second turn of a question it learned from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..decision import Tier
from ..request import Request

if TYPE_CHECKING:
    from ..measure.outcomes import Outcomes
    from ..measure.traffic import TrafficItem


@dataclass(frozen=True, slots=True)
class Example:
    id: str
    group: str
    request: Request
    scores: Mapping[str, float]  # tier name -> score

    def gain(self, cheap: str, strong: str) -> float:
        """What sending this request to the strong tier instead of the cheap one buys."""
        return self.scores[strong] - self.scores[cheap]


@dataclass(frozen=True, slots=True)
class Split:
    train: tuple[Example, ...]
    heldout: tuple[Example, ...]
    heldout_groups: frozenset[str]


def _rank(seed: int, group: str) -> str:
    # A hash, not random.shuffle: the split of a group never depends on which other groups
    # are present, so adding data does not reshuffle what was held out.
    return hashlib.sha256(f"{seed}\0{group}".encode("utf-8", "surrogatepass")).hexdigest()


def split_by_group(examples: Sequence[Example], holdout: float, seed: int) -> Split:
    """Hold out whole groups, in seeded-hash order, until `holdout` of the requests are out.

    The last group taken may overshoot the share by its own size; a group is never cut.
    """
    if not 0.0 <= holdout < 1.0:
        raise ValueError(f"holdout must be in [0, 1), got {holdout}")
    sizes: dict[str, int] = {}
    for ex in examples:
        sizes[ex.group] = sizes.get(ex.group, 0) + 1
    target = holdout * len(examples)
    out: set[str] = set()
    taken = 0
    for group in sorted(sizes, key=lambda g: _rank(seed, g)):
        if taken >= target or holdout == 0.0:
            break
        out.add(group)
        taken += sizes[group]
    if len(out) == len(sizes) and sizes:
        # Keep at least one group to learn from, however small the data.
        out.discard(max(out, key=lambda g: _rank(seed, g)))
    train = tuple(ex for ex in examples if ex.group not in out)
    heldout = tuple(ex for ex in examples if ex.group in out)
    return Split(train, heldout, frozenset(out))


@dataclass(slots=True)
class Loaded:
    examples: list[Example]
    requests: int  # replayable requests read
    problems: list[str]  # unreadable lines and outcome problems, `file:line: why`
    no_outcome: int  # requests without an outcome on both tiers
    items: dict[str, TrafficItem]  # what replay reads, for the held-out report
    outcomes: Outcomes


def load_examples(
    traffic: Sequence[str],
    outcomes: Sequence[str],
    tiers: Sequence[Tier],
    cheap: str,
    strong: str,
    group_by: str | None,
) -> Loaded:
    """Examples from TRAFFIC and OUTCOMES files, read by replay's own readers (so learn and
    replay agree on ids, groups and tier names). Raises the readers' file errors."""
    from ..measure.outcomes import read_outcomes
    from ..measure.traffic import TrafficItem as Item
    from ..measure.traffic import read_traffic

    scores = read_outcomes(outcomes, tiers)
    problems = [str(p) for p in scores.problems]
    examples: list[Example] = []
    items: dict[str, TrafficItem] = {}
    missing = 0
    for item in read_traffic(traffic, group_by):
        if not isinstance(item, Item):
            problems.append(str(item))
            continue
        if item.id in items:
            problems.append(
                f"{item.where}: a second request with id {item.id!r}; the first is kept"
            )
            continue
        items[item.id] = item
        row = scores.by_id.get(item.id, {})
        if cheap not in row or strong not in row:
            missing += 1
            continue
        group = item.group if item.group is not None else f"\0{item.id}"
        examples.append(Example(item.id, group, item.request, {t: o.score for t, o in row.items()}))
    return Loaded(examples, len(items), problems, missing, items, scores)
