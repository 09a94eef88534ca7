"""The held-out report of a learned policy, computed by replay's own code.

Learn does not compute its own quality figures: it hands the emitted policy, the held-out
requests (as replay's reader read them) and the outcomes to `policyroute.measure.replay`,
the function behind `policyroute replay`, and copies the figures it reports. So the header
of a learned file says exactly what `policyroute replay LEARNED.route HELDOUT --outcomes ...`
says on the held-out split, with the same bootstrap and seed (a test checks it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..policy import Policy

if TYPE_CHECKING:
    from .data import Loaded, Split
    from .learner import Settings


@dataclass(frozen=True, slots=True)
class HeldOut:
    requests: int
    strong_share: float
    pct_of_top: float
    pct_ci: tuple[float, float]
    random_pct: float
    random_ci: tuple[float, float]
    lift: float  # percentage points of the strong tier's score, over random at the same share
    lift_ci: tuple[float, float]
    p_value: float
    pgr: float | None
    report: dict[str, Any]  # replay's report, as its JSON output has it

    def lines(self, split: Split, s: Settings) -> list[str]:
        groups = len({ex.group for ex in split.heldout})
        return [
            f"# Held-out report ({self.requests} requests in {groups} groups never seen while "
            f"learning; `policyroute replay`'s figures, bootstrap over groups):",
            f"#   {s.strong} share {self.strong_share:.1%}; score {self.pct_of_top:.1f}% of "
            f"all-{s.strong} [{self.pct_ci[0]:.1f}, {self.pct_ci[1]:.1f}]"
            + (f"; gap recovered (PGR) {self.pgr:.2f}" if self.pgr is not None else ""),
            f"#   random routing at the same share: {self.random_pct:.1f}% "
            f"[{self.random_ci[0]:.1f}, {self.random_ci[1]:.1f}]; lift over random "
            f"{self.lift:+.1f} points [{self.lift_ci[0]:+.1f}, {self.lift_ci[1]:+.1f}], "
            f"one-sided p = {self.p_value:.3g}",
        ]


def heldout_report(
    policy: Policy, loaded: Loaded, ids: Sequence[str], s: Settings, *, seed: int
) -> HeldOut:
    raise NotImplementedError
