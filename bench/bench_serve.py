"""`policyroute serve` overhead: the proxy against the same upstream called directly, in one run.

Three processes on 127.0.0.1: the fake Anthropic upstream, `policyroute serve` in front of
it (as a user starts it), and this load generator. Requests go out open-loop at a fixed rate
(default 200/s) from a pool of tens of client connections; each is sent at random either
directly to the upstream (with the model the policy would pick) or through the proxy (with
`model="auto"`), half JSON and half streaming, so drift and noise hit both paths alike.
Latency is to the last byte of the answer. Added latency = proxy percentile - direct
percentile. A second phase measures throughput: closed-loop clients as fast as they go.

    python bench/bench_serve.py [--requests 4000] [--rate 200] [--clients 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "policies" / "coding-assistant.route"
PROMPT = "Please review this function and suggest a cleaner way to write the loop. " * 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(url: str, proc: subprocess.Popen[bytes], path: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the process exited ({proc.returncode})")
        try:
            httpx2.get(url + path, timeout=1)
            return
        except httpx2.TransportError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux), or None where /proc is not there."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


class _Conn:
    """A minimal HTTP/1.1 keep-alive client connection: the load generator must cost far less
    than what it measures, on the same two cores (httpx costs about a millisecond a request)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, path: str, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nhost: {self.host}\r\nx-api-key: bench\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        else:  # delimited by close
            await self.reader.read()
        if headers.get("connection") == "close" or (
            "content-length" not in headers and (headers.get("transfer-encoding") != "chunked")
        ):
            self.writer.close()
            self.writer = None
        return status


class _Pool:
    def __init__(self, url: str, size: int) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.free: asyncio.Queue[_Conn] = asyncio.Queue()
        for _ in range(size):
            self.free.put_nowait(_Conn(host, int(port)))

    async def post(self, path: str, body: bytes) -> float:
        conn = await self.free.get()
        try:
            start = time.perf_counter()
            status = await conn.request(path, body)
            took = time.perf_counter() - start
        finally:
            self.free.put_nowait(conn)
        if status != 200:
            raise RuntimeError(f"HTTP {status}")
        return took


def _body(model: str, stream: bool) -> bytes:
    body = {
        "model": model,
        "max_tokens": 256,
        "stream": stream,
        "messages": [{"role": "user", "content": PROMPT}],
    }
    return json.dumps(body).encode()


async def open_loop(
    direct: str, proxy: str, model: str, n: int, rate: float, clients: int, seed: int
) -> tuple[dict[tuple[str, bool], list[float]], float, int]:
    rng = random.Random(seed)
    plan = [(rng.random() < 0.5, rng.random() < 0.5) for _ in range(n)]
    results: dict[tuple[str, bool], list[float]] = {
        (p, s): [] for p in ("direct", "proxy") for s in (False, True)
    }
    pools = {"direct": _Pool(direct, clients), "proxy": _Pool(proxy, clients)}
    late = 0

    async def fire(via: str, stream: bool) -> None:
        body = _body("auto" if via == "proxy" else model, stream)
        results[(via, stream)].append(await pools[via].post("/v1/messages", body))

    tasks = []
    start = time.perf_counter()
    for i, (via_proxy, stream) in enumerate(plan):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.005:
            late += 1
        tasks.append(asyncio.create_task(fire("proxy" if via_proxy else "direct", stream)))
    await asyncio.gather(*tasks)
    return results, n / (time.perf_counter() - start), late


async def closed_loop(url: str, model: str, n: int, clients: int) -> float:
    pool = _Pool(url, clients)
    todo = iter(range(n))

    async def worker() -> None:
        for i in todo:
            await pool.post("/v1/messages", _body(model, i % 2 == 1))

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return n / (time.perf_counter() - start)


async def sequential(url: str, model: str, stream: bool, n: int) -> None:
    pool = _Pool(url, 1)
    for _ in range(n):
        await pool.post("/v1/messages", _body(model, stream))


def proxy_cpu_sequential(
    proxy: str, pid: int, model: str, n: int
) -> dict[tuple[str, bool], float | None]:
    """CPU of the proxy per request, one request at a time (least disturbed by sharing)."""
    out: dict[tuple[str, bool], float | None] = {}
    for which in ("auto", model):
        for stream in (False, True):
            asyncio.run(sequential(proxy, which, stream, 50))
            before = _cpu_seconds(pid)
            asyncio.run(sequential(proxy, which, stream, n))
            after = _cpu_seconds(pid)
            key = ("routed" if which == "auto" else "pass-through", stream)
            out[key] = None if before is None or after is None else (after - before) / n
    return out


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=4000, help="open-loop requests (both paths)")
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second")
    ap.add_argument("--clients", type=int, default=32, help="concurrent client connections")
    ap.add_argument("--throughput-requests", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--sequential-requests", type=int, default=500, help="per kind, for the CPU figures"
    )
    args = ap.parse_args()
    load_before = os.getloadavg()[0]

    up_port, proxy_port = _free_port(), _free_port()
    direct, proxy = f"http://127.0.0.1:{up_port}", f"http://127.0.0.1:{proxy_port}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("ANTHROPIC_BASE_URL", None)
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            fake = subprocess.Popen(
                [sys.executable, str(ROOT / "tests" / "fake_anthropic.py"), str(up_port)],
                stdout=subprocess.DEVNULL,
                env=env,
            )
            procs.append(fake)
            _wait_up(direct, fake, "/v1/models")
            served = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("policyroute")),
                    "serve",
                    str(POLICY),
                    "--port",
                    str(proxy_port),
                    "--upstream",
                    direct,
                    "--records",
                    str(Path(tmp) / "records.jsonl"),
                    "--log-level",
                    "warning",
                ],
                stderr=subprocess.DEVNULL,
                env=env,
            )
            procs.append(served)
            _wait_up(proxy, served, "/healthz")
            model = httpx2.post(
                proxy + "/v1/messages", content=_body("auto", False), headers={"x-api-key": "b"}
            ).json()["model"]
            # Warm both paths (connections, caches) before measuring.
            asyncio.run(open_loop(direct, proxy, model, 200, args.rate, args.clients, 0))
            cpu_before = _cpu_seconds(served.pid)
            results, achieved, late = asyncio.run(
                open_loop(direct, proxy, model, args.requests, args.rate, args.clients, args.seed)
            )
            cpu_after = _cpu_seconds(served.pid)
            thr_direct = asyncio.run(
                closed_loop(direct, model, args.throughput_requests, args.clients)
            )
            thr_proxy = asyncio.run(
                closed_loop(proxy, "auto", args.throughput_requests, args.clients)
            )
            seq = proxy_cpu_sequential(proxy, served.pid, model, args.sequential_requests)
            clients = asyncio.run(client_cpu(direct, model, args.sequential_requests))
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()

    print(
        f"machine: {os.cpu_count()} cores, load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after (other work shares the cores when above ~1)"
    )
    print(
        f"open loop: {args.requests} requests at {args.rate:g}/s (achieved {achieved:.0f}/s, "
        f"{late} sent >5 ms late), {args.clients} client connections, model {model}"
    )
    print(
        f"{'kind':<7} {'path':<7} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'mean ms':>8}"
    )
    for stream in (False, True):
        kind = "stream" if stream else "json"
        for path in ("direct", "proxy"):
            xs = [x * 1000 for x in results[(path, stream)]]
            print(
                f"{kind:<7} {path:<7} {len(xs):>5} {_pct(xs, 0.5):>8.2f} {_pct(xs, 0.9):>8.2f} "
                f"{_pct(xs, 0.99):>8.2f} {statistics.fmean(xs):>8.2f}"
            )
        d = [x * 1000 for x in results[("direct", stream)]]
        p = [x * 1000 for x in results[("proxy", stream)]]
        print(
            f"{kind:<7} {'added':<7} {'':>5} {_pct(p, 0.5) - _pct(d, 0.5):>8.2f} "
            f"{_pct(p, 0.9) - _pct(d, 0.9):>8.2f} {_pct(p, 0.99) - _pct(d, 0.99):>8.2f} "
            f"{statistics.fmean(p) - statistics.fmean(d):>8.2f}"
        )
    proxied = len(results[("proxy", False)]) + len(results[("proxy", True)])
    if cpu_before is not None and cpu_after is not None and proxied:
        print(
            f"proxy CPU: {(cpu_after - cpu_before) / proxied * 1000:.2f} ms per proxied request "
            "(user + system, open-loop phase)"
        )
    for (kind, stream), cpu in seq.items():
        if cpu is not None:
            print(
                f"proxy CPU, sequential, {kind} {'stream' if stream else 'json'}: "
                f"{cpu * 1000:.2f} ms per request"
            )
    for (name, stream), cpu in clients.items():
        print(
            f"upstream client CPU, {name} {'stream' if stream else 'json'}: "
            f"{cpu * 1000:.2f} ms per request"
        )
    print(
        f"throughput, {args.clients} closed-loop clients, {args.throughput_requests} requests "
        f"(half streaming): direct {thr_direct:.0f}/s, proxy {thr_proxy:.0f}/s"
    )


if __name__ == "__main__":
    main()
