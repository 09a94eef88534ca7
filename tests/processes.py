"""What the tests that start real processes (serve, redis-server, the Claude Code CLI) share:
a port for one to listen on, how long a start may take, and stopping a process with
everything it started.

The suite runs under pytest-xdist, so a started process shares 2 cores with the other
workers' tests (and, here, with other jobs): a start takes several times its CPU time.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# How long a start may take before the test gives up: a hang guard, never a measure. One
# `serve` imports about 5 CPU s (the SDK's types), `--workers 2` three times that; at load 9
# under xdist a start was seen to take over 30 s, and a `--workers 2` one over 90 s.
START_TIMEOUT = 180.0


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL to a process not yet reaped and to all it started, which share its process
    group (`start_new_session=True`): killing only a `--workers` parent leaves its workers
    listening on the port after the test, and holding the pipes the test reads."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def stop_group(proc: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM to the process (serve stops its own workers), then kill_group if it is still
    running after `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _own_ports() -> Iterator[int]:
    """This worker's slice of the ports just below the kernel's ephemeral range, from a random
    point, each once. bind(0) and every outgoing connection take ports from the ephemeral
    range, so a port found free there could be taken by another worker's client connection
    in the seconds before a started `serve` binds it (it imports first); below that range
    only our own workers bind, each in its own slice."""
    high = _ephemeral_low()
    low = max(1024, high - 12000)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    size = (high - low) // max(1, count)
    start = low + int(worker) * size if worker.isdigit() else low
    ports = list(range(start, start + size))
    offset = random.randrange(len(ports))
    return itertools.cycle(ports[offset:] + ports[:offset])


_PORTS: Iterator[int] | None = None


def free_port() -> int:
    """A loopback port nothing listens on, for a process the test starts (`--port`); never
    the same one twice in a worker until its slice has gone round."""
    global _PORTS
    if _PORTS is None:
        _PORTS = _own_ports()
    for port in _PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use: another run's, or an earlier test's still closing
            return port
    raise AssertionError("unreachable: the cycle is endless")
