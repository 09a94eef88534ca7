"""What shadow traffic adds to the caller's latency, side by side in one run.

Three routers call the same fake Anthropic server on 127.0.0.1 through the real SDK, request
by request in rotating order so drift falls on all alike:

- `off`: the policy's `shadow` statement, but no ShadowConfig (nothing shadowed);
- `on`: every request shadowed (`sample 100%`), shadow answers as fast as the real ones;
- `on, slow shadow`: the same, shadow answers taking 50 ms, so the workers are always busy
  and the bounded queue fills (skips are counted).

It reports the caller's latency percentiles per router, the difference of each shadowed
router's p50/p99 against `off` (with a bootstrap 95% interval), and the time the shadow hook
itself takes on the caller's path (sampling, budget reservation, queueing), which is all the
work shadowing adds there: the shadow call runs on worker threads. Target: the hook's p99
under 1 ms.

    python bench/bench_shadow.py [--requests N] [--seed S]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
from anthropic.types import MessageParam

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fake_anthropic import FakeAnthropic, Reply

import policyroute
from policyroute.runtime import Router
from policyroute.runtime.shadow import ShadowConfig

POLICY = """
policy "bench-shadow"
tier haiku  = "claude-haiku-4-5"  { input 1.00  output 5.00   max_tokens 4096 }
tier sonnet = "claude-sonnet-4-6" { input 3.00  output 15.00  max_tokens 16384 }
rule quick: task == "classify" -> haiku
default                        -> sonnet
shadow haiku sample 100%
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


class TimedHook:
    """Wraps a router's shadow hook and keeps how long each call took."""

    def __init__(self, router: Router) -> None:
        self.inner = router.shadow
        self.times: list[float] = []
        router.shadow = self  # type: ignore[method-assign]

    def __call__(self, *args: Any) -> bool:
        t = time.perf_counter()
        try:
            return self.inner(*args)
        finally:
            self.times.append(time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000, help="requests per router")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    policy = policyroute.loads(POLICY)
    # Two servers alike, so the slow router's slow shadow answers never reach the others.
    with (
        FakeAnthropic() as fake,
        FakeAnthropic() as slow_fake,
        tempfile.TemporaryDirectory() as tmp,
    ):
        for f in (fake, slow_fake):
            f.record_requests = False
            f.default_reply = Reply(text="a short answer")
        slow_fake.responders[HAIKU] = lambda body: Reply(text="slow shadow", delay=0.05)
        fast_client = anthropic.Anthropic(base_url=fake.base_url, api_key="bench")
        slow_client = anthropic.Anthropic(base_url=slow_fake.base_url, api_key="bench")

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
        print("\nthe shadow hook on the caller's path (ms)")
        for name, h in hooks.items():
            row = "  ".join(
                f"p{label} {pct(h.times, q) * 1000:.4f}"
                for label, q in (("50", 0.5), ("99", 0.99), ("99.9", 0.999))
            )
            print(f"{name:<18} {row}  max {max(h.times) * 1000:.4f}")
        for name, r in (("on", on), ("on, slow shadow", slow)):
            assert r.shadowing is not None
            print(f"{name:<18} shadow stats {r.shadowing.stats.as_dict()}")
        worst = max(pct(h.times, 0.99) for h in hooks.values()) * 1000
        print(f"\ntarget: hook p99 < 1 ms: {'met' if worst < 1 else 'MISSED'} ({worst:.4f} ms)")


if __name__ == "__main__":
    main()
