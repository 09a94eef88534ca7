"""`policyroute replay` on a large generated TRAFFIC file: throughput and memory.

    python bench/bench_replay.py                    # 1,000,000 requests of about 2 KB
    python bench/bench_replay.py --requests 200000  # a smaller run
    python bench/bench_replay.py --quick            # 50,000 requests, for a smoke run

The traffic is written to a temporary folder (deleted afterwards): Messages API request
objects of about 2 KB each (a system prompt and a user message of varied words, some with the
policy's keywords, code or stack traces), with routing attributes. Each measurement runs the
real command, `policyroute replay policies/coding-assistant.route FILE --format json`, in a
fresh process, and reports wall time and the peak resident memory of the largest process
(the parent or one worker). Memory is flat when the peak does not grow with the file: the
same command is run on a tenth of the file, side by side, and on one worker for the speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from words import VOCAB

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "policies" / "coding-assistant.route"

SPICE = [
    "there is a deadlock between the two worker pools",
    "please rename this variable",
    'Traceback (most recent call last):\n  File "app.py", line 3, in <module>',
    "format this JSON",
    "is this a security vulnerability",
    "SELECT name FROM users JOIN orders ON users.id = orders.user_id",
]
TASKS = [None, "explain", "review", "rename", "format", "debug"]
TIERS = [None, "free", "pro", "enterprise"]


def generate(path: Path, n: int, seed: int = 1) -> int:
    """n request lines of about 2 KB; returns the bytes written."""
    rng = random.Random(seed)
    # A pool of paragraphs mixed per line keeps generation fast and every line different.
    paragraphs = [" ".join(rng.choices(VOCAB, k=rng.randint(55, 110))) for _ in range(400)]
    written = 0
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            parts = rng.sample(paragraphs, 4)
            if rng.random() < 0.3:
                parts.insert(rng.randint(0, 4), rng.choice(SPICE))
            text = "\n\n".join(parts)
            route: dict[str, object] = {}
            task = rng.choice(TASKS)
            if task:
                route["task"] = task
            tier = rng.choice(TIERS)
            if tier:
                route["user"] = {"tier": tier}
            if rng.random() < 0.2:
                route["files"] = rng.randint(1, 9)
            line = json.dumps(
                {
                    "id": f"r{i}",
                    "max_tokens": 1024,
                    "system": "You are a careful coding assistant.",
                    "messages": [{"role": "user", "content": text}],
                    "route": route,
                },
                separators=(",", ":"),
            )
            f.write(line + "\n")
            written += len(line) + 1
    return written


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(path: Path, jobs: int | None) -> tuple[float, float, int, float]:
    """(seconds, peak RSS MiB of the largest process, requests replayed, CPU seconds of the
    command and its workers) of one real run."""
    code = (
        "import resource, sys\n"
        "from policyroute.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
        " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "print(peak, file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    args = [sys.executable, "-c", code, "replay", str(POLICY), str(path), "--format", "json"]
    if jobs:
        args += ["--jobs", str(jobs)]
    cpu = _cpu()
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    cpu = _cpu() - cpu
    if proc.returncode != 0:
        raise SystemExit(f"replay failed ({proc.returncode}):\n{proc.stderr}")
    peak_kib = int(proc.stderr.strip().splitlines()[-1])
    replayed = json.loads(proc.stdout)["replayed"]
    return seconds, peak_kib / 1024, replayed, cpu


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=1_000_000)
    p.add_argument("--quick", action="store_true", help="50,000 requests")
    args = p.parse_args()
    n = 50_000 if args.quick else args.requests
    cores = os.cpu_count() or 1
    print(f"cores: {cores}; load average before: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as d:
        big, small = Path(d) / "big.jsonl", Path(d) / "small.jsonl"
        t = time.perf_counter()
        size = generate(big, n)
        generate(small, max(n // 10, 1))
        print(
            f"generated {n:,} requests, {size / 1e6:,.0f} MB ({size / n:,.0f} bytes a line) "
            f"in {time.perf_counter() - t:.1f} s"
        )
        rows = [
            (f"{n // 10:,} requests, all cores", *measure(small, None)),
            (f"{n // 10:,} requests, 1 worker", *measure(small, 1)),
            (f"{n:,} requests, all cores", *measure(big, None)),
        ]
    print(
        f"{'run':34} {'seconds':>8} {'requests/s':>11} {'peak RSS MiB':>13} {'CPU s':>7} "
        f"{'CPU us/request':>15}"
    )
    for name, seconds, peak, replayed, cpu in rows:
        print(
            f"{name:34} {seconds:8.1f} {replayed / seconds:11,.0f} {peak:13.0f} {cpu:7.1f} "
            f"{1e6 * cpu / replayed:15.0f}"
        )
    speedup = rows[1][1] / rows[0][1]
    print(f"speed-up of all cores over one worker: {speedup:.2f}x")
    print(f"peak memory, {n:,} vs {n // 10:,} requests: {rows[2][2] / rows[0][2]:.2f}x")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    # On a shared machine the wall time depends on the other load; the CPU time the command
    # used does much less, and bounds what an idle machine of this many cores would take.
    print(
        f"CPU time of the {n:,}-request run spread over {cores} cores: "
        f"{rows[2][4] / cores:.1f} s (the wall time on an idle machine, if the work divides evenly)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
