"""The quality curve of a learned policy on data it never saw: APGR and the 95% share.

A learned policy's rules are ordered by gain, and dropping the last ones moves down the
curve, so one policy is a whole curve: the strong share and mean score after its first rule,
its first two, ... all of them, then (beyond its last rule) random routing of the rest up to
all-strong. Two summaries of that curve, each against random routing:

- **APGR**, the area under the curve of the gap recovered, (score - cheap) / (strong -
  cheap), over the strong share from 0 to 1 (RouteLLM's measure). Random routing is the
  straight line: 0.5.
- **The share for 95%**: the least strong share at which the curve reaches 95% of the
  all-strong score. Random routing needs (0.95 strong - cheap) / (strong - cheap).

Intervals resample the held-out groups (2,000 resamples, seeded), as replay's do. Units are
strong calls: a conversation decided on its first turn costs all of its turns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

BOOTSTRAP = 2000
TARGET = 0.95
# A gap between the tiers this small is rounding, not a gap: no PGR curve to speak of.
NO_GAP = 1e-9


@dataclass(frozen=True, slots=True)
class Unit:
    """One decision on held-out data: the rule that decided it (its index, or None for the
    default), the calls it takes, and its cheap and strong scores summed over them."""

    group: str
    rule: int | None
    cost: float
    cheap: float
    strong: float


@dataclass(frozen=True, slots=True)
class Curve:
    units: int
    share: float  # of the whole policy
    score: float  # mean per call
    random_score: float
    lift: tuple[float, float, float]  # value, 2.5%, 97.5%
    apgr: tuple[float, float, float] | None
    share95: tuple[float, float, float] | None
    random_share95: float | None

    def point_line(self, strong: str) -> str:
        v, lo, hi = self.lift
        return (
            f"{strong} share {self.share:.1%} of calls; mean score per call {self.score:.3g}; "
            f"random routing at the same share {self.random_score:.3g}; lift over random "
            f"{v:+.3g} [{lo:+.3g}, {hi:+.3g}]"
        )

    def lines(self) -> list[str]:
        out = []
        if self.apgr is not None:
            a = self.apgr
            out.append(
                f"APGR {a[0]:.3f} [{a[1]:.3f}, {a[2]:.3f}] over the curve of this policy's "
                "rule prefixes (then random routing of the rest); random routing 0.500"
            )
        if self.share95 is not None and self.random_share95 is not None:
            s = self.share95
            out.append(
                f"strong share for {TARGET:.0%} of the all-strong score: {s[0]:.1%} "
                f"[{s[1]:.1%}, {s[2]:.1%}]; random routing needs {self.random_share95:.1%}"
            )
        return out


def _curves(
    weights: np.ndarray,
    rank: np.ndarray,
    cost: np.ndarray,
    cheap: np.ndarray,
    strong: np.ndarray,
    rules: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per weight row: APGR, share for 95%, the whole policy's share and mean score."""
    import numpy as np

    onehot = np.zeros((rank.size, rules + 1))
    onehot[np.arange(rank.size), rank] = 1.0
    c = weights @ (onehot * cost[:, None])  # (B, rules + 1): calls per block
    g = weights @ (onehot * (strong - cheap)[:, None])
    total_c = c.sum(axis=1)
    base = (weights @ cheap) / total_c
    top = (weights @ strong) / total_c
    # Points: the start, each rule prefix, then all-strong.
    share = np.concatenate([np.zeros((len(c), 1)), np.cumsum(c[:, :rules], axis=1)], axis=1)
    share = np.concatenate([share, total_c[:, None]], axis=1) / total_c[:, None]
    gained = np.concatenate([np.zeros((len(c), 1)), np.cumsum(g[:, :rules], axis=1)], axis=1)
    gained = np.concatenate([gained, g.sum(axis=1)[:, None]], axis=1) / total_c[:, None]
    score = base[:, None] + gained
    gap = top - base
    with np.errstate(divide="ignore", invalid="ignore"):
        pgr = gained / gap[:, None]
        apgr = (np.diff(share, axis=1) * (pgr[:, 1:] + pgr[:, :-1]) / 2).sum(axis=1)
        goal = TARGET * top
        # First segment whose end reaches the goal; interpolate inside it.
        reach = score >= goal[:, None] - 1e-12
        first = np.argmax(reach, axis=1)
        prev = np.maximum(first - 1, 0)
        rows = np.arange(len(c))
        s0, s1 = share[rows, prev], share[rows, first]
        v0, v1 = score[rows, prev], score[rows, first]
        t = np.where(v1 > v0, (goal - v0) / (v1 - v0), 0.0)
        share95 = np.where(first == 0, 0.0, s0 + np.clip(t, 0.0, 1.0) * (s1 - s0))
    apgr = np.where(gap > NO_GAP, apgr, np.nan)
    return apgr, share95, share[:, rules], score[:, rules]


def measure(units: Sequence[Unit], rules: int, seed: int, bootstrap: int = BOOTSTRAP) -> Curve:
    import numpy as np

    from .select import group_index

    rank = np.array([u.rule if u.rule is not None else rules for u in units], dtype=np.intp)
    cost = np.array([u.cost for u in units], dtype=np.float64)
    cheap = np.array([u.cheap for u in units], dtype=np.float64)
    strong = np.array([u.strong for u in units], dtype=np.float64)
    member, groups = group_index([u.group for u in units])
    one = np.ones((1, len(units)))
    apgr, share95, share, score = _curves(one, rank, cost, cheap, strong, rules)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(groups, np.full(groups, 1.0 / groups), size=bootstrap)
    w = draws[:, member].astype(np.float64)
    b_apgr, b_share95, b_share, b_score = _curves(w, rank, cost, cheap, strong, rules)
    total_w = w @ cost
    b_base, b_top = (w @ cheap) / total_w, (w @ strong) / total_w
    b_lift = b_score - (b_base + b_share * (b_top - b_base))
    base, top = float(cheap.sum() / cost.sum()), float(strong.sum() / cost.sum())
    random_score = base + float(share[0]) * (top - base)

    def interval(point: float, samples: np.ndarray) -> tuple[float, float, float]:
        s = samples[np.isfinite(samples)]
        if not s.size:
            return (point, point, point)
        return (point, float(np.quantile(s, 0.025)), float(np.quantile(s, 0.975)))

    gap = top - base
    random95 = None
    if gap > NO_GAP:
        random95 = float(min(max((TARGET * top - base) / gap, 0.0), 1.0))
    return Curve(
        units=len(units),
        share=float(share[0]),
        score=float(score[0]),
        random_score=random_score,
        lift=interval(float(score[0]) - random_score, b_lift),
        apgr=interval(float(apgr[0]), b_apgr) if gap > NO_GAP else None,
        share95=interval(float(share95[0]), b_share95) if gap > NO_GAP else None,
        random_share95=random95,
    )
