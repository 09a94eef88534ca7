"""Only rules that hold up: inner cross-validation by group, and bootstrap resamples.

The training part's groups are dealt into `folds` folds. For each fold, a condition is
*eligible* when a learner without that fold would consider it: on the other folds it covers
the support floor and its lower bound on excess per strong call (gain beyond the mean gain
per call of those folds, `select.py`) is above zero. Its out-of-fold excess is then what it
buys on the left-out fold, which that learner never saw. A condition is *validated* when

- it is eligible on at least half of the folds;
- out of fold, it beats random routing (excess above zero) on at least two thirds of the
  eligible folds where it holds for any request; and
- pooled over those folds, its out-of-fold excess per call stays above zero on 95% of
  bootstrap resamples of the training groups (the one-sided 95% lower bound), and its
  bootstrap z statistic clears the Benjamini-Hochberg bar at 5% over every condition tested.

A word that happens to sit where the strong tier won on this training part looks good on the
folds that contain those requests and fails on the others; a category where the strong tier
truly wins more than average gains everywhere. Judging each condition (not the learner's
pick among near-equals) keeps a steady broad condition from losing to a lucky narrow one
that a fold's learner happened to prefer. The final choice (`learner.policy_for`) is the
greedy learner's, on the whole training part, among validated conditions only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .select import Data, excess, group_weights, lower_bound, simultaneous_z, stats

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True, slots=True)
class Config:
    min_support: float
    folds: int = 5
    resamples: int = 200
    alpha: float = 0.05
    z: float | None = None  # the learners' bar; None: Benjamini-Hochberg over the candidates
    seed: int = 0


@dataclass(slots=True)
class Validation:
    validated: np.ndarray  # (k,) bool
    eligible: np.ndarray  # (k,) folds on which it was eligible
    wins: np.ndarray  # (k,) of those (holding for a request), folds where it beat random
    tried: np.ndarray  # (k,) eligible folds where it holds for a request
    bound: np.ndarray  # (k,) pooled out-of-fold excess per call, 5th percentile
    holds: np.ndarray  # (k,) share of resamples with pooled out-of-fold excess above zero
    folds: int
    z: float

    def why(self, j: int) -> str:
        """Why condition j was or was not validated."""
        half = -(-self.folds // 2)
        if self.eligible[j] < half:
            return f"eligible on {int(self.eligible[j])} of {self.folds} folds only"
        if self.tried[j] == 0:
            return "it holds for no request of the folds it was eligible for"
        if 3 * self.wins[j] < 2 * self.tried[j]:
            return f"beat random out of fold on {int(self.wins[j])} of {int(self.tried[j])} folds"
        if not self.validated[j]:
            return "pooled out of fold, below the bar"
        return (
            f"beat random out of fold on {int(self.wins[j])} of {int(self.tried[j])} folds, "
            f"pooled in {self.holds[j]:.0%} of bootstrap resamples"
        )


def fold_of(groups: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """Each example's fold: groups in seeded-hash order, dealt round-robin, so the folds
    have as many groups as can be and a group is never cut."""
    import numpy as np

    names = sorted(
        set(groups),
        key=lambda g: hashlib.sha256(f"fold{seed}\0{g}".encode("utf-8", "surrogatepass")).digest(),
    )
    where = {g: i % folds for i, g in enumerate(names)}
    return np.array([where[g] for g in groups], dtype=np.intp)


def validate(
    data: Data, groups: Sequence[str], config: Config, available: np.ndarray | None = None
) -> Validation:
    """`available` (k, folds): whether the condition exists for that fold's learner (a
    conjunction grown without the fold); every condition by default."""
    import numpy as np

    k, n = data.masks.shape
    fold = fold_of(groups, config.folds, config.seed)
    folds = int(fold.max()) + 1 if n else 0
    if available is None:
        available = np.ones((k, folds), dtype=bool)
    weights = group_weights(groups, config.resamples, config.seed).astype(np.float32)
    eligible = np.zeros(k)
    wins = np.zeros(k)
    tried = np.zeros(k)
    pooled_e = np.zeros((k, config.resamples))
    pooled_c = np.zeros((k, config.resamples))
    z_all = config.z if config.z is not None else simultaneous_z(data, np.ones(n), config.alpha)
    for f in range(folds):
        inside = (fold != f).astype(np.float64)
        z = config.z if config.z is not None else simultaneous_z(data, inside, config.alpha)
        e = excess(data.gain, data.cost, inside)  # against the learning folds' own mean
        sums = stats(data.masks, e, data.cost, inside)
        _, lcb = lower_bound(sums, z)
        ok = (sums[:, 0] >= config.min_support * inside.sum() / max(n, 1)) & (lcb > 0)
        ok &= available[:, f]
        out = 1.0 - inside
        oof = stats(data.masks, e, data.cost, out)
        holds = ok & (oof[:, 0] > 0)
        eligible += ok
        tried += holds
        wins += holds & (oof[:, 2] > 0)
        # The same out-of-fold sums on every bootstrap resample of the groups, for the
        # pooled bound; only eligible conditions count on this fold.
        cols_e = (weights * (out * e)[None, :]).T
        cols_c = (weights * (out * data.cost)[None, :]).T
        rows = np.flatnonzero(ok)
        if rows.size:
            block = data.masks[rows]
            pooled_e[rows] += block @ cols_e
            pooled_c[rows] += block @ cols_c
    with np.errstate(divide="ignore", invalid="ignore"):
        per_call = np.where(pooled_c > 0, pooled_e / pooled_c, -1e30)
    bound = np.quantile(per_call, 0.05, axis=1) if config.resamples else np.full(k, -1e30)
    holds_share = (per_call > 0).mean(axis=1) if config.resamples else np.zeros(k)
    half = -(-folds // 2)
    # Every condition eligible on some fold is tested: the pooled out-of-fold excess of a
    # condition that gains nothing has mean zero, whatever the folds it was eligible on, but
    # only if the conditions tested are not picked by how they did (a condition eligible on
    # every fold is one that was lucky everywhere). The folds' verdicts filter afterwards.
    # Many are tested at once, so the pooled excess must clear the Benjamini-Hochberg bar over
    # all of them (its z from the bootstrap distribution), not just its own 95% bound: on
    # pure noise a few of a hundred would clear that by chance.
    tested = tried > 0
    p_value = np.ones(k)
    finite = per_call > -1e29
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(finite.all(axis=1), per_call.mean(axis=1), -np.inf)
        sd = per_call.std(axis=1)
        zstat = np.where(sd > 0, mean / sd, np.where(mean > 0, 50.0, -50.0))
    from statistics import NormalDist

    normal = NormalDist()
    for j in np.flatnonzero(tested):
        p_value[j] = 1.0 - normal.cdf(float(np.clip(zstat[j], -50.0, 50.0)))
    m = int(tested.sum())
    passed = np.zeros(k, dtype=bool)
    if m:
        order = np.flatnonzero(tested)[np.argsort(p_value[tested], kind="stable")]
        bar = config.alpha * np.arange(1, m + 1) / m
        ok_rank = np.flatnonzero(p_value[order] <= bar)
        if ok_rank.size:
            passed[order[: ok_rank[-1] + 1]] = True
    validated = passed & (bound > 0) & (eligible >= half) & (3 * wins >= 2 * tried)
    return Validation(validated, eligible, wins, tried, bound, holds_share, folds, z_all)
