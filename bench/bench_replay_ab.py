"""`policyroute replay` of two checkouts side by side: before and after, runs alternating.

    git worktree add ../replay-base d3b9965
    python bench/bench_replay_ab.py ../replay-base .                     # 200,000 requests
    python bench/bench_replay_ab.py ../replay-base . --requests 1000000 --rounds 2

On a machine shared with other work the absolute times move with the load; alternating
the two in one session, on the same file, makes their ratio the figure to read. Each run is
bench_replay.py's measurement (the real command in a fresh process, all cores unless
--jobs) with PYTHONPATH set to the checkout; the load average is printed beside each.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench_replay import generate, measure


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("before", type=Path, help="checkout of the code before")
    p.add_argument("after", type=Path, help="checkout of the code after")
    p.add_argument("--requests", type=int, default=200_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--jobs", type=int, default=None, help="workers (default: one per core)")
    args = p.parse_args()
    sides = {"before": args.before.resolve(), "after": args.after.resolve()}
    cpu: dict[str, list[float]] = {k: [] for k in sides}
    wall: dict[str, list[float]] = {k: [] for k in sides}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "traffic.jsonl"
        generate(path, args.requests)
        print(f"{args.requests:,} requests; {time.strftime('%H:%M:%S', time.gmtime())} UTC")
        print(f"{'run':8} {'wall s':>7} {'CPU s':>7} {'CPU us/request':>15} {'peak MiB':>9} load")
        for _ in range(args.rounds):
            for side, root in sides.items():
                os.environ["PYTHONPATH"] = str(root)
                seconds, peak, replayed, used = measure(path, args.jobs)
                cpu[side].append(1e6 * used / replayed)
                wall[side].append(seconds)
                print(
                    f"{side:8} {seconds:7.1f} {used:7.1f} {1e6 * used / replayed:15.1f} "
                    f"{peak:9.0f} {os.getloadavg()[0]:.1f}"
                )
    for side in sides:
        print(
            f"{side}: CPU us/request {min(cpu[side]):.1f} to {max(cpu[side]):.1f}, "
            f"wall {min(wall[side]):.1f} to {max(wall[side]):.1f} s"
        )
    ratio = sum(cpu["after"]) / sum(cpu["before"])
    print(
        f"after/before, CPU per request: {ratio:.2f}; wall: "
        f"{sum(wall['after']) / sum(wall['before']):.2f}"
    )
    print(time.strftime("%H:%M:%S", time.gmtime()), "UTC")
    return 0


if __name__ == "__main__":
    sys.exit(main())
