"""Hot reload figures: write-to-live latency, and what the store adds to each decision.

    python bench/bench_reload.py [--edits N] [--policy FILE]

1. Reload latency: time from the start of a file write to the first decision made by the
   new version, measured by a reader calling `store.decide` in a loop (as a busy server
   would), p50 / p95 / max over N edits, for an in-place write, a write-then-rename, and
   polling.
2. Decision cost: `policy.decide` and `store.decide` on the same requests, side by side;
   best of several rounds, interleaved so that drift hits both alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import policyroute
from policyroute.request import Request
from policyroute.store import PolicyStore, watch

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POLICY = ROOT / "policies" / "coding-assistant.route"

REQUESTS = [
    {"prompt": "Please rename this variable and sort imports", "task": "edit"},
    {"prompt": "Find the deadlock between these two worker pools"},
    {"prompt": "Classify this sentiment: 'I love this product!'", "task": "classify"},
    {"prompt": "x " * 400, "domain": "billing", "context_tokens": 2000},
    {"prompt": "select a from b join c on a.id = c.id " * 10, "user_tier": "pro"},
]


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def versions(text: str) -> tuple[str, str]:
    """Two texts of one policy that differ in content (so in revision), not in behaviour."""
    return text + "\n# bench edit a\n", text + "\n# bench edit b\n"


def write_in_place(path: Path, text: str) -> None:
    path.write_text(text)


def write_then_rename(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def reload_latency(
    policy_path: Path, edits: int, write: Callable[[Path, str], None], **opts: object
) -> list[float]:
    a, b = versions(policy_path.read_text())
    out: list[float] = []
    req = Request(**REQUESTS[0])
    with tempfile.TemporaryDirectory() as d:
        # The policy's whole folder, so that its imports resolve in the copy.
        folder = Path(d) / "policies"
        shutil.copytree(policy_path.parent, folder)
        path = folder / policy_path.name
        path.write_text(a)
        with watch(path, **opts) as store:  # type: ignore[arg-type]
            revisions = {}
            for t in (a, b):
                path.write_text(t)
                store.reload()
                revisions[t] = store.revision
            for i in range(edits):
                t = b if i % 2 == 0 else a
                want = revisions[t]
                started = time.perf_counter()
                write(path, t)
                deadline = started + 10
                while store.decide(req).revision != want:
                    if time.perf_counter() > deadline:
                        raise SystemExit(f"edit {i} not live after 10 s")
                out.append((time.perf_counter() - started) * 1000)
                # Let the watcher settle so each edit is timed on its own.
                time.sleep(0.02)
    return out


def decide_cost(policy_path: Path, rounds: int = 7) -> tuple[float, float, float, float]:
    policy = policyroute.load(policy_path)
    store: PolicyStore = watch(policy_path)
    try:
        reqs = [Request(**r) for r in REQUESTS]
        kws = REQUESTS

        def p_req() -> None:
            for r in reqs:
                policy.decide(r)

        def s_req() -> None:
            for r in reqs:
                store.decide(r)

        def p_kw() -> None:
            for k in kws:
                policy.decide(**k)

        def s_kw() -> None:
            for k in kws:
                store.decide(**k)

        n = 20_000
        best = {f: float("inf") for f in (p_req, s_req, p_kw, s_kw)}
        for _ in range(rounds):
            for f in best:
                best[f] = min(best[f], timeit.timeit(f, number=n))
        per = {f: best[f] / (n * len(REQUESTS)) * 1e9 for f in best}
        return per[p_req], per[s_req], per[p_kw], per[s_kw]
    finally:
        store.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edits", type=int, default=60, help="edits per mode (default 60)")
    ap.add_argument("--policy", type=Path, default=DEFAULT_POLICY)
    args = ap.parse_args()
    policy = policyroute.load(args.policy)
    print(f"policy: {args.policy.name}, {len(policy.rules) - 1} rules + default")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")

    print(f"reload latency: write -> first decision by the new revision, {args.edits} edits")
    print(f"{'mode':<26}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    modes: list[tuple[str, Callable[[Path, str], None], dict[str, object]]] = [
        ("in-place write", write_in_place, {}),
        ("write temp, rename", write_then_rename, {}),
        ("polling (0.1 s)", write_in_place, {"force_polling": True, "poll_interval": 0.1}),
    ]
    for name, write, opts in modes:
        xs = reload_latency(args.policy, args.edits, write, **opts)
        print(f"{name:<26}{percentile(xs, 0.5):>9.1f}{percentile(xs, 0.95):>9.1f}{max(xs):>9.1f}")

    print("\ndecision cost, ns per decision (best of 7 rounds)")
    p_req, s_req, p_kw, s_kw = decide_cost(args.policy)
    print(f"{'call':<28}{'policy':>9}{'store':>9}{'added':>9}")
    for name, p, s in (("decide(Request)", p_req, s_req), ("decide(**attrs)", p_kw, s_kw)):
        print(f"{name:<28}{p:>9.0f}{s:>9.0f}{(s / p - 1) * 100:>8.1f}%")
    print(f"\nmedian of the two ratios: {statistics.median([s_req / p_req, s_kw / p_kw]):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
