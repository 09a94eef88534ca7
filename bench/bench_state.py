"""What shared state costs: a spend rule's read, and `serve --state` against serve without it.

Part 1, decide(): one policy whose third rule reads `spend.user.day`, decided in one loop
with the variants interleaved at random (so drift and noise hit them alike):

- `no state`: spend missing (what a request decided before any state is attached reads);
- `local`: the spend read from the in-process state;
- `redis`: the spend read from Redis on 127.0.0.1 (one MGET round trip);
- `redis, early rule`: a request an earlier rule decides, the state attached: no read
  (against `early rule, no state`, the same request without it).

Each figure includes attaching the lazy reader (`SpendMeter.attach`, a Request copy), as the
runtime does. Added = the variant's p50 minus `no state`'s.

Part 2, serve: the fake upstream, a redis-server, and two `policyroute serve` processes of
one sticky, spend-reading policy, one in-process and one with `--state redis://...`;
requests go out open-loop at a fixed rate, each at random to one of the two, with a user id
from a small set (so spend and floors are read and written). Latency to the last byte.

    python bench/bench_state.py [--decides 20000] [--requests 3000] [--rate 150]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
from serve_load import Pool, free_port, pct, stop, wait_up

import policyroute
from policyroute.request import Request
from policyroute.runtime.redis_state import RedisState
from policyroute.runtime.spend import SpendMeter
from policyroute.runtime.state import LocalState

ROOT = Path(__file__).resolve().parent.parent
POLICY = """
policy "bench-state"
tier haiku  = "claude-haiku-4-5"  { input 1.00  output 5.00   max_tokens 4096 }
tier sonnet = "claude-sonnet-4-6" { input 3.00  output 15.00  max_tokens 16384 }
tier opus   = "claude-opus-4-7"   { input 5.00  output 25.00  max_tokens 32768 }
keywords hard = ["deadlock", "race condition", "architecture"]
rule hard:    prompt contains any hard          -> opus
rule free:    user.tier == "free"               -> haiku
rule budget:  spend.user.day > 100              -> haiku
rule quick:   length < 300                      -> haiku
default                                         -> sonnet
sticky conversations 10 minutes
"""
PROMPT = "Please review this function and suggest a cleaner way to write the loop. " * 6


def start_redis() -> tuple[subprocess.Popen[bytes], str, str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="bench-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", tmp],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    state = RedisState(url, timeout=1.0)
    deadline = time.monotonic() + 10
    while state.floor("probe", 1) is None and not state.health.up:
        if time.monotonic() > deadline:
            raise SystemExit("redis-server did not start")
        time.sleep(0.05)
        state.health.up = True  # probe again at once
    state.close()
    return proc, url, tmp


def bench_decide(url: str, n: int, seed: int) -> dict[str, list[float]]:
    policy = policyroute.loads(POLICY)
    local, shared = LocalState(), RedisState(url)
    owners = {"policy": "bench-state", "user": "u1"}
    for s in (local, shared):
        s.add_spend(owners, 1.0)
        s.flush()
    meters = {"local": SpendMeter(local), "redis": SpendMeter(shared)}
    reached = Request(PROMPT, user_id="u1")
    early = Request("Find the deadlock in this pool", user_id="u1")

    def no_state() -> object:
        return policy.decide(reached)

    def via(meter: SpendMeter, request: Request) -> object:
        return policy.decide(meter.attach(policy, request, owners))

    variants = {
        "no state": no_state,
        "early rule, no state": lambda: policy.decide(early),
        "local": lambda: via(meters["local"], reached),
        "redis": lambda: via(meters["redis"], reached),
        "redis, early rule": lambda: via(meters["redis"], early),
    }
    assert policy.decide(meters["redis"].attach(policy, reached, owners)).rule == "default"
    rng = random.Random(seed)
    order = [name for name in variants for _ in range(n)]
    rng.shuffle(order)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for name in list(variants) * 200:  # warm up
        variants[name]()
    for name in order:
        fn = variants[name]
        start = time.perf_counter_ns()
        fn()
        times[name].append((time.perf_counter_ns() - start) / 1000)
    shared.close()
    return times


def serve(policy: Path, upstream: str, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    exe = str(Path(sys.executable).with_name("policyroute"))
    args = [exe, "serve", str(policy), "--port", str(port), "--upstream", upstream]
    proc = subprocess.Popen([*args, "--log-level", "warning", *extra], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_up(url, proc, "/healthz")
    return proc, url


def _body(user: str, turn: int) -> bytes:
    messages = [{"role": "user", "content": f"{user}: {PROMPT}"}]
    if turn:
        messages += [{"role": "assistant", "content": "ok"}, {"role": "user", "content": "and?"}]
    body = {"model": "auto", "max_tokens": 256, "messages": messages}
    return json.dumps({**body, "metadata": {"user_id": user}}).encode()


async def open_loop(
    urls: dict[str, str], n: int, rate: float, clients: int, seed: int
) -> dict[str, list[float]]:
    rng = random.Random(seed)
    pools = {name: Pool(url, clients) for name, url in urls.items()}
    results: dict[str, list[float]] = {name: [] for name in urls}

    async def fire(name: str, body: bytes) -> None:
        results[name].append(await pools[name].post("/v1/messages", body))

    tasks = []
    start = time.perf_counter()
    for i in range(n):
        name = rng.choice(list(urls))
        body = _body(f"user{rng.randrange(50)}", rng.randrange(2))
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(name, body)))
    await asyncio.gather(*tasks)
    return results


def row(name: str, xs: list[float], base: list[float] | None, unit: str = "us") -> str:
    p50, p90, p99 = (pct(xs, q) for q in (0.5, 0.9, 0.99))
    added = f"{p50 - pct(base, 0.5):+9.1f}" if base is not None else f"{'':>9}"
    return f"{name:<20} {len(xs):>6} {p50:>9.1f} {p90:>9.1f} {p99:>9.1f} {added}   ({unit})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decides", type=int, default=20000, help="decisions per variant")
    ap.add_argument("--requests", type=int, default=3000, help="open-loop requests (both)")
    ap.add_argument("--rate", type=float, default=150.0, help="requests per second")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("ANTHROPIC_BASE_URL", None)
    redis_proc, url, redis_dir = start_redis()
    procs: list[subprocess.Popen[bytes]] = [redis_proc]
    try:
        times = bench_decide(url, args.decides, args.seed)
        with tempfile.TemporaryDirectory() as tmp:
            policy = Path(tmp) / "bench.route"
            policy.write_text(POLICY)
            up_port = free_port()
            upstream = f"http://127.0.0.1:{up_port}"
            fake = subprocess.Popen(
                [sys.executable, str(ROOT / "tests" / "fake_anthropic.py"), str(up_port)],
                stdout=subprocess.DEVNULL,
                env=env,
            )
            procs.append(fake)
            wait_up(upstream, fake, "/v1/models")
            local_proc, local_url = serve(policy, upstream)
            procs.append(local_proc)
            shared_proc, shared_url = serve(policy, upstream, "--state", url)
            procs.append(shared_proc)
            urls = {"serve": local_url, "serve --state": shared_url}
            httpx2.post(local_url + "/v1/messages", content=_body("warm", 0))
            asyncio.run(open_loop(urls, 300, args.rate, args.clients, 0))  # warm up
            served = asyncio.run(open_loop(urls, args.requests, args.rate, args.clients, args.seed))
    finally:
        stop(procs)
        shutil.rmtree(redis_dir, ignore_errors=True)

    print(
        f"machine: {os.cpu_count()} cores, load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after (other work shares the cores when above ~1)"
    )
    print(f"decide() of a request that reaches `spend.user.day > 100`, {args.decides} each")
    print(f"{'variant':<20} {'n':>6} {'p50':>9} {'p90':>9} {'p99':>9} {'added p50':>9}")
    for name, xs in times.items():
        base = "early rule, no state" if "early" in name else "no state"
        print(row(name, xs, None if name == base else times[base]))
    print(
        f"serve, open loop {args.requests} requests at {args.rate:g}/s, {args.clients} "
        "connections each, 50 users, half second turns (sticky and spend read and written)"
    )
    print(f"{'variant':<20} {'n':>6} {'p50':>9} {'p90':>9} {'p99':>9} {'added p50':>9}")
    ms = {k: [x * 1000 for x in v] for k, v in served.items()}
    print(row("serve", ms["serve"], None, "ms"))
    print(row("serve --state", ms["serve --state"], ms["serve"], "ms"))


if __name__ == "__main__":
    main()
