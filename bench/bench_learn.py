"""`policyroute learn` on the RouteLLM outcomes: where the time goes, stage by stage.

    python bench/bench_learn.py              # MMLU (14,042 requests, split by subject)
    python bench/bench_learn.py --data gsm8k # GSM8K (1,319 requests, split by row)

Runs the learner's stages in one process on the files under examples/routellm/, as
`policyroute learn ... --budget 25` does, and prints wall and CPU seconds for each: reading
(replay's readers), mining candidates, selection (100 bootstrap resamples of the greedy
learner, then the final choice), emitting and checking the file, and the held-out report
(replay on the held-out split, 2,000 bootstrap resamples). CPU time is printed beside wall
time because the machine may be shared.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = {
    "mmlu": ("mmlu.traffic.jsonl.gz", "mmlu.outcomes.csv.gz", "subject"),
    "gsm8k": ("gsm8k.traffic.jsonl", "gsm8k.outcomes.jsonl", None),
    "mt-bench": ("mt-bench.traffic.jsonl", "mt-bench.outcomes.jsonl", "question"),
}


def timed(label: str, fn: Callable[[], Any]) -> Any:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    print(
        f"{label:<34} {time.perf_counter() - wall:7.2f} s wall {time.process_time() - cpu:7.2f} s CPU"
    )
    return out


def main() -> None:
    import tempfile

    import numpy as np

    from policyroute.learn.data import load_examples, split_by_group
    from policyroute.learn.emit import describe, pick_example, render, verify
    from policyroute.learn.evaluate import heldout_report, write_lines
    from policyroute.learn.features import generate
    from policyroute.learn.learner import min_support
    from policyroute.learn.select import Config, select
    from policyroute.learn.tiers import read_tiers, tier_lines

    parser = argparse.ArgumentParser()
    parser.add_argument("--data", choices=sorted(DATA), default="mmlu")
    args = parser.parse_args()
    traffic_name, outcomes_name, group = DATA[args.data]
    folder = ROOT / "examples" / "routellm"
    traffic, outcomes = [str(folder / traffic_name)], [str(folder / outcomes_name)]
    tiers = read_tiers(ROOT / "policies" / "shared" / "tiers.route")
    total = time.perf_counter()
    loaded = timed(
        "read traffic and outcomes",
        lambda: load_examples(traffic, outcomes, tiers.tiers, "haiku", "opus", group),
    )
    split = split_by_group(loaded.examples, 0.3, 0)
    train = list(split.train)
    gain = np.array([ex.gain("haiku", "opus") for ex in train])
    support = min_support(len(train))
    exclude = frozenset({group, f"metadata.{group}"} if group else set())
    cands = timed(
        "mine candidate conditions",
        lambda: generate(train, min_support=support, min_groups=3, exclude=exclude),
    )
    selection = timed(
        "select (100 resamples + final)",
        lambda: select(cands, gain, [ex.group for ex in train], Config(0.25, support)),
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "learned.route"

        def emit() -> Any:
            rules = describe(selection, cands.items, cands.masks, train, gain, tiers.names)
            default = pick_example(train, ~selection.strong, gain, want_gain=False)
            text = render(
                header=["# bench"],
                policy_name="bench",
                tier_lines=tier_lines(tiers, ["haiku", "opus"], out),
                rules=rules,
                cheap="haiku",
                strong="opus",
                n_train=len(train),
                resamples=100,
                default_example=default,
            )
            return verify(text, out.name, out.parent)[1]

        policy = timed("emit, check, format, test", emit)
        held = Path(tmp) / "held.jsonl"

        def report() -> Any:
            write_lines([loaded.items[ex.id].where for ex in split.heldout], traffic, held)
            return heldout_report(
                policy, held, loaded.outcomes, cheap="haiku", strong="opus", group_by=group, seed=0
            )

        timed("held-out report (replay)", report)
    print(
        f"{args.data}: {len(loaded.examples)} requests, {len(train)} training, "
        f"{len(cands.items)} candidates, {len(selection.items)} conditions chosen; "
        f"total {time.perf_counter() - total:.1f} s wall"
    )


if __name__ == "__main__":
    main()
