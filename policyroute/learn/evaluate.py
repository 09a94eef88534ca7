"""The held-out report of a learned policy, computed by replay's own code.

Learn does not compute its own quality figures: it writes the held-out requests' TRAFFIC
lines, exactly as they were read, to a file and runs `policyroute.measure.replay.replay`
(the function behind `policyroute replay`) on the emitted policy with the same outcomes,
grouping, bootstrap and seed. So the header of a learned file says what
`policyroute replay LEARNED.route HELDOUT.jsonl --outcomes ... --group-by ... --seed ...`
says on the held-out split (a test checks it, figure by figure).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..policy import Policy

if TYPE_CHECKING:
    from ..measure.outcomes import Outcomes
    from ..measure.traffic import Location

# replay's defaults, so a plain `policyroute replay` of the held-out split reproduces the header.
BOOTSTRAP = 2000


@dataclass(frozen=True, slots=True)
class HeldOut:
    report: dict[str, Any]  # replay's report, exactly as `replay --format json` prints it
    strong: str
    cheap: str

    @property
    def quality(self) -> dict[str, Any]:
        q: dict[str, Any] = self.report.get("quality") or {}
        return q

    @property
    def strong_share(self) -> float:
        tier = self.report["tiers"].get(self.strong)
        return float(tier["share"]) if tier else 0.0

    @property
    def pct_of_top(self) -> float | None:
        v = self.quality.get("pct_of_top")
        return float(v) if v is not None else None

    def lines(self, groups: int, replay_command: str) -> list[str]:
        """The header's held-out report: what was held out, the replay command, the figures."""
        return [
            f"# Held-out report: {self.report['replayed']} requests in {groups} groups never "
            "seen while learning, as `policyroute replay` reports them:",
            f"#   {replay_command}",
            *(f"#   {line}" for line in self.figures()),
        ]

    def figures(self) -> list[str]:
        """Share, score and lift over random, each with its interval, as replay reports them."""
        q = self.quality
        if q.get("score") is None or q.get("pct_of_top") is None:
            return ["(no quality figures: the held-out requests have no usable outcomes)"]
        if self.strong not in q["tier_scores"]:
            # A single-tier policy: replay scores only the tier it routes to.
            return [
                f"every request to {self.cheap}; mean score {q['score']:.3g} "
                f"[{q['score_ci95'][0]:.3g}, {q['score_ci95'][1]:.3g}]: random routing at a "
                "0% strong share, by definition"
            ]
        top = q["tier_scores"][self.strong]
        cheap = q["tier_scores"].get(self.cheap)
        rnd = q["random_same_share"]
        lift = q["lift_over_random"]
        ci, sci = q["ci95"], q["score_ci95"]
        return [
            f"{self.strong} share {self.strong_share:.1%}; mean score {q['score']:.3g} "
            f"[{sci[0]:.3g}, {sci[1]:.3g}] = {q['pct_of_top']:.1f}% of all-{self.strong} "
            f"({top:.3g}) [{ci[0]:.1f}, {ci[1]:.1f}]"
            + (f"; all-{self.cheap} scores {cheap:.3g}" if cheap is not None else ""),
            f"random routing at the same share: {rnd['score']:.3g} "
            f"[{rnd['ci95'][0]:.3g}, {rnd['ci95'][1]:.3g}]; lift over random "
            f"{lift['value']:+.3g} [{lift['ci95'][0]:+.3g}, {lift['ci95'][1]:+.3g}], "
            f"one-sided p = {lift['p_value']:.3g}"
            + (f"; gap recovered (PGR) {q['pgr']:.2f}" if q.get("pgr") is not None else ""),
        ]


def write_lines(where: Collection[Location], traffic: Sequence[str], out: Path) -> int:
    """Copy the TRAFFIC lines at `where` (file and line number, as replay's reader numbers
    them) to `out`, in their order; returns how many were written."""
    from ..measure.traffic import iter_chunks

    wanted = {(w.file, w.line) for w in where}
    written = 0
    with out.open("wb") as f:
        for name, start, lines in iter_chunks(traffic):
            for offset, raw in enumerate(lines):
                if isinstance(raw, bytes) and (name, start + offset) in wanted:
                    f.write(raw if raw.endswith(b"\n") else raw + b"\n")
                    written += 1
    return written


def heldout_report(
    policy: Policy,
    heldout_file: Path,
    outcomes: Outcomes,
    *,
    cheap: str,
    strong: str,
    group_by: str | None,
    seed: int,
) -> HeldOut:
    from ..measure.replay import ReplayOptions, replay

    report = replay(
        policy,
        [heldout_file],
        outcomes,
        ReplayOptions(group_by=group_by),
        bootstrap=BOOTSTRAP,
        seed=seed,
    )
    return HeldOut(report.to_json(), strong, cheap)


def temporary_path() -> Path:
    fd, name = tempfile.mkstemp(prefix="policyroute-heldout-", suffix=".jsonl")
    os.close(fd)
    return Path(name)
