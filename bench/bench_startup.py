"""Start-up cost of the `policyroute` command, as a ratio against a bare Python start.

    python bench/bench_startup.py [--runs N]

Each command runs N times as a fresh process, interleaved so that machine noise hits all of
them alike; the table shows the median wall time and its ratio to `python -c pass`. The
first `check` after installing builds Lark's parse tables once and caches them in the user's
cache folder; the bench runs it once beforehand so the figures are the steady state an editor
or a pre-commit hook sees.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "policies" / "coding-assistant.route"
BIN = Path(sys.executable).parent / "policyroute"

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import policyroute": [sys.executable, "-c", "import policyroute"],
    "policyroute --version": [str(BIN), "--version"],
    "policyroute check (small policy)": [str(BIN), "check", str(POLICY)],
    "policyroute route": [str(BIN), "route", str(POLICY), "--prompt", "Find the deadlock"],
}
TARGET_S = 0.3


def run_once(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    if not BIN.exists():
        print(f"no console script at {BIN}: install policyroute into this Python", file=sys.stderr)
        return 2
    env_check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, policyroute; print(sorted(m for m in "
            "('anthropic', 'httpx', 'numpy', 'starlette', 'uvicorn', 'watchfiles') "
            "if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    run_once(COMMANDS["policyroute check (small policy)"])  # warm Lark's table cache
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.runs):
        for name, cmd in COMMANDS.items():
            times[name].append(run_once(cmd))
    base = statistics.median(times["python -c pass"])
    print(f"{'command':<36} {'median':>9} {'ratio':>7}   (n={args.runs}, cpus={os.cpu_count()})")
    for name, samples in times.items():
        med = statistics.median(samples)
        print(f"{name:<36} {med * 1000:7.0f} ms {med / base:6.1f}x")
    print(f"heavy modules loaded by `import policyroute`: {env_check.stdout.strip()}")
    check = statistics.median(times["policyroute check (small policy)"])
    verdict = "meets" if check < TARGET_S else "MISSES"
    print(
        f"`policyroute check` {check * 1000:.0f} ms {verdict} the {TARGET_S * 1000:.0f} ms target"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
