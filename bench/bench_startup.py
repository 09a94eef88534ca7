"""Start-up cost of the `policyroute` command, as a ratio against a bare Python start.

    python bench/bench_startup.py [--runs N] [--compare TREE]

Each command runs N times as a fresh process, interleaved so that machine noise hits all of
them alike; the table shows the best and the median wall time and the median's ratio to
`python -c pass`. `import policyroute` is also timed as Python's own `-X importtime` reports
it (best of N: the package's cumulative import time, without the interpreter's start), the
figure the 0.1 s target is about. `--compare TREE` adds the same rows for another checkout
of the package (e.g. `git archive main | tar -x -C /tmp/main`), run by this Python with TREE
first on its path. Every command runs in a neutral folder: `python -c` puts the working
directory first on the path, which would import the checkout it stands in. The
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
import tempfile
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
NEUTRAL = tempfile.gettempdir()
IMPORT_TARGET_S = 0.1


def import_time(env: dict[str, str] | None = None) -> float:
    """`import policyroute`'s cumulative time as `python -X importtime` reports it, in s."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import policyroute"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=NEUTRAL,
    )
    last = [ln for ln in proc.stderr.splitlines() if ln.rstrip().endswith("| policyroute")][-1]
    return int(last.split("|")[1]) / 1e6


def run_once(cmd: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(
        cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=NEUTRAL
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--compare", metavar="TREE", help="another checkout to time beside this one"
    )
    args = parser.parse_args()
    commands = dict(COMMANDS)
    other: dict[str, str] | None = None
    if args.compare:
        other = {**os.environ, "PYTHONPATH": str(Path(args.compare).resolve())}
        commands["import policyroute (--compare)"] = [sys.executable, "-c", "import policyroute"]
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
    times: dict[str, list[float]] = {name: [] for name in commands}
    self_times: list[float] = []
    other_times: list[float] = []
    for _ in range(args.runs):
        for name, cmd in commands.items():
            times[name].append(run_once(cmd, other if name.endswith("(--compare)") else None))
        self_times.append(import_time())
        if other is not None:
            other_times.append(import_time(other))
    base = statistics.median(times["python -c pass"])
    print(
        f"{'command':<36} {'best':>9} {'median':>9} {'ratio':>7}"
        f"   (n={args.runs}, cpus={os.cpu_count()}, load {os.getloadavg()[0]:.1f})"
    )
    for name, samples in times.items():
        med = statistics.median(samples)
        print(f"{name:<36} {min(samples) * 1000:6.0f} ms {med * 1000:6.0f} ms {med / base:6.1f}x")
    best = min(self_times)
    print(
        f"-X importtime, import policyroute: best {best * 1000:.0f} ms, median "
        f"{statistics.median(self_times) * 1000:.0f} ms "
        f"({'meets' if best < IMPORT_TARGET_S else 'MISSES'} the "
        f"{IMPORT_TARGET_S * 1000:.0f} ms target)"
    )
    if other_times:
        print(
            f"-X importtime, import policyroute (--compare): best {min(other_times) * 1000:.0f} ms,"
            f" median {statistics.median(other_times) * 1000:.0f} ms"
        )
    print(f"heavy modules loaded by `import policyroute`: {env_check.stdout.strip()}")
    check = statistics.median(times["policyroute check (small policy)"])
    verdict = "meets" if check < TARGET_S else "MISSES"
    print(
        f"`policyroute check` {check * 1000:.0f} ms {verdict} the {TARGET_S * 1000:.0f} ms target"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
