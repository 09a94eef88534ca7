"""The load generator and process plumbing the serve benchmarks share (bench_serve.py,
bench_state.py): a minimal keep-alive HTTP/1.1 client pool, ports, start-up waits, CPU
readings from /proc and percentiles."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import httpx2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes], path: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the process exited ({proc.returncode})")
        try:
            httpx2.get(url + path, timeout=1)
            return
        except httpx2.TransportError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


def stop(procs: Iterable[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process, then wait for each (killed after 15 s)."""
    procs = list(procs)
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()


def _stat(pid: int) -> list[str]:
    # The command name may hold spaces or parentheses: the fields start after the last ")".
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux), or None where /proc is not there."""
    try:
        fields = _stat(pid)
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU time of a process and every live descendant (a server that forks its workers)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for entry in entries:
        if entry.isdigit():
            try:
                parent = int(_stat(int(entry))[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        cpu = cpu_seconds(p)
        if cpu is None:
            if p == pid:
                return None
            continue
        total += cpu
        todo.extend(children.get(p, ()))
    return total


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


class Conn:
    """A minimal HTTP/1.1 keep-alive client connection: the load generator must cost far less
    than what it measures, on the same two cores (httpx costs about a millisecond a request)."""

    def __init__(self, host: str, port: int, api_key: str = "bench") -> None:
        self.host, self.port, self.api_key = host, port, api_key
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _send(self, data: bytes) -> bytes:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(data)
        return await self.reader.readuntil(b"\r\n\r\n")

    async def request(self, path: str, body: bytes) -> int:
        head = (
            f"POST {path} HTTP/1.1\r\nhost: {self.host}\r\nx-api-key: {self.api_key}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        ).encode()
        reused = self.writer is not None
        try:
            raw = await self._send(head + body)
        except (asyncio.IncompleteReadError, ConnectionError):
            if not reused:
                raise
            # The server closed the idle keep-alive connection (uvicorn does after 5 s, at
            # a low rate): a new one, as any HTTP client does.
            self.writer = None
            raw = await self._send(head + body)
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


class Pool:
    def __init__(self, url: str, size: int, api_key: str = "bench") -> None:
        host, port = url.removeprefix("http://").split(":")
        # Last in, first out: at a low rate the same few connections stay warm.
        self.free: asyncio.Queue[Conn] = asyncio.LifoQueue()
        for _ in range(size):
            self.free.put_nowait(Conn(host, int(port), api_key))

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
