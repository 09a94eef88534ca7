"""Synthetic traffic and outcomes where the answer is known: a planted keyword makes the
strong tier better, everything else is noise."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from policyroute.cli import main

TIERS = (
    'tier haiku  = "claude-haiku-4-5"  { input 1.00 output 5.00  max_tokens 4096 }\n'
    'tier sonnet = "claude-sonnet-4-6" { input 3.00 output 15.00 max_tokens 16384 }\n'
    'tier opus   = "claude-opus-4-7"   { input 5.00 output 25.00 max_tokens 32768 }\n'
)

# Filler words with no effect: each is common enough to be a candidate keyword.
FILLER = [
    "apple",
    "river",
    "stone",
    "garden",
    "window",
    "market",
    "basket",
    "ladder",
    "candle",
    "mirror",
    "pencil",
    "bottle",
    "carpet",
    "engine",
    "forest",
    "harbor",
    "island",
    "jacket",
    "kettle",
    "lemon",
    "meadow",
    "napkin",
    "orange",
    "pillow",
    "rabbit",
    "saddle",
    "ticket",
    "violin",
    "wagon",
    "yellow",
]


def write(
    folder: Path,
    *,
    planted: str,
    n_groups: int = 150,
    per_group: int = 2,
    share: float = 0.2,
    gain: float = 3.0,
    noise: float = 1.0,
    seed: int = 0,
) -> tuple[Path, Path, Path]:
    """TRAFFIC, OUTCOMES and TIERS files: a `share` of groups carry `planted`, on which the
    strong tier (opus) scores `gain` more; elsewhere both tiers score alike, plus noise."""
    rng = random.Random(seed)
    traffic = folder / "traffic.jsonl"
    outcomes = folder / "outcomes.jsonl"
    tiers = folder / "tiers.route"
    tiers.write_text(TIERS, encoding="utf-8")
    with traffic.open("w", encoding="utf-8") as t, outcomes.open("w", encoding="utf-8") as o:
        for g in range(n_groups):
            hard = rng.random() < share
            for turn in range(per_group):
                words = rng.sample(FILLER, 7)
                if hard:  # the planted word takes a filler's place
                    words[rng.randrange(len(words))] = planted
                # Every prompt padded to one length: a longer planted word would otherwise make
                # `length > N` a true proxy for it.
                prompt = ("Please " + " ".join(words) + ".").ljust(90, ".")
                rid = f"r{g}-{turn}"
                line = {
                    "id": rid,
                    "max_tokens": 256,
                    "messages": [{"role": "user", "content": prompt}],
                    "route": {"metadata": {"conversation": f"c{g}"}},
                }
                t.write(json.dumps(line) + "\n")
                base = rng.uniform(4, 7)
                cheap = base + rng.gauss(0, noise)
                strong = base + (gain if hard else 0.0) + rng.gauss(0, noise)
                o.write(json.dumps({"id": rid, "tier": "haiku", "score": round(cheap, 3)}) + "\n")
                o.write(
                    json.dumps({"id": rid, "model": "claude-opus-4-7", "score": round(strong, 3)})
                    + "\n"
                )
    return traffic, outcomes, tiers


@dataclass(frozen=True)
class Synth:
    """A folder holding synthetic traffic, outcomes and a tiers file (`synth.write`)."""

    folder: Path
    traffic: Path
    outcomes: Path
    tiers: Path

    def learn(
        self,
        *flags: str,
        out: Path | None = None,
        tiers: Path | None = None,
        cheap: str = "haiku",
        strong: str = "opus",
    ) -> int:
        """`policyroute learn` on this data, `cheap` -> `strong`, writing `out` (default
        learned.route beside the data), with `flags` after; the exit code."""
        argv = ["learn", str(self.traffic), "--outcomes", str(self.outcomes)]
        argv += ["--tiers", str(tiers or self.tiers), "--cheap", cheap, "--strong", strong]
        argv += ["-o", str(out or self.folder / "learned.route"), *flags]
        return main(argv)
