"""`policyroute serve` as a user starts it: the installed command in its own process (uvicorn
inside), on a free loopback port, stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
from processes import START_TIMEOUT, free_port, kill_group

EXE = str(Path(sys.executable).with_name("policyroute"))
BODY = {"model": "auto", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def run_serve(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """A `serve` that is expected to refuse to start: its exit status and output."""
    return subprocess.run(
        [EXE, "serve", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(env),
    )


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment without anything that would configure serve by accident."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("POLICYROUTE_", "OTEL_", "PROMETHEUS_MULTIPROC"))
        and k != "ANTHROPIC_BASE_URL"
    }
    return {**env, **(extra or {})}


class Served:
    """A running `policyroute serve`; `stop()` sends SIGTERM and collects its stderr."""

    def __init__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        port: int | None = None,
        probe_headers: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self._log = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed by stop)
        self.proc = subprocess.Popen(
            [EXE, "serve", *args, "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            text=True,
            env=clean_env(env),
            start_new_session=True,  # its own process group, for kill_group
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.stderr = ""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                httpx2.get(self.url + "/livez", headers=probe_headers or {}, timeout=2)
                break
            except httpx2.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"serve did not start: {self.stderr}") from None
                time.sleep(0.05)

    def log(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read()

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                kill_group(self.proc)
        self.stderr = self.log()
        self._log.close()
        return self.stderr

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self._log.closed:
            self.stop()


def metric(text: str, name: str) -> float:
    """The value of one sample line (`name{labels}` exactly as exposed), 0 when absent."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0
