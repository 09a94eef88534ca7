"""Choosing rules: quality bought per strong call, stable under resampling, within the budget.

The policy being learned sends a request to the strong tier when any chosen condition holds,
and to the cheap tier otherwise. So choosing conditions is a knapsack: each strong call costs
one unit of budget and buys the strong tier's gain on that request. The greedy choice, at
each step, is the condition whose *newly covered* requests gain the most per call, judged by
a lower confidence bound (mean minus z standard errors, z set for all candidates at once
by the Benjamini-Hochberg rule, see `simultaneous_z`) so that a broad condition with
steady gains beats a narrow one that got lucky, and among conditions whose mean reaches the
best one's bound (statistically tied) the one with the most gain in total, so "length > 56"
never beats the keyword it is a proxy for; it must cover at least `min_support` requests and
still fit in the budget.

Greedy choice on a few hundred requests overfits (a word that happens to sit in nine prompts
where the strong tier won looks better than a whole category), so the final choice is
*bagged*: the greedy learner is rerun on bootstrap resamples of the training groups, and the
conditions are then taken in the order of how often those learners chose them, skipping any
chosen by fewer than `min_frequency` of them, any whose newly covered requests no longer
gain (lower bound above zero, on the whole training part) or lack support, and any that
would break the budget. Conditions that stand in for each other (two categories where the
strong tier wins) share the resamples' votes, so the threshold is low; the order is what
resampling buys. Every figure here comes from the training part; the held-out part is not
passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .features import Candidates, Item

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True, slots=True)
class Config:
    budget: float  # share of training requests the strong tier may take, in [0, 1]
    min_support: int
    min_groups: int = 3
    max_rules: int = 8
    resamples: int = 100
    min_frequency: float = 0.2
    z: float | None = None  # None: simultaneous over the candidates (see `simultaneous_z`)
    alpha: float = 0.05
    seed: int = 0


@dataclass(slots=True)
class Selection:
    items: list[Item]  # in the order chosen
    frequency: dict[Item, float]  # share of resamples whose learner chose the item
    strong: np.ndarray  # (n,) bool: training requests the chosen conditions send strong
    resampled_strong: np.ndarray  # (resamples, n) bool: the same, for each resampled learner
    weights: np.ndarray  # (resamples, n) the bootstrap weights (for intervals downstream)
    z: float  # the lower bound's z, simultaneous over the candidates
    notes: list[str] = field(default_factory=list)


def greedy(
    masks: np.ndarray,
    families: Sequence[tuple[str, str]],
    gain: np.ndarray,
    weight: np.ndarray,
    budget: float,
    min_support: float,
    max_rules: int,
    z: float,
    priority: np.ndarray | None = None,
) -> list[int]:
    """Indices of the conditions chosen, in order (see the module's docstring).

    Without `priority`, each step takes the best lower bound on gain per call, preferring the
    broadest of the conditions statistically tied with it; with `priority`, the highest
    priority among the conditions that still qualify (ties to the better lower bound).
    """
    import numpy as np

    k, n = masks.shape
    covered = np.zeros(n, dtype=bool)
    chosen: list[int] = []
    open_families: set[tuple[str, str]] = set()
    spent = 0.0
    usable = np.ones(k, dtype=bool)
    # Per condition: weight, weighted gain and weighted squared gain of the requests it would
    # newly cover. Kept up to date by subtracting what each choice covers, so a whole run
    # costs one pass over the matrix plus one over the columns it covers.
    columns = np.stack([weight, weight * gain, weight * gain * gain], axis=1).astype(masks.dtype)
    sums = (masks @ columns).astype(np.float64)
    in_family = {f: np.array([g == f for g in families]) for f in set(families)}
    while usable.any():
        count, total, square = sums[:, 0], sums[:, 1], sums[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = total / count
            var = np.maximum(square / count - mean * mean, 0.0)
            lcb = mean - z * np.sqrt(var / np.maximum(count - 1.0, 1.0))
        ok = usable & (count >= min_support) & (spent + count <= budget + 1e-9) & (lcb > 0)
        if len(open_families) >= max_rules:
            ok &= np.logical_or.reduce([in_family[f] for f in open_families])
        if not ok.any():
            break
        if priority is None:
            # Among the conditions whose gain per call cannot be told from the best one's
            # (their mean reaches its lower bound), the broadest: the most gain in total.
            floor = np.where(ok, lcb, -np.inf).max()
            near = ok & (mean >= floor)
            with np.errstate(invalid="ignore"):
                best = int(np.argmax(np.where(near, count * lcb, -np.inf)))
        else:
            top = np.where(ok, priority, -np.inf).max()
            best = int(np.argmax(np.where(ok & (priority >= top), lcb, -np.inf)))
        chosen.append(best)
        usable[best] = False
        open_families.add(families[best])
        newly = np.flatnonzero((masks[best] > 0) & ~covered)
        covered[newly] = True
        sums -= masks[:, newly] @ columns[newly]
        spent += float(weight[newly].sum())
    return chosen


def simultaneous_z(masks: np.ndarray, gain: np.ndarray, alpha: float) -> float:
    """The z a condition's lower bound must clear, chosen for the many candidates at once.

    With hundreds of candidate conditions one at z = 2 looks good by chance on pure noise, so
    the bar is the Benjamini-Hochberg threshold at false discovery rate `alpha` over every
    candidate's one-sided z statistic on the training part: where many conditions truly gain
    it comes down towards 2, and where none does it stays at the Bonferroni bar.
    """
    from statistics import NormalDist

    import numpy as np

    normal = NormalDist()
    k = masks.shape[0]
    count = masks @ np.ones_like(gain)
    total = masks @ gain
    square = masks @ (gain * gain)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / count
        var = np.maximum(square / count - mean * mean, 0.0)
        stat = mean / np.sqrt(var / np.maximum(count - 1.0, 1.0))
    stat = np.nan_to_num(stat, nan=0.0, posinf=50.0, neginf=-50.0)
    p = np.array(sorted(1.0 - normal.cdf(float(t)) for t in stat))
    passing = np.flatnonzero(p <= alpha * np.arange(1, k + 1) / max(k, 1))
    level = alpha * (passing[-1] + 1) / k if passing.size else alpha / max(k, 1)
    return normal.inv_cdf(1.0 - level)


def group_weights(groups: Sequence[str], resamples: int, seed: int) -> np.ndarray:
    """Bootstrap weights over groups: each row is one resample, each entry how many times that
    example's group was drawn. Resampling groups keeps a question's turns together."""
    import numpy as np

    names = sorted(set(groups))
    index = {g: i for i, g in enumerate(names)}
    member = np.array([index[g] for g in groups])
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(names), np.full(len(names), 1.0 / len(names)), size=resamples)
    return draws[:, member].astype(np.float64)


def _why_left_out(
    mask: np.ndarray, strong: np.ndarray, gain: np.ndarray, budget: float, config: Config, z: float
) -> str:
    """Why the final choice passed over a condition the resampled learners liked."""
    import numpy as np

    new = mask & ~strong
    count = int(new.sum())
    if count == 0:
        return "the rules above already take all its requests"
    if strong.sum() + count > budget + 1e-9:
        return "over the budget"
    g = gain[new]
    lcb = g.mean() - z * np.sqrt(g.var() / max(count - 1, 1))
    if count < config.min_support or lcb <= 0:
        return "too little gain left once the rules above took their requests"
    return "past --max-rules"


def select(
    candidates: Candidates, gain: np.ndarray, groups: Sequence[str], config: Config
) -> Selection:
    import numpy as np

    masks = candidates.masks
    items = candidates.items
    n = gain.shape[0]
    families = [i.family for i in items]
    budget = config.budget * n
    z = config.z if config.z is not None else simultaneous_z(masks, gain, config.alpha)
    weights = group_weights(groups, config.resamples, config.seed)
    counts = np.zeros(len(items))
    resampled = np.zeros((config.resamples, n), dtype=bool)
    for r in range(config.resamples):
        w = weights[r]
        # The budget scales with the resample's size (a resample can draw more requests).
        picked = greedy(
            masks,
            families,
            gain,
            w,
            config.budget * w.sum(),
            config.min_support,
            config.max_rules,
            z,
        )
        counts[picked] += 1
        if picked:
            resampled[r] = masks[picked].max(axis=0) > 0
    frequency = counts / max(config.resamples, 1)
    stable = [j for j in range(len(items)) if frequency[j] >= config.min_frequency]
    notes: list[str] = []
    chosen: list[int] = []
    if stable:
        sub = masks[stable]
        order = greedy(
            sub,
            [families[j] for j in stable],
            gain,
            np.ones(n),
            budget,
            config.min_support,
            config.max_rules,
            z,
            priority=frequency[stable],
        )
        chosen = [stable[j] for j in order]
    strong = masks[chosen].max(axis=0) > 0 if chosen else np.zeros(n, dtype=bool)
    left = [j for j in stable if j not in chosen]
    if left:
        left.sort(key=lambda j: -frequency[j])
        shown = ", ".join(
            f"{items[j].label()} ({frequency[j]:.0%}: "
            f"{_why_left_out(masks[j] > 0, strong, gain, budget, config, z)})"
            for j in left[:5]
        )
        more = f" and {len(left) - 5} more" if len(left) > 5 else ""
        notes.append(f"chosen by resampled learners but left out: {shown}{more}")
    return Selection(
        [items[j] for j in chosen],
        {items[j]: float(frequency[j]) for j in range(len(items)) if counts[j]},
        strong,
        resampled,
        weights,
        z,
        notes,
    )
