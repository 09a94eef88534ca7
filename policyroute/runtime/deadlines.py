"""How long a routed request may take, and how long it waits before trying again.

Three bounds, each with a default a production service can keep:

- `attempt` seconds for one HTTP try, from sending the request to the last byte of the
  answer. A server that trickles bytes never trips a socket read timeout; this does.
  Default: the SDK's own estimate of the longest answer a request may produce (an hour per
  128k output tokens), and never less than 10 minutes.
- `request` seconds for the whole routed request: classifiers, every try on every tier,
  and the waits between them. Default one hour, the SDK's own upper bound for one answer.
- `max_retry_after` seconds: the longest `retry-after` honoured. A server asking for more
  is not waited for: that tier counts as failed and the ladder climbs. Default 60.
"""

from __future__ import annotations

import contextlib
import email.utils
import heapq
import itertools
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

DEFAULT_REQUEST_SECONDS = 3600.0
DEFAULT_MAX_RETRY_AFTER = 60.0
MIN_ATTEMPT_SECONDS = 600.0
# The SDK's estimate: an answer of 128,000 output tokens may take an hour.
SECONDS_PER_OUTPUT_TOKEN = 3600.0 / 128_000

# The SDK's own backoff between retries.
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0


class DeadlineExceeded(Exception):
    """An attempt or the whole request ran past its deadline (the `timeout` trigger)."""


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Time bounds of a routed request, in seconds (see the module docs for the defaults).

    `attempt=None` derives each try's bound from its max_tokens; `request=None` or
    `attempt=float("inf")` lifts a bound (not recommended in front of real traffic).
    """

    attempt: float | None = None
    request: float | None = DEFAULT_REQUEST_SECONDS
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER

    def __post_init__(self) -> None:
        for name in ("attempt", "request", "max_retry_after"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"Deadlines.{name} must be above 0, got {value!r}")

    def attempt_seconds(self, max_tokens: int) -> float:
        if self.attempt is not None:
            return self.attempt
        return max(MIN_ATTEMPT_SECONDS, max_tokens * SECONDS_PER_OUTPUT_TOKEN)


class Clock:
    """The deadline of one request, on the monotonic clock."""

    __slots__ = ("end",)

    def __init__(self, deadlines: Deadlines, start: float) -> None:
        self.end = start + deadlines.request if deadlines.request is not None else float("inf")

    def remaining(self) -> float:
        return self.end - time.perf_counter()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def attempt_end(self, deadlines: Deadlines, max_tokens: int) -> float:
        """When one try must be over: its own bound, cut to the request's."""
        return min(self.end, time.perf_counter() + deadlines.attempt_seconds(max_tokens))


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asks to wait (`retry-after-ms`, `retry-after` seconds or date)."""
    if headers is None:
        return None
    try:
        return float(headers.get("retry-after-ms", "")) / 1000
    except (TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return float(email.utils.mktime_tz(parsed) - time.time())


def backoff(retries_taken: int) -> float:
    """The SDK's exponential backoff with jitter, for a retry without `retry-after`."""
    delay = min(INITIAL_RETRY_DELAY * 2.0 ** min(retries_taken, 32), MAX_RETRY_DELAY)
    return delay * (1 - 0.25 * random.random())


class Watchdog:
    """One daemon thread that runs callbacks at deadlines; used to end a sync read in time.

    A blocking socket read cannot be interrupted from its own thread, so the sync router
    arms a callback that shuts the connection down when an attempt's time is up.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cancelled: set[int] = set()
        self._ids = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, at: float, callback: Callable[[], None]) -> int:
        with self._cond:
            handle = next(self._ids)
            wake = not self._heap or at < self._heap[0][0]
            heapq.heappush(self._heap, (at, handle, callback))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="policyroute-watchdog", daemon=True
                )
                self._thread.start()
            if wake:  # only an earlier deadline changes how long the thread sleeps
                self._cond.notify()
            return handle

    def disarm(self, handle: int) -> None:
        with self._cond:
            self._cancelled.add(handle)
            # Most attempts end long before their deadline: drop their entries in bulk so
            # the heap holds only live ones, at amortised O(log n) per attempt.
            if len(self._cancelled) > 64 and len(self._cancelled) * 2 > len(self._heap):
                self._heap = [e for e in self._heap if e[1] not in self._cancelled]
                heapq.heapify(self._heap)
                self._cancelled.clear()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][1] in self._cancelled:
                    self._cancelled.discard(heapq.heappop(self._heap)[1])
                if not self._heap:
                    self._cond.wait()
                    continue
                at, _handle, callback = self._heap[0]
                wait = at - time.perf_counter()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
            with contextlib.suppress(Exception):  # a callback must never kill the watchdog
                callback()


WATCHDOG = Watchdog()
