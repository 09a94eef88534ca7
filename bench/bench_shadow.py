"""What shadow traffic adds to the caller's latency, side by side in one run.

Three routers call a fake Anthropic server on 127.0.0.1 (in another process, as the real API
is) through the real SDK, request by request in rotating order so drift falls on all alike:

- `off`: the policy's `shadow` statement, but no ShadowConfig (nothing shadowed);
- `on`: requests shadowed (`sample 100%` unless `--share`), shadow answers as fast as the
  real ones;
- `on, slow shadow`: the same, shadow answers taking 50 ms, so the workers are always busy
  and the bounded queue fills (skips are counted).

It reports the caller's latency percentiles per router, the difference of each shadowed
router's p50/p99 against `off` (with a bootstrap 95% interval), and the time the shadow hook
itself takes on the caller's path (sampling, budget reservation, queueing), which is all the
work shadowing adds there: the shadow call runs on worker threads. Target: the hook's p99
under 1 ms.

    python bench/bench_shadow.py [--requests N] [--share PCT] [--seed S]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
from anthropic.types import MessageParam

import policyroute
from policyroute.runtime import Router
from policyroute.runtime.shadowing import ShadowConfig

POLICY = """
policy "bench-shadow"
tier haiku  = "claude-haiku-4-5"  { input 1.00  output 5.00   max_tokens 4096 }
tier sonnet = "claude-sonnet-4-6" { input 3.00  output 15.00  max_tokens 16384 }
rule quick: task == "classify" -> haiku
default                        -> sonnet
shadow haiku sample {share}%
"""
HAIKU = "claude-haiku-4-5"
PROMPT = "Please review this function and suggest a cleaner way to write the loop. " * 4
MESSAGES: list[MessageParam] = [{"role": "user", "content": PROMPT}]


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def diff_ci(a: list[float], b: list[float], q: float, seed: int) -> tuple[float, float, float]:
    """b's q-quantile minus a's, in ms, with a bootstrap 95% interval (1,000 resamples)."""
    rng = random.Random(seed)
    point = (pct(b, q) - pct(a, q)) * 1000
    diffs = []
    for _ in range(1000):
        ra = [a[rng.randrange(len(a))] for _ in a]
        rb = [b[rng.randrange(len(b))] for _ in b]
        diffs.append((pct(rb, q) - pct(ra, q)) * 1000)
    diffs.sort()
    return point, diffs[25], diffs[974]


SERVER = """
import sys, time
sys.path.insert(0, {tests!r})
from fake_anthropic import FakeAnthropic, Reply
with FakeAnthropic() as fake:
    fake.record_requests = False
    fake.default_reply = Reply(text="a short answer")
    if {slow!r}:
        fake.responders[{haiku!r}] = lambda body: Reply(text="slow shadow", delay=0.05)
    print(fake.base_url, flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin
"""


@contextlib.contextmanager
def serve(slow: bool) -> Iterator[str]:
    """A fake Anthropic server in a child process; yields its base URL."""
    tests = str(Path(__file__).resolve().parent.parent / "tests")
    code = SERVER.format(tests=tests, slow=slow, haiku=HAIKU)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


class TimedHook:
    """Wraps a router's shadow hook and keeps how long each call took."""

    def __init__(self, router: Router) -> None:
        self.inner = router.shadow
        self.times: list[float] = []
        self.cpu: list[float] = []  # this thread's CPU time: the work, without the waiting
        router.shadow = self  # type: ignore[method-assign]

    def __call__(self, *args: Any) -> bool:
        t, c = time.perf_counter(), time.thread_time()
        try:
            return self.inner(*args)
        finally:
            self.cpu.append(time.thread_time() - c)
            self.times.append(time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000, help="requests per router")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--share", type=float, default=100.0, help="the shadow sample, in percent")
    args = ap.parse_args()
    policy = policyroute.loads(POLICY.replace("{share}", f"{args.share:g}"))
    # Two servers alike, so the slow router's slow shadow answers never reach the others; each
    # in its own process, as the real API is, so its threads do not share this one's GIL.
    with (
        serve(slow=False) as fast_url,
        serve(slow=True) as slow_url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        fast_client = anthropic.Anthropic(base_url=fast_url, api_key="bench")
        slow_client = anthropic.Anthropic(base_url=slow_url, api_key="bench")

        def router(shadow: ShadowConfig | None, client: anthropic.Anthropic) -> Router:
            return Router(policy, client, records=Path(tmp) / "r.jsonl", shadow=shadow)

        off = router(None, fast_client)
        on = router(ShadowConfig(1000.0, pairs=Path(tmp) / "p1.jsonl", seed=args.seed), fast_client)
        slow = router(
            ShadowConfig(1000.0, pairs=Path(tmp) / "p2.jsonl", max_pending=8, seed=args.seed),
            slow_client,
        )
        hooks = {"on": TimedHook(on), "on, slow shadow": TimedHook(slow)}

        def call(r: Router) -> Callable[[], Any]:
            def go() -> Any:
                return r.create(messages=MESSAGES, max_tokens=256, route={"task": "review"})

            return go

        paths = {"off": call(off), "on": call(on), "on, slow shadow": call(slow)}
        for fn in paths.values():  # warm up connections, caches, the shadow workers
            for _ in range(50):
                fn()
        for h in hooks.values():
            h.times.clear()
            h.cpu.clear()
        times: dict[str, list[float]] = {k: [] for k in paths}
        order = list(paths.items())
        for i in range(args.requests):
            k = i % len(order)
            for name, fn in order[k:] + order[:k]:
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
        on.close()
        slow.close()
        print(f"caller latency, {args.requests} requests per router (ms)")
        print(f"{'router':<18}{'p50':>8}{'p90':>8}{'p99':>8}{'p99.9':>8}")
        for name, ts in times.items():
            row = "".join(f"{pct(ts, q) * 1000:8.3f}" for q in (0.5, 0.9, 0.99, 0.999))
            print(f"{name:<18}{row}")
        print("\nadded to the caller against 'off' (ms, bootstrap 95% interval)")
        for name in hooks:
            for q in (0.5, 0.99):
                point, lo, hi = diff_ci(times["off"], times[name], q, args.seed)
                print(f"{name:<18} p{int(q * 100):<3} {point:+7.3f}  [{lo:+.3f}, {hi:+.3f}]")
        print("\nthe shadow hook on the caller's path, wall time (ms)")
        for name, h in hooks.items():
            row = "  ".join(
                f"p{label} {pct(h.times, q) * 1000:.4f}"
                for label, q in (("50", 0.5), ("99", 0.99), ("99.9", 0.999))
            )
            print(f"{name:<18} {row}  max {max(h.times) * 1000:.4f}")
        print("the same, the caller thread's CPU time (ms): the work itself, without waits")
        for name, h in hooks.items():
            row = "  ".join(
                f"p{label} {pct(h.cpu, q) * 1000:.4f}"
                for label, q in (("50", 0.5), ("99", 0.99), ("99.9", 0.999))
            )
            print(f"{name:<18} {row}  max {max(h.cpu) * 1000:.4f}")
        for name, r in (("on", on), ("on, slow shadow", slow)):
            assert r.shadowing is not None
            print(f"{name:<18} shadow stats {r.shadowing.stats.as_dict()}")
        worst = max(pct(h.times, 0.99) for h in hooks.values()) * 1000
        print(
            f"\ntarget: hook p99 < 1 ms (wall): {'met' if worst < 1 else 'MISSED'} ({worst:.4f} ms)"
        )


if __name__ == "__main__":
    main()
