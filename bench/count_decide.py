"""decide(**keywords) against the same rules as a keyword if-chain, in instructions.

Wall time on a shared machine swings by several times between runs; the number of
instructions a call executes does not. For each policy (`bench/mixed_policy.py`, seeds 1 to
3, fixed before any timing) and prompt size, this runs one child under
`valgrind --tool=callgrind` for 0 and for N rounds over the same 50 keyword requests and
divides the difference by the calls, so start-up, compilation and the first call's caches
cancel out. `PYTHONHASHSEED=0` makes the children repeatable.

    python bench/count_decide.py            # about 3 minutes
    python bench/count_decide.py --seeds 1 --sizes 200 --rounds 50
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUESTS = 50

# The child: build the policy and its chain, warm both, then `rounds` rounds of one of them.
CHILD = """
import sys
sys.path.insert(0, {bench!r})
from mixed_policy import mixed_policy, keyword_requests
from if_chain import if_chain
import policyroute
seed, size, which, rounds = {seed}, {size}, {which!r}, {rounds}
policy = policyroute.loads(mixed_policy(seed))
chain = if_chain(policy, keywords=True)
items = keyword_requests(size, seed * 100 + size, {requests})
fn = policy.decide if which == "decide" else chain
for kw in items:
    fn(**kw)
for _ in range(rounds):
    for kw in items:
        fn(**kw)
"""


def instructions(seed: int, size: int, which: str, rounds: int) -> int:
    code = CHILD.format(
        bench=str(HERE), seed=seed, size=size, which=which, rounds=rounds, requests=REQUESTS
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-c",
                code,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        if done.returncode != 0:
            raise SystemExit(f"valgrind failed ({done.returncode}):\n{done.stderr[-2000:]}")
        m = re.search(r"^summary:\s+(\d+)", out.read_text(), re.MULTILINE)
        if m is None:
            raise SystemExit(f"no instruction total in {out}")
        return int(m.group(1))


def per_call(seed: int, size: int, which: str, rounds: int) -> float:
    base = instructions(seed, size, which, 0)
    return (instructions(seed, size, which, rounds) - base) / (rounds * REQUESTS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--sizes", type=int, nargs="+", default=[200, 2000])
    ap.add_argument("--rounds", type=int, default=200, help="rounds of the 50 requests")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    if args.rounds < 1:
        raise SystemExit("--rounds must be at least 1")
    print(f"instructions per call, {args.rounds} rounds of {REQUESTS} keyword requests")
    print(f"{'policy':<10} {'prompt':>7} {'decide()':>10} {'if-chain':>10} {'ratio':>7}")
    for seed in args.seeds:
        for size in args.sizes:
            d = per_call(seed, size, "decide", args.rounds)
            c = per_call(seed, size, "chain", args.rounds)
            print(f"mixed #{seed:<3} {size:>6}B {d:>10,.0f} {c:>10,.0f} {d / c:>6.2f}x")


if __name__ == "__main__":
    main()
