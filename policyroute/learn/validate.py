"""Only rules that hold up: inner cross-validation by group, and bootstrap resamples.

The training part's groups are dealt into `folds` folds. For each fold, a condition is
*eligible* when a learner without that fold would consider it: on the other folds it covers
the support floor and its one-sided 95% lower bound on excess per strong call (gain beyond
the mean gain per call of those folds, `select.py`) is above zero. Its out-of-fold excess is
then what it buys on the left-out fold, which that learner never saw, beyond what the same
calls buy at the mean gain per call of the fold's other requests. A condition is *validated* when

- it is eligible on at least half of the folds;
- out of fold, it beats random routing (excess above zero) on at least two thirds of the
  eligible folds where it holds for any request; and
- pooled over every fold (a conjunction: every fold whose learner grew it), its out-of-fold
  excess per call stays above zero on 95% of
  bootstrap resamples of the training groups (the one-sided 95% lower bound), and its
  bootstrap z statistic clears the Benjamini-Hochberg bar within its family (`family_z`:
  single structural conditions, their conjunctions, phrases; 5% shared 2:1:1), with every
  condition of the family counted, tested or not.

The multiplicity bar is the one that keeps noise out, so it is applied once, to the pooled
figure, and not again on every fold: requiring it on folds of four fifths of the data as
well cost the real conditions most of their power (GSM8K's `length > 290`) and bought no
protection the pooled bar does not give.

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

from .select import (
    Data,
    excess,
    family_alpha,
    family_z,
    group_index,
    group_weights,
    lower_bound,
    stats,
)

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True, slots=True)
class Config:
    min_support: float
    folds: int = 5
    resamples: int = 200
    alpha: float = 0.05
    z: float | None = None  # the learners' bar; None: Benjamini-Hochberg over the candidates
    fold_z: float | None = None  # the bar for eligibility on a fold; None: the learners' bar
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
    z: np.ndarray  # (k,) each condition's bar on the whole training part (its family's)

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


def student_to_normal(t: float, dof: int) -> float:
    """The normal deviate with (about) the tail probability of Student's t at `dof` degrees
    of freedom (Wallace's transform, on the conservative side: within 0.1 of the exact value
    for t up to 10 and slightly below it), so no statistics library is needed."""
    import math

    v = float(dof)
    z = math.sqrt(v * math.log1p(t * t / v)) * (8.0 * v + 1.0) / (8.0 * v + 3.0)
    return math.copysign(z, t)


def _against_rest(
    masks: np.ndarray, gain: np.ndarray, cost: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per condition (and per column of `gain` and `cost`, one per bootstrap resample): the
    gain of its requests beyond what the same calls buy at the mean gain per call of the
    other requests, and its calls."""
    import numpy as np

    g = masks @ gain
    c = masks @ cost
    rest_g = gain.sum(axis=0) - g
    rest_c = cost.sum(axis=0) - c
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(rest_c > 0, rest_g / np.maximum(rest_c, 1e-12), 0.0)
    out: tuple[np.ndarray, np.ndarray] = (g - c * rate, c)
    return out


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
    data: Data,
    groups: Sequence[str],
    config: Config,
    available: np.ndarray | None = None,
    family: np.ndarray | None = None,
) -> Validation:
    """`available` (k, folds): whether the condition exists for that fold's learner (a
    conjunction grown without the fold); every condition by default. `family` (k,): which
    family each condition is tested in (`family_z`): one family by default."""
    import numpy as np

    k, n = data.masks.shape
    fam = np.zeros(k, dtype=np.intp) if family is None else family

    def bar(weight: np.ndarray) -> np.ndarray:
        if config.z is not None:
            return np.full(k, config.z)
        return family_z(data, weight, config.alpha, fam)

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
    z_all = bar(np.ones(n))
    for f in range(folds):
        inside = (fold != f).astype(np.float64)
        z = bar(inside) if config.fold_z is None else np.full(k, config.fold_z)
        e = excess(data.gain, data.cost, inside)  # against the learning folds' own mean
        sums = stats(data.masks, e, data.cost, inside)
        _, lcb = lower_bound(sums, z)
        ok = (sums[:, 0] >= config.min_support * inside.sum() / max(n, 1)) & (lcb > 0)
        ok &= available[:, f]
        out = 1.0 - inside
        # Out of fold, a condition beats random routing on the fold when its requests gain
        # more per call than the fold's other requests: the fold's own level (not the
        # learning folds', whose difference in difficulty would shift every broad
        # condition), without the condition's own requests (which would raise the very bar
        # a narrow strong gain is measured against).
        count = data.masks @ out
        gained, spent = _against_rest(data.masks, data.gain * out, data.cost * out)
        holds = ok & (count > 0)
        eligible += ok
        tried += holds
        wins += holds & (gained > 0)
    # The pooled figure: out-of-fold sums on every bootstrap resample of the groups, each
    # against the rest of that resample's fold, over *every* fold whose learner has the
    # condition (a conjunction: grown without that fold), not only the folds it was eligible
    # on: those are the folds whose complement flattered it, and pooling only them passed
    # pure noise (tests/learn: pure noise). Only conditions eligible somewhere are computed:
    # the others are never validated.
    some = np.flatnonzero(tried > 0)
    for f in range(folds):
        out = (fold == f).astype(np.float64)
        rows = some[available[some, f]]
        if rows.size:
            cols_g = (weights * (out * data.gain)[None, :]).T.astype(np.float64)
            cols_c = (weights * (out * data.cost)[None, :]).T.astype(np.float64)
            gained, spent = _against_rest(data.masks[rows], cols_g, cols_c)
            pooled_e[rows] += gained
            pooled_c[rows] += spent
    with np.errstate(divide="ignore", invalid="ignore"):
        per_call = np.where(pooled_c > 0, pooled_e / pooled_c, -1e30)
    bound = np.quantile(per_call, 0.05, axis=1) if config.resamples else np.full(k, -1e30)
    holds_share = (per_call > 0).mean(axis=1) if config.resamples else np.zeros(k)
    half = -(-folds // 2)
    # A condition's pooled out-of-fold excess has mean zero when it gains nothing, but the
    # folds it counts on are picked by how it did on the others, so the pooled figure is not
    # an independent test: the bar is Benjamini-Hochberg within each family with m the whole
    # family (an untested condition has p = 1), and the folds' verdicts filter afterwards.
    tested = tried > 0
    p_value = np.ones(k)
    finite = per_call > -1e29
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(finite.all(axis=1), per_call.mean(axis=1), -np.inf)
        sd = per_call.std(axis=1)
        zstat = np.where(sd > 0, mean / sd, np.where(mean > 0, 50.0, -50.0))
    from statistics import NormalDist

    normal = NormalDist()
    member, _ = group_index(groups)
    for j in np.flatnonzero(tested):
        # The bootstrap z is a t statistic: on the few groups a narrow condition covers, its
        # standard error is itself a guess, and read as normal it passed pure noise (seven
        # requests whose gains happened to agree). Its normal equivalent, on the groups
        # covered less one degree of freedom, is what is compared with the bar.
        dof = max(len(np.unique(member[data.masks[j] > 0])) - 1, 1)
        z_j = student_to_normal(float(np.clip(zstat[j], -50.0, 50.0)), dof)
        p_value[j] = 1.0 - normal.cdf(z_j)
    passed = np.zeros(k, dtype=bool)
    for f, share in family_alpha(config.alpha, fam.tolist()).items():
        # Benjamini-Hochberg within each family, at its share of alpha (as `family_z`).
        # Every condition of the family counts in m, tested or not: an untested one has p = 1,
        # and leaving it out would let the loose eligibility bar pick the hypotheses.
        mine = tested & (fam == f)
        m = int((fam == f).sum())
        if not mine.any():
            continue
        order = np.flatnonzero(mine)[np.argsort(p_value[mine], kind="stable")]
        level = share * np.arange(1, order.size + 1) / m
        ok_rank = np.flatnonzero(p_value[order] <= level)
        if ok_rank.size:
            passed[order[: ok_rank[-1] + 1]] = True
    validated = passed & (bound > 0) & (eligible >= half) & (3 * wins >= 2 * tried)
    return Validation(validated, eligible, wins, tried, bound, holds_share, folds, z_all)
