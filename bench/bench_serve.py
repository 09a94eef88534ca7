"""`policyroute serve` overhead: the proxy against the same upstream called directly, in one run.

Three processes on 127.0.0.1: the fake Anthropic upstream, `policyroute serve` in front of
it (as a user starts it), and this load generator. Requests go out open-loop at a fixed rate
(default 200/s in all) from a pool of tens of client connections per target; each is sent at
random either directly to the upstream (with the model the policy would pick) or through a
proxy (with `model="auto"`), half JSON and half streaming, so drift and noise hit every path
alike. Latency is to the last byte of the answer. Added latency = proxy percentile - direct
percentile. A second phase measures throughput: closed-loop clients as fast as they go.

- `--baseline PATH`: a second `policyroute` executable (another checkout's venv) served
  beside this one and interleaved with it: before and after in one run.
- `--compare-litellm --litellm-venv PATH`: LiteLLM's proxy from that venv (see
  litellm_peer.py) as a further target. It saturates far below 200/s, so its open-loop
  figures come from a phase of its own at `--litellm-rate`, where direct, policyroute and
  LiteLLM are interleaved alike.

    python bench/bench_serve.py [--requests 4000] [--rate 200] [--clients 32]
    python bench/bench_serve.py --compare-litellm --litellm-venv /work/litellm-venv
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx2
from serve_load import Pool, cpu_seconds, free_port, pct, stop, tree_cpu_seconds, wait_up

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "policies" / "coding-assistant.route"
PROMPT = "Please review this function and suggest a cleaner way to write the loop. " * 4


@dataclass
class Target:
    name: str
    url: str
    model: str  # what its clients ask for: the tier's model directly, or "auto"
    pid: int | None = None
    api_key: str = "bench"
    tree: bool = False  # its CPU is its process tree's (a server with worker processes)

    def cpu(self) -> float | None:
        if self.pid is None:
            return None
        return (tree_cpu_seconds if self.tree else cpu_seconds)(self.pid)


def _body(model: str, stream: bool) -> bytes:
    body = {
        "model": model,
        "max_tokens": 256,
        "stream": stream,
        "messages": [{"role": "user", "content": PROMPT}],
    }
    return json.dumps(body).encode()


Results = dict[tuple[str, bool], list[float]]


async def open_loop(
    targets: list[Target], n: int, rate: float, clients: int, seed: int
) -> tuple[Results, float, int]:
    rng = random.Random(seed)
    plan = [(rng.choice(targets), rng.random() < 0.5) for _ in range(n)]
    results: Results = {(t.name, s): [] for t in targets for s in (False, True)}
    pools = {t.name: Pool(t.url, clients, t.api_key) for t in targets}
    late = 0

    async def fire(t: Target, stream: bool) -> None:
        results[(t.name, stream)].append(
            await pools[t.name].post("/v1/messages", _body(t.model, stream))
        )

    tasks = []
    start = time.perf_counter()
    for i, (target, stream) in enumerate(plan):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.005:
            late += 1
        tasks.append(asyncio.create_task(fire(target, stream)))
    await asyncio.gather(*tasks)
    return results, n / (time.perf_counter() - start), late


async def closed_loop(t: Target, n: int, clients: int) -> float:
    pool = Pool(t.url, clients, t.api_key)
    todo = iter(range(n))

    async def worker() -> None:
        for i in todo:
            await pool.post("/v1/messages", _body(t.model, i % 2 == 1))

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return n / (time.perf_counter() - start)


async def sequential(t: Target, model: str, stream: bool, n: int) -> None:
    pool = Pool(t.url, 1, t.api_key)
    for _ in range(n):
        await pool.post("/v1/messages", _body(model, stream))


def sequential_cpu(t: Target, model: str, stream: bool, n: int) -> float | None:
    """CPU of a proxy per request, one request at a time (least disturbed by sharing)."""
    asyncio.run(sequential(t, model, stream, max(10, n // 10)))
    before = t.cpu()
    asyncio.run(sequential(t, model, stream, n))
    after = t.cpu()
    return None if before is None or after is None else (after - before) / n


def open_loop_cpu(
    targets: list[Target], n: int, rate: float, clients: int, seed: int
) -> tuple[Results, float, int, dict[str, float | None]]:
    before = {t.name: t.cpu() for t in targets}
    results, achieved, late = asyncio.run(open_loop(targets, n, rate, clients, seed))
    per: dict[str, float | None] = {}
    for t in targets:
        after, b = t.cpu(), before[t.name]
        count = len(results[(t.name, False)]) + len(results[(t.name, True)])
        per[t.name] = None if after is None or b is None or not count else (after - b) / count
    return results, achieved, late, per


async def client_cpu(direct: str, model: str, n: int) -> dict[tuple[str, bool], float]:
    """CPU per upstream request of the two candidate clients, in this process."""
    import aiohttp

    out: dict[tuple[str, bool], float] = {}
    headers = {"x-api-key": "bench", "content-type": "application/json"}
    transport = httpx2.AsyncHTTPTransport()
    async with aiohttp.ClientSession() as session:
        for stream in (False, True):
            body = _body(model, stream)
            start = time.process_time()
            for _ in range(n):
                request = httpx2.Request(
                    "POST", direct + "/v1/messages", headers=headers, content=body
                )
                response = await transport.handle_async_request(request)
                async for _chunk in response.aiter_bytes():
                    pass
                await response.aclose()
            out[("httpx2", stream)] = (time.process_time() - start) / n
            start = time.process_time()
            for _ in range(n):
                async with session.post(direct + "/v1/messages", data=body, headers=headers) as r:
                    async for _chunk in r.content.iter_any():
                        pass
            out[("aiohttp", stream)] = (time.process_time() - start) / n
    await transport.aclose()
    return out


def serve(exe: str, port: int, upstream: str, records: Path) -> subprocess.Popen[bytes]:
    args = [exe, "serve", str(POLICY), "--port", str(port), "--upstream", upstream]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("ANTHROPIC_BASE_URL", None)
    return subprocess.Popen(
        [*args, "--records", str(records), "--log-level", "warning"],
        stderr=subprocess.DEVNULL,
        env=env,
    )


def latency_table(title: str, results: Results, targets: list[Target]) -> None:
    print(title)
    print(
        f"{'kind':<7} {'path':<22} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'mean ms':>8}"
    )
    for stream in (False, True):
        kind = "stream" if stream else "json"
        d = [x * 1000 for x in results[("direct", stream)]]
        for t in targets:
            xs = [x * 1000 for x in results[(t.name, stream)]]
            print(
                f"{kind:<7} {t.name:<22} {len(xs):>5} {pct(xs, 0.5):>8.2f} {pct(xs, 0.9):>8.2f} "
                f"{pct(xs, 0.99):>8.2f} {statistics.fmean(xs):>8.2f}"
            )
            if t.name != "direct":
                print(
                    f"{kind:<7} {'  added':<22} {'':>5} {pct(xs, 0.5) - pct(d, 0.5):>8.2f} "
                    f"{pct(xs, 0.9) - pct(d, 0.9):>8.2f} {pct(xs, 0.99) - pct(d, 0.99):>8.2f} "
                    f"{statistics.fmean(xs) - statistics.fmean(d):>8.2f}"
                )


def added(results: Results, name: str, stream: bool) -> str:
    d = [x * 1000 for x in results[("direct", stream)]]
    p = [x * 1000 for x in results[(name, stream)]]
    # A difference of two percentiles, not a percentile of differences (the paths are
    # interleaved, not paired): below zero it is noise of the tail, shown as such.
    return " / ".join(
        "≤0" if (x := pct(p, q) - pct(d, q)) < 0 else f"{x:.2f}" for q in (0.5, 0.9, 0.99)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=4000, help="open-loop requests (all paths)")
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second, all paths")
    ap.add_argument("--clients", type=int, default=32, help="client connections per target")
    ap.add_argument("--throughput-requests", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--sequential-requests", type=int, default=500, help="per kind, for the CPU figures"
    )
    ap.add_argument("--baseline", metavar="EXE", help="another `policyroute` to serve beside")
    ap.add_argument("--compare-litellm", action="store_true", help="LiteLLM's proxy as a peer")
    ap.add_argument("--litellm-venv", type=Path, default=os.environ.get("LITELLM_VENV"))
    ap.add_argument("--litellm-rate", type=float, default=15.0, help="its phase's rate, all paths")
    ap.add_argument("--litellm-requests", type=int, default=600)
    ap.add_argument("--litellm-throughput-requests", type=int, default=300)
    ap.add_argument("--litellm-sequential-requests", type=int, default=100)
    args = ap.parse_args()
    if args.baseline and not os.access(args.baseline, os.X_OK):
        ap.error(f"--baseline {args.baseline}: not an executable file")
    if args.compare_litellm and args.litellm_venv is None:
        ap.error("--compare-litellm needs --litellm-venv PATH (or LITELLM_VENV)")
    load_before = os.getloadavg()[0]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())

    up_port = free_port()
    direct_url = f"http://127.0.0.1:{up_port}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs: list[subprocess.Popen[bytes]] = []
    peer: Target | None = None
    peer_note = ""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            fake = subprocess.Popen(
                [sys.executable, str(ROOT / "tests" / "fake_anthropic.py"), str(up_port)],
                stdout=subprocess.DEVNULL,
                env=env,
            )
            procs.append(fake)
            wait_up(direct_url, fake, "/v1/models")
            exes = {"policyroute": str(Path(sys.executable).with_name("policyroute"))}
            if args.baseline:
                exes["policyroute (baseline)"] = args.baseline
            proxies = []
            for name, exe in exes.items():
                port = free_port()
                served = serve(exe, port, direct_url, Path(tmp) / f"records-{len(procs)}.jsonl")
                procs.append(served)
                proxies.append(Target(name, f"http://127.0.0.1:{port}", "auto", served.pid))
            for t in proxies:
                wait_up(t.url, procs[1 + proxies.index(t)], "/healthz")
            model = httpx2.post(
                proxies[0].url + "/v1/messages",
                content=_body("auto", False),
                headers={"x-api-key": "b"},
            ).json()["model"]
            direct = Target("direct", direct_url, model)
            if args.compare_litellm:
                import litellm_peer

                proc, url, version, how = litellm_peer.start(
                    args.litellm_venv, direct_url, Path(tmp)
                )
                procs.append(proc)
                peer = Target("litellm", url, "auto", proc.pid, litellm_peer.MASTER_KEY, tree=True)
                picked = litellm_peer.routed_to(url, _body("auto", False))
                peer_note = f"LiteLLM {version}, `auto` = {how} (picked {picked}), one worker"
            main_targets = [direct, *proxies]
            # Warm every path (connections, caches) before measuring.
            asyncio.run(open_loop([*main_targets, *([peer] if peer else [])], 200, 50, 8, 0))
            results, achieved, late, open_cpu = open_loop_cpu(
                main_targets, args.requests, args.rate, args.clients, args.seed
            )
            if peer is not None:
                peer_targets = [direct, *proxies, peer]
                peer_results, peer_achieved, peer_late, peer_cpu = open_loop_cpu(
                    peer_targets, args.litellm_requests, args.litellm_rate, args.clients, args.seed
                )
            throughput: dict[str, list[float]] = {t.name: [] for t in main_targets}
            for _ in range(2):  # interleaved rounds: drift hits every target alike
                for t in main_targets:
                    rate = asyncio.run(closed_loop(t, args.throughput_requests // 2, args.clients))
                    throughput[t.name].append(rate)
            if peer is not None:
                throughput["litellm"] = [
                    asyncio.run(closed_loop(peer, args.litellm_throughput_requests, args.clients))
                ]
            seq: dict[tuple[str, str, bool], float | None] = {}
            for t in [*proxies, *([peer] if peer else [])]:
                n = args.litellm_sequential_requests if t is peer else args.sequential_requests
                for stream in (False, True):
                    seq[(t.name, "routed", stream)] = sequential_cpu(t, "auto", stream, n)
                    if t is not peer:
                        seq[(t.name, "pass-through", stream)] = sequential_cpu(t, model, stream, n)
            clients = asyncio.run(client_cpu(direct_url, model, args.sequential_requests))
        finally:
            stop(procs)

    print(
        f"{started}; machine: {os.cpu_count()} cores, load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after (other work shares the cores when above ~1)"
    )
    print(
        f"open loop: {args.requests} requests at {args.rate:g}/s over {len(main_targets)} "
        f"paths (achieved {achieved:.0f}/s, {late} sent >5 ms late), {args.clients} client "
        f"connections per target, model {model}"
    )
    latency_table("", results, main_targets)
    if peer is not None:
        print(
            f"\npeer phase ({peer_note}): {args.litellm_requests} requests at "
            f"{args.litellm_rate:g}/s over {len(peer_targets)} paths (achieved "
            f"{peer_achieved:.0f}/s, {peer_late} sent >5 ms late)"
        )
        latency_table("", peer_results, peer_targets)
    print()
    phases = [("open-loop phase", open_cpu)] + ([("peer phase", peer_cpu)] if peer else [])
    for phase, cpus in phases:
        for name, cpu in cpus.items():
            if cpu is not None and name != "direct":
                print(f"{name} CPU: {cpu * 1000:.2f} ms per request (user + system, {phase})")
    for (name, kind, stream), cpu in seq.items():
        if cpu is not None:
            print(
                f"{name} CPU, sequential, {kind} {'stream' if stream else 'json'}: "
                f"{cpu * 1000:.2f} ms per request"
            )
    thr = {k: statistics.fmean(v) for k, v in throughput.items()}
    for (name, stream), cpu in clients.items():
        print(
            f"upstream client CPU, {name} {'stream' if stream else 'json'}: "
            f"{cpu * 1000:.2f} ms per request"
        )
    print(
        f"throughput, {args.clients} closed-loop clients (half streaming): "
        + ", ".join(f"{k} {' + '.join(f'{x:.0f}' for x in v)}/s" for k, v in throughput.items())
    )
    print("\nsummary: added ms p50 / p90 / p99 at the phase's rate; throughput as share of direct")
    rows = [(t, results, args.rate) for t in proxies]
    if peer is not None:
        rows += [(t, peer_results, args.litellm_rate) for t in [*proxies, peer]]
    print("| path | rate/s | n | JSON added | stream added | throughput/s | of direct | CPU/req |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for t, res, rate in rows:
        cpu = " / ".join(
            "-" if (c := seq.get((t.name, "routed", s))) is None else f"{c * 1000:.2f} ms"
            for s in (False, True)
        )
        print(
            f"| {t.name} | {rate:g} | {len(res[(t.name, False)]) + len(res[(t.name, True)])} | "
            f"{added(res, t.name, False)} | {added(res, t.name, True)} | "
            f"{thr[t.name]:.0f} | {thr[t.name] / thr['direct']:.0%} | {cpu} |"
        )
    print(f"| direct | | | | | {thr['direct']:.0f} | 100% | |")


if __name__ == "__main__":
    main()
