"""What the guarded JSON path costs: `jsonsafe.loads` against `json.loads`, side by side.

    python bench/bench_jsonsafe.py [--lines 20000] [--rounds 5]

Reads the lines bench_replay.py generates (Messages API request objects of about 2 KB) and
a few other shapes, alternating the two parsers round by round so load on a shared machine
falls on both alike; prints CPU microseconds per line for each and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_replay import generate

from policyroute import jsonsafe


def _cpu() -> float:
    return time.process_time()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "t.jsonl")
        generate(path, args.lines)
        lines = path.read_bytes().splitlines()
    deep = json.dumps({"messages": [{"content": [[[[[[["x"] * 3] * 3]]]]]}] * 60}).encode()
    escaped = json.dumps({"messages": [{"content": "emoji \U0001f600 " * 50}]}).encode()
    shapes = {
        "2 KB request lines": lines,
        "300 brackets": [deep] * 2000,
        "escaped emoji": [escaped] * 5000,
    }
    print(f"{'lines':22} {'json µs':>9} {'jsonsafe µs':>12} {'ratio':>6}")
    for name, data in shapes.items():
        plain = guarded = 0.0
        for _ in range(args.rounds):
            t0 = _cpu()
            for raw in data:
                json.loads(raw)
            t1 = _cpu()
            for raw in data:
                jsonsafe.loads(raw)
            t2 = _cpu()
            plain += t1 - t0
            guarded += t2 - t1
        n = len(data) * args.rounds
        print(f"{name:22} {plain / n * 1e6:9.2f} {guarded / n * 1e6:12.2f} {guarded / plain:6.2f}")
    print(json.dumps({"python": sys.version.split()[0], "load": os.getloadavg()[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
