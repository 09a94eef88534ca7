"""What the runtime remembers between requests, behind one interface: sticky floors, spend
counters (what rules read as `spend.SCOPE.WINDOW`) and the shadow spend its cap reads.

`LocalState` keeps it in this process (the default); `RedisState` (runtime/redis_state.py)
keeps it in Redis, so a fleet of replicas shares it. Both key everything the same way, so
the two give the same decisions on the same sequence of requests (a property test checks
it against a real redis-server).

Windows are calendar windows in UTC: the hour, the day and the month an attempt's cost was
known in. A counter's key names its window (`...:day:20261202`), so a new window starts at
zero by itself, and each key expires at its window's end.

Nothing here ever raises into a request: a state that cannot answer reads as missing
(`None`), and a write that fails is dropped and counted (see `StateHealth`).
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from policyroute.request.spend import SCOPES, WINDOWS, window_of
from policyroute.runtime.sticky import DEFAULT_MAX_CONVERSATIONS, StickyTable

log = logging.getLogger("policyroute.state")

__all__ = ["SCOPES", "WINDOWS", "LocalState", "SpendRead", "State", "StateHealth", "window_of"]

# How long a lazy read may take before the attribute reads as missing (seconds).
DEFAULT_TIMEOUT = 0.05
# Counters a LocalState keeps (least recently written go first); per user and key, so bounded.
DEFAULT_MAX_COUNTERS = 300_000


def counter_key(scope: str, ident: str, window: str, at: float) -> tuple[str, float]:
    """The key of a spend counter (without a backend's prefix) and when it expires."""
    label, end = window_of(window, at)
    return f"spend:{scope}:{ident}:{window}:{label}", end


@dataclass(frozen=True, slots=True)
class SpendRead:
    """One counter a decision may read: `spend.SCOPE.WINDOW` of `ident`."""

    attribute: str  # "spend.user.day"
    scope: str
    ident: str
    window: str


class StateHealth:
    """Failures of a shared state: counted for /metrics, logged at most once a `quiet` s.

    After a failure the backend is left alone for `backoff` seconds (reads answer missing at
    once, writes are dropped and counted), so a Redis that is down costs a request nothing;
    then the next call tries again, and the first success clears it: it recovers by itself.
    """

    def __init__(
        self,
        backoff: float = 1.0,
        quiet: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backoff = backoff
        self.quiet = quiet
        self._clock = clock
        self._lock = threading.Lock()
        self.failures = 0  # calls that failed (errors and timeouts)
        self.skipped = 0  # calls not tried while backing off
        self.dropped_usd = 0.0  # spend that could not be counted
        self.up = True
        self._retry_at = 0.0
        self._logged_at: float | None = None
        self._unlogged = 0

    def ready(self) -> bool:
        """Whether to try the backend now (False while backing off after a failure)."""
        if self.up:
            return True
        with self._lock:
            if self._clock() >= self._retry_at:
                self._retry_at = self._clock() + self.backoff  # one caller probes at a time
                return True
            self.skipped += 1
            return False

    def ok(self) -> None:
        if self.up:
            return
        with self._lock:
            if not self.up:
                self.up = True
                log.warning("state is answering again")

    def failed(self, what: str, error: BaseException, dropped_usd: float = 0.0) -> None:
        now = self._clock()
        with self._lock:
            self.failures += 1
            self.dropped_usd += dropped_usd
            self.up = False
            self._retry_at = now + self.backoff
            if self._logged_at is not None and now - self._logged_at < self.quiet:
                self._unlogged += 1
                return
            more = (
                f" ({self._unlogged} more failures since the last message)"
                if (self._unlogged)
                else ""
            )
            self._logged_at, self._unlogged = now, 0
        log.warning(
            "state %s failed: %s: %s; requests go on without it%s",
            what,
            type(error).__name__,
            error,
            more,
        )

    def as_dict(self) -> dict[str, float]:
        return {
            "up": 1.0 if self.up else 0.0,
            "failures": self.failures,
            "skipped": self.skipped,
            "dropped_usd": self.dropped_usd,
        }


class State(ABC):
    """What the runtime remembers between requests. Every method is safe from any thread,
    never raises, and never waits longer than the state's timeout.

    `blocking` says whether a call may wait on I/O (an async front end then calls it from a
    thread); the in-process state never does.
    """

    blocking = False
    health: StateHealth

    # -- sticky floors ----------------------------------------------------------------------

    @abstractmethod
    def floor(self, key: str, window: float) -> str | None:
        """The tier of the conversation's last turn within `window` seconds, or None."""

    @abstractmethod
    def remember(self, key: str, tier: str, window: float, order: Sequence[str]) -> None:
        """Record the tier that answered a turn; a fresher, higher tier there is kept."""

    # -- spend ------------------------------------------------------------------------------

    @abstractmethod
    def add_spend(self, owners: Mapping[str, str], usd: float, at: float | None = None) -> None:
        """Add `usd` to every window of each owner (`{"user": id, "key": hash, ...}`)."""

    @abstractmethod
    def read_spend(
        self, reads: Sequence[SpendRead], at: float | None = None
    ) -> dict[str, float] | None:
        """The counters, by attribute name (an untouched counter is 0), in one round trip;
        None when the state did not answer in time."""

    # -- the shadow cap ---------------------------------------------------------------------

    @abstractmethod
    def reserve_shadow(self, ident: str, usd: float, cap: float, at: float | None = None) -> bool:
        """Add `usd` to the day's shadow spend unless that would pass `cap`; False when it
        would, or when the state cannot say (a cap is kept, not guessed)."""

    @abstractmethod
    def settle_shadow(
        self, ident: str, reserved: float, actual: float, at: float | None = None
    ) -> None:
        """Replace a reservation by the shadow call's real cost, and count it."""

    def shadow_spent(self, ident: str, at: float | None = None) -> float | None:
        got = self.read_spend([SpendRead("spend.shadow.day", "shadow", ident, "day")], at)
        return None if got is None else got["spend.shadow.day"]

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until the writes made so far are applied (tests; closing). True when done."""
        return True

    def close(self) -> None:  # noqa: B027 (nothing to let go of in process)
        """Apply what is pending and let go of connections."""

    def describe(self) -> str:
        return type(self).__name__


class LocalState(State):
    """The in-process state: a bounded table of counters and the sticky LRU table."""

    def __init__(
        self,
        max_conversations: int = DEFAULT_MAX_CONVERSATIONS,
        max_counters: int = DEFAULT_MAX_COUNTERS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sticky = StickyTable(max_conversations)
        self.max_counters = max_counters
        self._clock = clock
        self._lock = threading.Lock()
        self._counters: OrderedDict[str, tuple[float, float]] = OrderedDict()  # value, expiry
        self.health = StateHealth()

    def __len__(self) -> int:
        return len(self.sticky)

    def describe(self) -> str:
        return "in-process"

    def floor(self, key: str, window: float) -> str | None:
        return self.sticky.floor(key, window)

    def remember(self, key: str, tier: str, window: float, order: Sequence[str]) -> None:
        self.sticky.remember(key, tier, window, order)

    def _add(self, key: str, usd: float, expires: float) -> float:
        value, _ = self._counters.get(key, (0.0, expires))
        value += usd
        self._counters[key] = (value, expires)
        self._counters.move_to_end(key)
        while len(self._counters) > self.max_counters:
            self._counters.popitem(last=False)
        return value

    def _get(self, key: str, now: float) -> float:
        entry = self._counters.get(key)
        if entry is None:
            return 0.0
        if entry[1] <= now:
            del self._counters[key]
            return 0.0
        return entry[0]

    def add_spend(self, owners: Mapping[str, str], usd: float, at: float | None = None) -> None:
        if not usd:
            return
        at = self._clock() if at is None else at
        with self._lock:
            for key, expires in _owner_keys(owners, at):
                self._add(key, usd, expires)

    def read_spend(
        self, reads: Sequence[SpendRead], at: float | None = None
    ) -> dict[str, float] | None:
        at = self._clock() if at is None else at
        now = self._clock()
        with self._lock:
            return {
                r.attribute: self._get(counter_key(r.scope, r.ident, r.window, at)[0], now)
                for r in reads
            }

    def reserve_shadow(self, ident: str, usd: float, cap: float, at: float | None = None) -> bool:
        at = self._clock() if at is None else at
        key, expires = counter_key("shadow", ident, "day", at)
        with self._lock:
            if self._get(key, self._clock()) + usd > cap:
                return False
            self._add(key, usd, expires)
            for k, e in _shadow_other_windows(ident, at):
                self._add(k, usd, e)
            return True

    def settle_shadow(
        self, ident: str, reserved: float, actual: float, at: float | None = None
    ) -> None:
        at = self._clock() if at is None else at
        with self._lock:
            for key, expires in _owner_keys({"shadow": ident}, at):
                value = self._add(key, actual - reserved, expires)
                if value < 0:  # float dust, or a window that began mid-call
                    self._counters[key] = (0.0, expires)


def _owner_keys(owners: Mapping[str, str], at: float) -> Iterable[tuple[str, float]]:
    for scope, ident in owners.items():
        for window in WINDOWS:
            yield counter_key(scope, ident, window, at)


def _shadow_other_windows(ident: str, at: float) -> Iterable[tuple[str, float]]:
    for window in ("hour", "month"):
        yield counter_key("shadow", ident, window, at)


def open_state(
    spec: str | State | None,
    timeout: float = DEFAULT_TIMEOUT,
    max_conversations: int = DEFAULT_MAX_CONVERSATIONS,
) -> State:
    """A state from what a user passes: None (in-process), a State, or a `redis://` URL."""
    if spec is None:
        return LocalState(max_conversations)
    if isinstance(spec, State):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"state must be a redis:// URL or a State, got {type(spec).__name__}")
    if spec.split(":", 1)[0] in ("redis", "rediss", "unix"):
        from policyroute.runtime.redis_state import RedisState

        return RedisState(spec, timeout=timeout)
    if spec in ("", "local", "memory"):
        return LocalState(max_conversations)
    raise ValueError(
        f"unknown state {spec!r}: give redis://HOST:PORT/DB (or rediss://, unix://) "
        "for state shared through Redis"
    )
