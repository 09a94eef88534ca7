"""Only rules that hold up: inner cross-validation by group, and bootstrap resamples.

The greedy learner (`select.greedy`) is rerun on the training part with one fold of its
groups left out, for each of `folds` folds. Every condition it chooses there is then judged
on the left-out fold, which it never saw: the excess per strong call of the requests it
newly covers there, against the mean gain per call of the folds it learned from. A condition
is *validated* when

- learners without a fold chose it in at least half of the folds;
- out of fold, it beat random routing (excess above zero) in at least two thirds of the
  folds that chose it;
- pooled over those folds, the lower end of a group bootstrap interval (one-sided 90%) of
  its out-of-fold excess per call is above zero; and
- learners on bootstrap resamples of the training groups chose it at least `min_frequency`
  of the time.

A word that happens to sit where the strong tier won on this training part is chosen on
folds that contain those requests and fails on the folds that do not; a category where the
strong tier truly wins more than average is chosen everywhere and gains everywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .select import Data, excess, greedy, group_index, group_weights, simultaneous_z

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True, slots=True)
class Config:
    min_support: float
    folds: int = 5
    resamples: int = 100
    min_frequency: float = 0.2
    max_rules: int = 12
    alpha: float = 0.05
    z: float | None = None  # the learners' bar; None: Benjamini-Hochberg over the candidates
    seed: int = 0


@dataclass(slots=True)
class Record:
    """One condition's out-of-fold record."""

    chosen_in: list[int] = field(default_factory=list)  # folds whose learner chose it
    fold_excess: list[float] = field(default_factory=list)  # per such fold, excess per call
    rows: list[np.ndarray] = field(default_factory=list)  # its newly covered out-of-fold rows
    values: list[np.ndarray] = field(default_factory=list)  # and their excess


@dataclass(slots=True)
class Validation:
    validated: np.ndarray  # (k,) bool
    frequency: np.ndarray  # (k,) share of bootstrap learners choosing each condition
    records: dict[int, Record]
    oof_bound: dict[int, float]  # pooled out-of-fold lower bound, per condition recorded
    folds: int
    z: float
    why: dict[int, str]  # why a condition that some learner chose was not validated


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


def _pooled_bound(
    rows: np.ndarray, values: np.ndarray, cost: np.ndarray, member: np.ndarray, seed: int
) -> float:
    """5th percentile of the pooled out-of-fold excess per call over group resamples."""
    import numpy as np

    g, inverse = np.unique(member[rows], return_inverse=True)
    if g.size < 2:
        return float("-inf")
    e_by = np.bincount(inverse, weights=values, minlength=g.size)
    c_by = np.bincount(inverse, weights=cost[rows], minlength=g.size)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(g.size, np.full(g.size, 1.0 / g.size), size=400).astype(float)
    per_call = (draws @ e_by) / np.maximum(draws @ c_by, 1e-12)
    return float(np.quantile(per_call, 0.05))


def validate(data: Data, groups: Sequence[str], config: Config) -> Validation:
    import numpy as np

    k, n = data.masks.shape
    fold = fold_of(groups, config.folds, config.seed)
    member, _ = group_index(groups)
    records: dict[int, Record] = {}
    folds = int(fold.max()) + 1 if n else 0
    for f in range(folds):
        inside = (fold != f).astype(np.float64)
        z = config.z if config.z is not None else simultaneous_z(data, inside, config.alpha)
        chosen = greedy(
            data,
            inside,
            budget=1.0,
            min_support=config.min_support * inside.sum() / n,
            max_rules=config.max_rules,
            z=z,
        )
        e = excess(data.gain, data.cost, inside)  # against the learning folds' own mean
        covered = fold != f  # out-of-fold rows only
        for j in chosen:
            newly = np.flatnonzero((data.masks[j] > 0) & ~covered)
            covered[newly] = True
            rec = records.setdefault(j, Record())
            rec.chosen_in.append(f)
            spend = float(data.cost[newly].sum())
            rec.fold_excess.append(float(e[newly].sum()) / spend if spend else 0.0)
            rec.rows.append(newly)
            rec.values.append(e[newly])

    z_all = config.z if config.z is not None else simultaneous_z(data, np.ones(n), config.alpha)
    weights = group_weights(groups, config.resamples, config.seed)
    counts = np.zeros(k)
    for r in range(config.resamples):
        w = weights[r]
        picked = greedy(
            data,
            w,
            budget=1.0,
            min_support=config.min_support,
            max_rules=config.max_rules,
            z=z_all,
        )
        counts[picked] += 1
    frequency = counts / max(config.resamples, 1)

    validated = np.zeros(k, dtype=bool)
    bound: dict[int, float] = {}
    why: dict[int, str] = {}
    for j, rec in records.items():
        rows = np.concatenate(rec.rows)
        values = np.concatenate(rec.values)
        bound[j] = (
            _pooled_bound(rows, values, data.cost, member, config.seed + j)
            if rows.size
            else float("-inf")
        )
        wins = sum(x > 0 for x in rec.fold_excess)
        if 2 * len(rec.chosen_in) < folds:
            why[j] = f"chosen without {len(rec.chosen_in)} of {folds} folds only"
        elif 3 * wins < 2 * len(rec.chosen_in):
            why[j] = f"beat random out of fold in {wins} of {len(rec.chosen_in)} folds only"
        elif not bound[j] > 0:
            why[j] = "its pooled out-of-fold excess per call is not above zero (90% bound)"
        elif frequency[j] < config.min_frequency:
            why[j] = f"chosen by {frequency[j]:.0%} of bootstrap learners only"
        else:
            validated[j] = True
    return Validation(validated, frequency, records, bound, folds, z_all, why)
