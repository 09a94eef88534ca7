"""Quality statistics of a replay: means, single-tier baselines, random routing at the same
share, and a bootstrap over groups for every interval.

Definitions (n requests in the evaluated set E, each sent by the policy to tier c(i), with
score s_t(i) on tier t):

- E: the requests with an outcome on the tier the policy chose, on the cheapest scored tier
  and on the top scored tier, so every figure below compares the same requests.
- score = mean_i s_c(i)(i); base_t = mean_i s_t(i) (every request of E on tier t).
- pct_of_top = 100 * score / base_top; pgr = (score - base_cheap) / (base_top - base_cheap),
  the share of the gap between cheapest-only and top-only that the policy recovers (RouteLLM's
  "performance gap recovered").
- random_same_share = sum_t (n_t / n) * base_t: the expected score of sending the same number
  of requests to each tier, chosen at random.
- lift_over_random = score - random_same_share.

Intervals resample whole groups (a question's turns, a conversation; a request is its own
group when no --group-by is given) with replacement, recompute every figure on each resample,
and take the 2.5th and 97.5th percentiles. The one-sided p-value of the lift is the share of
resamples where the policy does not beat random, (1 + #{lift* <= 0}) / (B + 1). A percentile
interval is widened to include its point estimate in the rare case a skewed resample
distribution leaves it out (a handful of groups).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .tally import Row

BATCH = 250  # resamples drawn at once: bounds memory at BATCH x groups weights

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float

    def to_list(self) -> list[float]:
        return [self.low, self.high]


@dataclass(frozen=True, slots=True)
class Quality:
    n: int
    groups: int
    cheap: str
    top: str
    score: float
    ci95: Interval
    tier_scores: dict[str, float]
    shares: dict[str, float]
    pct_of_top: float | None
    pct_of_top_ci95: Interval | None
    pgr: float | None
    pgr_ci95: Interval | None
    random_same_share: float
    random_ci95: Interval
    lift: float
    lift_ci95: Interval
    p_value: float
    bootstrap: int
    seed: int


@dataclass(frozen=True, slots=True)
class Difference:
    n: int
    groups: int
    old: float
    new: float
    diff: float
    ci95: Interval
    bootstrap: int
    seed: int


def _interval(samples: Array, point: float) -> Interval | None:
    finite = samples[np.isfinite(samples)]
    if not np.isfinite(point):
        return None
    if finite.size == 0:
        return Interval(point, point)
    low, high = np.percentile(finite, [2.5, 97.5])
    return Interval(float(min(low, point)), float(max(high, point)))


def _resamples(groups: int, bootstrap: int, seed: int) -> Any:
    """Weights of each group in each resample (how many times it was drawn), BATCH at a time.

    Drawing group indices and counting them is the multinomial draw, several times faster
    than numpy's multinomial sampler for thousands of groups.
    """
    rng = np.random.default_rng(seed)
    left = bootstrap
    while left > 0:
        size = min(BATCH, left)
        left -= size
        drawn = rng.integers(0, groups, size=(size, groups))
        drawn += np.arange(size)[:, None] * groups
        counts = np.bincount(drawn.ravel(), minlength=size * groups)
        yield counts.reshape(size, groups).astype(np.float64, copy=False)


def _group_index(keys: Sequence[str]) -> tuple[npt.NDArray[np.intp], int]:
    _, inverse = np.unique(np.asarray(keys, dtype=object).astype(str), return_inverse=True)
    inverse = inverse.reshape(-1)
    return inverse, int(inverse.max()) + 1 if inverse.size else 0


def quality(
    rows: Sequence[Row],
    policy: int,
    tiers: Sequence[str],
    universe: Sequence[str],
    bootstrap: int = 2000,
    seed: int = 0,
) -> Quality | None:
    """Quality figures of policy number ``policy`` (its tiers in ladder order), or None when no
    request of the evaluated set exists (no outcomes, or none on the tiers compared)."""
    at = {name: universe.index(name) for name in tiers}
    scored = [t for t in tiers if any(r[3][at[t]] is not None for r in rows)]
    if not scored:
        return None
    cheap, top = scored[0], scored[-1]
    k = len(scored)
    col = {t: j for j, t in enumerate(scored)}
    keep: list[Row] = []
    for r in rows:
        chosen = tiers[r[1][policy]]
        s = r[3]
        if (
            chosen in col
            and s[at[chosen]] is not None
            and s[at[cheap]] is not None
            and s[at[top]] is not None
        ):
            keep.append(r)
    if not keep:
        return None
    n = len(keep)
    scores = np.full((n, k), np.nan)
    chosen_col = np.empty(n, dtype=np.intp)
    for i, r in enumerate(keep):
        for t, j in col.items():
            v = r[3][at[t]]
            if v is not None:
                scores[i, j] = v
        chosen_col[i] = col[tiers[r[1][policy]]]
    inverse, g = _group_index([r[0] for r in keep])

    def per_group(weights: Array) -> Array:
        return np.bincount(inverse, weights=weights, minlength=g).astype(np.float64)

    have = ~np.isnan(scores)
    filled = np.where(have, scores, 0.0)
    n_g = per_group(np.ones(n))
    p_g = per_group(filled[np.arange(n), chosen_col])
    t_g = np.stack([per_group(filled[:, j]) for j in range(k)], axis=1)
    h_g = np.stack([per_group(have[:, j].astype(np.float64)) for j in range(k)], axis=1)
    c_g = np.stack([per_group((chosen_col == j).astype(np.float64)) for j in range(k)], axis=1)
    ci, ti = col[cheap], col[top]

    # Every per-group total side by side: one matrix product per batch of resamples.
    stacked = np.column_stack([n_g, p_g, t_g, h_g, c_g])

    def figures(w: Array) -> dict[str, Array]:
        m = w @ stacked
        total, policy_sum = m[:, 0], m[:, 1]
        tier_sum, tier_have, chosen = m[:, 2 : 2 + k], m[:, 2 + k : 2 + 2 * k], m[:, 2 + 2 * k :]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            policy_score = policy_sum / total
            base = tier_sum / tier_have
            random = np.sum(chosen / total[:, None] * base, axis=1)
            gap = base[:, ti] - base[:, ci]
            return {
                "score": policy_score,
                "base": base,
                "random": random,
                "lift": policy_score - random,
                "pct": 100.0 * policy_score / base[:, ti],
                "pgr": np.where(gap != 0, (policy_score - base[:, ci]) / gap, np.nan),
            }

    point = figures(np.ones((1, g)))
    draws: dict[str, list[Array]] = {key: [] for key in ("score", "random", "lift", "pct", "pgr")}
    for w in _resamples(g, bootstrap, seed):
        f = figures(w)
        for key, values in draws.items():
            values.append(f[key])
    sample = {key: np.concatenate(v) if v else np.empty(0) for key, v in draws.items()}

    def pt(key: str) -> float:
        return float(point[key][0])

    score = pt("score")
    pct = pt("pct") if np.isfinite(pt("pct")) else None
    pgr = pt("pgr") if np.isfinite(pt("pgr")) else None
    lifts = sample["lift"]
    p_value = float((1 + np.sum(lifts <= 0)) / (lifts.size + 1)) if lifts.size else 1.0
    shares = np.bincount(chosen_col, minlength=k) / n
    return Quality(
        n=n,
        groups=g,
        cheap=cheap,
        top=top,
        score=score,
        ci95=_interval(sample["score"], score) or Interval(score, score),
        tier_scores={t: float(point["base"][0, j]) for t, j in col.items()},
        shares={t: float(shares[j]) for t, j in col.items()},
        pct_of_top=pct,
        pct_of_top_ci95=_interval(sample["pct"], pct) if pct is not None else None,
        pgr=pgr,
        pgr_ci95=_interval(sample["pgr"], pgr) if pgr is not None else None,
        random_same_share=pt("random"),
        random_ci95=_interval(sample["random"], pt("random"))
        or Interval(pt("random"), pt("random")),
        lift=pt("lift"),
        lift_ci95=_interval(lifts, pt("lift")) or Interval(pt("lift"), pt("lift")),
        p_value=p_value,
        bootstrap=bootstrap,
        seed=seed,
    )


def difference(
    rows: Sequence[Row],
    old_tiers: Sequence[str],
    new_tiers: Sequence[str],
    universe: Sequence[str],
    bootstrap: int = 2000,
    seed: int = 0,
) -> Difference | None:
    """New policy's mean score minus the old one's, paired on the requests both can be scored
    on, with a bootstrap interval over groups. None when no request is scored under both."""
    keys: list[str] = []
    old: list[float] = []
    new: list[float] = []
    for r in rows:
        so = r[3][universe.index(old_tiers[r[1][0]])]
        sn = r[3][universe.index(new_tiers[r[1][1]])]
        if so is not None and sn is not None:
            keys.append(r[0])
            old.append(so)
            new.append(sn)
    if not keys:
        return None
    inverse, g = _group_index(keys)
    n_g = np.bincount(inverse, minlength=g).astype(np.float64)
    o_g = np.bincount(inverse, weights=np.asarray(old), minlength=g)
    w_g = np.bincount(inverse, weights=np.asarray(new), minlength=g)
    d_g = np.bincount(inverse, weights=np.asarray(new) - np.asarray(old), minlength=g)
    diffs = [(w @ d_g) / (w @ n_g) for w in _resamples(g, bootstrap, seed)]
    sample = np.concatenate(diffs) if diffs else np.empty(0)
    total = float(n_g.sum())
    point = float(d_g.sum() / total)
    old_mean = float(o_g.sum() / total)
    return Difference(
        n=len(keys),
        groups=g,
        old=old_mean,
        new=float(w_g.sum() / total),
        diff=point,
        ci95=_interval(sample, point) or Interval(point, point),
        bootstrap=bootstrap,
        seed=seed,
    )
