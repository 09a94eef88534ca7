"""Health for orchestrators, and what a reload tells the log.

- `GET /livez`: the process answers (a liveness probe: restart me if this fails).
- `GET /readyz`: 200 when a policy is loaded, the server is not draining (SIGTERM received)
  and not at its concurrency limit; 503 otherwise, with the reasons (a readiness probe:
  send me traffic or not).
- `GET /healthz`: the detail: policy, revision, when it was loaded, the last reload error
  (cleared by the next good load), in-flight requests, the worker's pid.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("policyroute.server")

# Set on SIGTERM or SIGINT: requests already accepted finish, and readiness says
# "draining" so a load balancer sends no more.
DRAINING = threading.Event()


def watch_for_drain() -> None:
    """Chain onto the server's SIGTERM/SIGINT handlers (uvicorn installs them before the
    app starts) so the drain is seen here. Only the main thread may set handlers; a server
    run in another thread (tests, embedding) is left as it is."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            DRAINING.set()
            if callable(previous):
                previous(signum, frame)

        signal.signal(sig, handler)


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Health:
    """The reload history and the live counts the probes read."""

    def __init__(self, max_concurrency: int = 0) -> None:
        self.max_concurrency = max_concurrency
        self.in_flight = 0
        self.loaded_at = time.time()
        self.revision: str | None = None
        self.last_reload_error: str | None = None
        self.last_reload_error_at: float | None = None

    def loaded(self, policy: Any) -> None:
        """A revision went live (the first load or a reload)."""
        old, new = self.revision, getattr(policy, "revision", None)
        self.revision = new
        self.loaded_at = time.time()
        fixed = self.last_reload_error is not None
        self.last_reload_error = None
        self.last_reload_error_at = None
        if old is None:
            return
        log.info(
            "policy reloaded: revision %s -> %s%s",
            old,
            new,
            " (the last reload error is cleared)" if fixed else "",
            extra={"event": "reload", "old_revision": old, "new_revision": new},
        )

    def rejected(self, error: Exception) -> None:
        text = str(error)
        self.last_reload_error = text.splitlines()[0] if text else "rejected"
        self.last_reload_error_at = time.time()
        log.warning(
            "policy reload rejected, revision %s keeps serving: %s",
            self.revision,
            self.last_reload_error,
            extra={"event": "reload_rejected", "old_revision": self.revision},
        )

    def over_limit(self) -> bool:
        return 0 < self.max_concurrency <= self.in_flight

    def readiness(self, policy: Any) -> tuple[bool, list[str]]:
        reasons = []
        if policy is None:
            reasons.append("no policy loaded yet")
        if DRAINING.is_set():
            reasons.append("draining: shutting down")
        if self.over_limit():
            reasons.append(f"at the concurrency limit ({self.max_concurrency} in flight)")
        return not reasons, reasons

    def detail(self, policy: Any, sticky_conversations: int | None) -> dict[str, Any]:
        ready, reasons = self.readiness(policy)
        return {
            "status": "ok" if policy is not None else "starting",
            "ready": ready,
            "not_ready_because": reasons,
            "policy": getattr(policy, "name", None),
            "revision": getattr(policy, "revision", None),
            "loaded_at": _stamp(self.loaded_at),
            "last_reload_error": self.last_reload_error,
            "last_reload_error_at": (
                _stamp(self.last_reload_error_at) if self.last_reload_error_at else None
            ),
            "in_flight": self.in_flight,
            "sticky_conversations": sticky_conversations,
            # Which worker answered (`--workers N`: each has its own in-flight count).
            "pid": os.getpid(),
        }
