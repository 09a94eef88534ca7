"""How long `policyroute check` takes on hostile and large policies (issue 15).

    python bench/bench_hostile.py [--timeout S] [--only NAME ...]

Each case is written to a temporary folder and checked in its own subprocess (what
`policyroute check FILE` runs, without the CLI's start-up), so a case that hangs or crashes
is reported as such and the others still run. Prints one line per case: seconds, peak memory
of the subprocess, and the codes reported. Run it with PYTHONPATH pointing at another
checkout to compare versions side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

T2 = (
    'tier haiku = "claude-haiku-4-5" { input 1.00 output 5.00 }\n'
    'tier sonnet = "claude-sonnet-4-6" { input 3.00 output 15.00 }\n'
)
END = "default -> sonnet\n"


def _phrases(n: int) -> str:
    words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota", "kappa"]
    out = []
    for i in range(n):
        out.append(f'"{words[i % 10]} {words[(i // 10) % 10]} {words[(i // 100) % 10]} w{i}"')
    return ", ".join(out)


CASES: dict[str, Callable[[], dict[str, str]]] = {
    "8000 phrases in one set": lambda: {
        "p.route": T2 + f"keywords k = [{_phrases(8000)}]\n"
        "rule r: prompt contains any k -> haiku\n" + END
    },
    "50000 phrases (the limit)": lambda: {
        "p.route": T2 + "keywords k = [" + ",".join(f'"w{i} x"' for i in range(50_000)) + "]\n"
        "rule r: prompt contains any k -> haiku\n" + END
    },
    "210000 phrases": lambda: {
        "p.route": T2 + "keywords k = [" + ",".join(f'"{i}"' for i in range(210_000)) + "]\n"
        "rule r: prompt contains any k -> haiku\n" + END
    },
    "5000 phrases standing in 3 others": lambda: {
        "p.route": T2
        + "keywords k = ["
        + ",".join(
            '"' + " ".join(f"w{j}" for j in range(i % 20 + 1)) + f' z{i}"' for i in range(5000)
        )
        + ', "w0", "w0 w1", "w0 w1 w2"]\nrule r: prompt contains any k -> haiku\n'
        + END
    },
    "8000 phrases holding one phrase": lambda: {
        "p.route": T2 + "keywords k = [" + ",".join(f'"x w{i}"' for i in range(8000)) + ', "x"]\n'
        'rule r: prompt contains any k -> haiku\nrule r2: prompt contains "w5" -> haiku\n' + END
    },
    "contains all of 2000 phrases": lambda: {
        "p.route": T2 + "keywords k = [" + ",".join(f'"q{i}"' for i in range(2000)) + "]\n"
        "rule r: prompt contains all k -> haiku\n" + END
    },
    "3000 missing imports": lambda: {
        "p.route": T2 + "".join(f'import "m{i}.route"\n' for i in range(3000)) + END
    },
    "phrase of 400000 words": lambda: {
        "p.route": T2 + 'keywords k = ["' + "ab " * 266_000 + '"]\n'
        "rule r: prompt contains any k -> haiku\n" + END
    },
    "1000 not with comments": lambda: {
        "p.route": T2 + "rule r:\n" + "not # c\n" * 1000 + "files > 1 -> haiku\n" + END
    },
    "and of 50000 tests": lambda: {
        "p.route": T2
        + "rule r: "
        + " and ".join(f"metadata.k{i} == 1" for i in range(50_000))
        + " -> haiku\n"
        + END
    },
}

_CHILD = """
import resource, sys, time
from pathlib import Path
started = time.perf_counter()
from policyroute.compiler.loader import load_path
from policyroute.compiler.check import check
from policyroute.policy import build
from policyroute.analysis import lint
t0 = time.perf_counter()
loaded = load_path(Path(sys.argv[1]))
codes = [d.code for d in loaded.diagnostics]
if loaded.statements:
    checked, found = check(loaded.statements, loaded.imports_failed())
    codes += [d.code for d in found]
    if not any(c.startswith("E") for c in codes) and not checked.library:
        codes += [d.code for d in lint(build(loaded))]
elapsed = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(f"{elapsed:.2f} {peak} {','.join(sorted(set(codes))) or '-'}")
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    print(f"{'case':40} {'seconds':>8} {'peak MB':>8}  codes")
    for name, make in CASES.items():
        if args.only and name not in args.only:
            continue
        with tempfile.TemporaryDirectory() as folder:
            for fname, text in make().items():
                Path(folder, fname).write_text(text, encoding="utf-8")
            started = time.perf_counter()
            try:
                proc = subprocess.run(
                    [sys.executable, "-c", _CHILD, str(Path(folder, "p.route"))],
                    capture_output=True,
                    text=True,
                    timeout=args.timeout,
                    env=os.environ,
                )
            except subprocess.TimeoutExpired:
                print(f"{name:40} {'>' + str(int(args.timeout)):>8} {'':>8}  (timed out)")
                continue
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["?"])[-1][:80]
                wall = time.perf_counter() - started
                print(f"{name:40} {wall:8.2f} {'':>8}  exit {proc.returncode}: {last}")
                continue
            seconds, peak, codes = proc.stdout.split()
            print(f"{name:40} {float(seconds):8.2f} {peak:>8}  {codes}")
    print(json.dumps({"python": sys.version.split()[0]}))


if __name__ == "__main__":
    main()
