"""`policyroute learn` on the RouteLLM outcomes: where the time goes, stage by stage.

    python bench/bench_learn.py                  # MMLU (14,042 requests, split by subject)
    python bench/bench_learn.py --holdout 0      # MMLU, learning from all 14,042
    python bench/bench_learn.py --data gsm8k     # GSM8K (1,319 requests, split by row)

Runs the learner's stages in one process on the files under examples/routellm/, as
`policyroute learn ... --budget 25` does, and prints wall and CPU seconds for each: reading
(replay's readers); preparing (mining candidates, growing conjunctions on each inner fold,
validating every condition out of fold with its group bootstrap); choosing within the budget
and emitting and checking the file; and the held-out report (replay on the held-out split
and the curve's APGR and 95% share, 2,000 bootstrap resamples each). CPU time is printed
beside wall time because the machine may be shared; the target is the whole run under 30 s.
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

    from policyroute.learn.data import load_examples, split_by_group
    from policyroute.learn.figures import measure
    from policyroute.learn.learner import (
        Settings,
        decide_units,
        policy_for,
        prepare,
        units_of,
        write_policy,
    )
    from policyroute.learn.run import Target, _replay
    from policyroute.learn.tiers import read_tiers

    parser = argparse.ArgumentParser()
    parser.add_argument("--data", choices=sorted(DATA), default="mmlu")
    parser.add_argument("--holdout", type=float, default=30.0, help="percent held out (30)")
    args = parser.parse_args()
    traffic_name, outcomes_name, group = DATA[args.data]
    folder = ROOT / "examples" / "routellm"
    traffic, outcomes = [str(folder / traffic_name)], [str(folder / outcomes_name)]
    tiers = read_tiers(ROOT / "policies" / "shared" / "tiers.route")
    s = Settings("haiku", "opus", 0.25, holdout=args.holdout / 100, group_by=group)
    total = time.perf_counter()
    total_cpu = time.process_time()
    loaded = timed(
        "read traffic and outcomes",
        lambda: load_examples(traffic, outcomes, tiers.tiers, "haiku", "opus", group),
    )
    split = split_by_group(loaded.examples, s.holdout, 0)
    model = timed("mine, grow conjunctions, validate", lambda: prepare(split.train, s))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "learned.route"
        choice = policy_for(model, s.budget, s)
        _, policy = timed(
            "choose, emit, check, format, test",
            lambda: write_policy(model, choice, tiers, s, out, ["# bench"]),
        )
        if split.heldout:

            def report() -> Any:
                target = Target(s.budget, out, "bench")
                _replay(policy, loaded, split, s, target, traffic, outcomes, None)
                units = units_of(split.heldout, s)
                return measure(decide_units(policy, units, choice.rules), len(choice.rules), 0)

            timed("held-out report (replay, curve)", report)
    wall = time.perf_counter() - total
    print(
        f"{args.data}: {len(loaded.examples)} requests, {len(split.train)} training, "
        f"{len(model.candidates.items)} candidates ({model.atoms} single), "
        f"{int(model.validation.validated.sum())} validated, {len(choice.rules)} rules; "
        f"total {wall:.1f} s wall, {time.process_time() - total_cpu:.1f} s CPU "
        f"(target under 30 s: {'met' if wall < 30 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
