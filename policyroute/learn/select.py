"""Choosing rules: quality bought per strong call *beyond random routing*, within a budget.

The learned policy sends a request to the strong tier when any chosen condition holds. Each
strong call costs one unit of budget (a conversation costs its turns) and buys the strong
tier's gain on that request. Random routing at the same share buys the average gain per
call, so what a rule adds over random is its *excess*: gain minus the mean gain per call on
the data it was learned from. A rule whose requests gain less than average per call loses
to random routing even when the strong tier wins on them, which is what sank rules that
merely gained "more than zero" on data where the strong tier wins almost everywhere.

`greedy` takes, step by step, the condition whose newly covered requests have the best lower
confidence bound on excess per call (mean minus z standard errors), preferring among those
statistically tied with it the broadest (the most excess in total), as long as it covers the
support floor and fits the budget. It is the learner every other stage reruns: on bootstrap
resamples of the groups (how often a condition is chosen) and on the inner folds
(`validate.py`: whether a condition chosen without a fold gains on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True, slots=True)
class Data:
    """What the learner sees of the training part: each condition's mask, each example's
    gain (strong minus cheap score, summed over a conversation's turns) and cost (strong
    calls it takes: 1, or a conversation's turns)."""

    masks: np.ndarray  # (k, n) float32
    gain: np.ndarray  # (n,)
    cost: np.ndarray  # (n,)


def excess(gain: np.ndarray, cost: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Each example's gain beyond what random routing buys with its cost, on `weight`'s data."""
    per_call = float((weight * gain).sum() / max(float((weight * cost).sum()), 1e-12))
    result: np.ndarray = gain - per_call * cost
    return result


def stats(masks: np.ndarray, e: np.ndarray, cost: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Per condition: examples, cost, excess and cost-weighted squared excess per call."""
    import numpy as np

    out: np.ndarray = (masks @ stat_columns(e, cost, weight, masks.dtype)).astype(np.float64)
    return out


def stat_columns(
    e: np.ndarray, cost: np.ndarray, weight: np.ndarray, dtype: np.dtype[Any]
) -> np.ndarray:
    """The (n, 4) columns `stats` sums under each mask: examples, cost, excess and
    cost-weighted squared excess per call (the learner, the tree and the greedy steps share
    them, so a condition's figures are the same wherever they are computed)."""
    import numpy as np

    safe = np.maximum(cost, 1e-12)
    columns = np.stack([weight, weight * cost, weight * e, weight * e * e / safe], axis=1)
    out: np.ndarray = columns.astype(dtype)
    return out


def lower_bound(sums: np.ndarray, z: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean excess per call and its lower bound, from `stats` rows."""
    import numpy as np

    count, spend, total, square = sums[:, 0], sums[:, 1], sums[:, 2], sums[:, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / spend
        var = np.maximum(square / spend - mean * mean, 0.0)
        lcb = mean - z * np.sqrt(var / np.maximum(count - 1.0, 1.0))
    return np.nan_to_num(mean, nan=-np.inf), np.nan_to_num(lcb, nan=-np.inf)


def greedy(
    data: Data,
    weight: np.ndarray,
    *,
    budget: float,
    min_support: float,
    max_rules: int,
    z: float | np.ndarray,
    allowed: np.ndarray | None = None,
    rank_z: float | np.ndarray | None = None,
) -> list[int]:
    """Indices of the conditions chosen, in order; `budget` is a share of the weighted cost.

    A condition qualifies with its lower bound at `z` above zero; the order compares lower
    bounds at `rank_z` (default `z`): a stricter one puts steady broad conditions first. Both
    may be one bar per condition (`family_z`)."""
    import numpy as np

    masks = data.masks
    k, _ = masks.shape
    e = excess(data.gain, data.cost, weight)
    sums = stats(masks, e, data.cost, weight)
    limit = budget * float((weight * data.cost).sum()) + 1e-9
    usable = np.ones(k, dtype=bool) if allowed is None else allowed.copy()
    covered = np.zeros(masks.shape[1], dtype=bool)
    columns = stat_columns(e, data.cost, weight, masks.dtype)
    chosen: list[int] = []
    spent = 0.0
    while usable.any() and len(chosen) < max_rules:
        mean, lcb = lower_bound(sums, z)
        ok = usable & (sums[:, 0] >= min_support) & (spent + sums[:, 1] <= limit) & (lcb > 0)
        if rank_z is not None:
            _, lcb = lower_bound(sums, rank_z)
        if not ok.any():
            break
        # Among the conditions whose excess per call cannot be told from the best one's
        # (their mean reaches its lower bound), the broadest: the most excess in total.
        floor = np.where(ok, lcb, -np.inf).max()
        near = ok & (mean >= floor)
        with np.errstate(invalid="ignore"):
            best = int(np.argmax(np.where(near, sums[:, 1] * lcb, -np.inf)))
        chosen.append(best)
        usable[best] = False
        newly = np.flatnonzero((masks[best] > 0) & ~covered)
        covered[newly] = True
        sums -= (masks[:, newly] @ columns[newly]).astype(np.float64)
        spent += float((weight[newly] * data.cost[newly]).sum())
    return chosen


def simultaneous_z(data: Data, weight: np.ndarray, alpha: float) -> float:
    """The z a condition's lower bound must clear, set for the many candidates at once: the
    Benjamini-Hochberg threshold at false discovery rate `alpha` over every candidate's
    one-sided z statistic of excess per call. Where many conditions truly beat random it
    comes down towards 2; where none does it stays at the Bonferroni bar."""
    from statistics import NormalDist

    import numpy as np

    normal = NormalDist()
    k = data.masks.shape[0]
    if k == 0:
        return normal.inv_cdf(1.0 - alpha)
    sums = stats(data.masks, excess(data.gain, data.cost, weight), data.cost, weight)
    mean, _ = lower_bound(sums, 0.0)
    count, spend, square = sums[:, 0], sums[:, 1], sums[:, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.maximum(square / spend - mean * mean, 0.0)
        stat = mean / np.sqrt(var / np.maximum(count - 1.0, 1.0))
    stat = np.nan_to_num(stat, nan=0.0, posinf=50.0, neginf=-50.0)
    p = np.sort(np.array([1.0 - normal.cdf(float(t)) for t in stat]))
    passing = np.flatnonzero(p <= alpha * np.arange(1, k + 1) / k)
    level = alpha * (passing[-1] + 1) / k if passing.size else alpha / k
    return normal.inv_cdf(1.0 - level)


# How the false discovery rate is shared by the families of `learner.family_of`: the single
# structural conditions (a few dozen, the most readable) get half, their conjunctions and the
# phrases a quarter each. Fixed before looking at any outcome, as a split must be.
FAMILY_WEIGHT = {0: 2.0, 1: 1.0, 2: 1.0}


def family_alpha(alpha: float, families: Sequence[int]) -> dict[int, float]:
    """Each present family's share of `alpha`."""
    present = sorted(set(int(f) for f in families))
    total = sum(FAMILY_WEIGHT.get(f, 1.0) for f in present)
    return {f: alpha * FAMILY_WEIGHT.get(f, 1.0) / total for f in present}


def family_z(data: Data, weight: np.ndarray, alpha: float, family: np.ndarray) -> np.ndarray:
    """Each condition's bar: the Benjamini-Hochberg threshold within its family, at `alpha`
    split over the families by `FAMILY_WEIGHT` (a Bonferroni split, so the families together
    keep the rate). A family of a few dozen structural conditions is then not judged as one of
    thousands of phrases: a category that truly gains is not drowned by the phrases' count."""
    import numpy as np

    out = np.zeros(data.masks.shape[0])
    for f, share in family_alpha(alpha, family.tolist()).items():
        rows = family == f
        sub = Data(data.masks[rows], data.gain, data.cost)
        out[rows] = simultaneous_z(sub, weight, share)
    return out


def group_index(groups: Sequence[str]) -> tuple[np.ndarray, int]:
    import numpy as np

    names = sorted(set(groups))
    index = {g: i for i, g in enumerate(names)}
    return np.array([index[g] for g in groups], dtype=np.intp), len(names)


def group_weights(groups: Sequence[str], resamples: int, seed: int) -> np.ndarray:
    """Bootstrap weights over groups: each row is one resample, each entry how many times that
    example's group was drawn. Resampling groups keeps a question's turns together."""
    import numpy as np

    member, count = group_index(groups)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(count, np.full(count, 1.0 / count), size=resamples)
    out: np.ndarray = draws[:, member].astype(np.float64)
    return out
