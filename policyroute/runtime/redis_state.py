"""The state in Redis, shared by every replica pointed at the same database.

Reads (a sticky floor, the spend counters a decision reached) are one round trip each under
the state's timeout (50 ms by default): a Redis that is slow or down reads as missing, never
as an error. Writes (spend, sticky turns) leave the caller's path: they are queued, and one
writer thread sends whatever is pending as one pipeline, so a burst of requests costs one
round trip, and a counter is atomic (INCRBYFLOAT) whichever replica adds to it. Each counter
expires at its window's end (EXPIREAT); a sticky entry `window` seconds after its last turn.

After a failure the backend is left alone for a second (see `StateHealth`), so an outage
adds nothing to requests; spend that could not be written is dropped and counted.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from policyroute.runtime.state import (
    DEFAULT_TIMEOUT,
    WINDOWS,
    SpendRead,
    State,
    StateHealth,
    counter_key,
)

log = logging.getLogger("policyroute.state")

# Keep the fresher turn's tier unless the one there is higher on the ladder (ARGV[3..]).
_REMEMBER = """
local cur = redis.call('GET', KEYS[1])
local new = ARGV[1]
if cur and cur ~= new then
  local ci, ni = 0, 0
  for i = 3, #ARGV do
    if ARGV[i] == cur then ci = i end
    if ARGV[i] == new then ni = i end
  end
  if ci > 0 and ni > 0 and ci > ni then new = cur end
end
redis.call('SET', KEYS[1], new, 'PX', ARGV[2])
return new
"""

# Reserve against the day's shadow cap atomically: the day counter (KEYS[1]) decides;
# the hour and month counters (KEYS[2], KEYS[3]) follow. ARGV: usd, cap, then the expiries.
_RESERVE = """
local usd = tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur + usd > tonumber(ARGV[2]) then return 0 end
for i = 1, 3 do
  redis.call('INCRBYFLOAT', KEYS[i], ARGV[1])
  redis.call('EXPIREAT', KEYS[i], ARGV[2 + i])
end
return 1
"""

# Pending writes the writer keeps at most; past it, a write is dropped (and counted).
MAX_PENDING = 100_000
_Op = tuple[str, tuple[Any, ...], float]  # (kind, args, usd it carries)


def _import_redis() -> Any:
    try:
        import redis
    except ImportError:
        raise ImportError(
            "state shared through Redis needs the redis client: pip install 'policyroute[redis]'"
        ) from None
    return redis


def check_url(url: str) -> str:
    """The URL if it names a Redis database; ValueError saying why not."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"{url!r}: a Redis state is redis://HOST:PORT/DB")
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError(f"{url!r}: no host; give redis://HOST:PORT/DB")
    try:
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        raise ValueError(f"{url!r}: the port must be a number") from None
    db = parts.path.strip("/")
    if parts.scheme != "unix" and db and not db.isdigit():
        raise ValueError(f"{url!r}: the database must be a number (redis://HOST:PORT/0)")
    return url


def shown(url: str) -> str:
    """A Redis URL as logs and banners show it: no user name or password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"redis unix:{parts.path}"
    port = f":{parts.port}" if parts.port else ""
    return f"redis {parts.hostname}{port}{parts.path or '/0'}"


class RedisState(State):
    """Sticky floors, spend counters and shadow spend in Redis. Thread-safe."""

    blocking = True

    def __init__(
        self,
        url: str,
        timeout: float = DEFAULT_TIMEOUT,
        prefix: str = "policyroute:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
            raise ValueError("the state timeout must be a positive number of seconds")
        redis = _import_redis()
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.url = check_url(url)
        self.timeout = float(timeout)
        self.prefix = prefix
        self._clock = clock
        # No retries inside the client: a request waits at most one timeout, then goes on.
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            decode_responses=True,
        )
        self._remember = self.client.register_script(_REMEMBER)
        self._reserve = self.client.register_script(_RESERVE)
        self.health = StateHealth()
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._pending = 0
        self._applied = threading.Condition()
        self._sent = 0  # writes taken off the queue and done (sent or dropped)
        self._queued = 0
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._closed = False

    def describe(self) -> str:
        return shown(self.url)

    def _errors(self) -> tuple[type[BaseException], ...]:
        from redis.exceptions import RedisError

        return (RedisError, OSError)

    # -- reads: on the caller's path, one round trip under the timeout -------------------------

    def floor(self, key: str, window: float) -> str | None:
        if not self.health.ready():
            return None
        try:
            got = self.client.get(self.prefix + "sticky:" + key)
        except self._errors() as e:
            self.health.failed("read of a sticky floor", e)
            return None
        self.health.ok()
        return got if isinstance(got, str) else None

    def read_spend(
        self, reads: Sequence[SpendRead], at: float | None = None
    ) -> dict[str, float] | None:
        if not reads:
            return {}
        if not self.health.ready():
            return None
        at = self._clock() if at is None else at
        keys = [self.prefix + counter_key(r.scope, r.ident, r.window, at)[0] for r in reads]
        try:
            values = self.client.mget(keys)
        except self._errors() as e:
            self.health.failed("read of spend counters", e)
            return None
        self.health.ok()
        out = {}
        for r, v in zip(reads, values, strict=True):
            try:
                out[r.attribute] = max(0.0, float(v)) if v is not None else 0.0
            except ValueError:
                out[r.attribute] = 0.0  # not ours: a counter someone overwrote
        return out

    def reserve_shadow(self, ident: str, usd: float, cap: float, at: float | None = None) -> bool:
        if not self.health.ready():
            return False
        at = self._clock() if at is None else at
        day, hour, month = (counter_key("shadow", ident, w, at) for w in ("day", "hour", "month"))
        keys = [self.prefix + k for k, _ in (day, hour, month)]
        args = [repr(float(usd)), repr(float(cap)), *(math.ceil(e) for _, e in (day, hour, month))]
        try:
            got = self._reserve(keys=keys, args=args)
        except self._errors() as e:
            self.health.failed("reservation of shadow spend", e)
            return False
        self.health.ok()
        return bool(got)

    # -- writes: queued, sent by one writer thread as pipelines ------------------------------

    def remember(self, key: str, tier: str, window: float, order: Sequence[str]) -> None:
        ms = max(1, math.ceil(window * 1000))
        self._put(("remember", (self.prefix + "sticky:" + key, tier, ms, *order), 0.0))

    def add_spend(self, owners: Mapping[str, str], usd: float, at: float | None = None) -> None:
        if not usd or not owners:
            return
        at = self._clock() if at is None else at
        keys = tuple(
            (self.prefix + k, math.ceil(e))
            for scope, ident in owners.items()
            for k, e in (counter_key(scope, ident, w, at) for w in WINDOWS)
        )
        self._put(("spend", (keys, usd), usd))

    def settle_shadow(
        self, ident: str, reserved: float, actual: float, at: float | None = None
    ) -> None:
        delta = actual - reserved
        if not delta:
            return
        at = self._clock() if at is None else at
        keys = tuple(
            (self.prefix + k, math.ceil(e))
            for k, e in (counter_key("shadow", ident, w, at) for w in WINDOWS)
        )
        self._put(("spend", (keys, delta), max(0.0, actual)))

    def _put(self, op: _Op) -> None:
        if self._closed:
            return
        with self._applied:
            if self._queued - self._sent >= MAX_PENDING:
                self.health.dropped_usd += op[2]
                return
            self._queued += 1
        if self._writer is None:
            self._start()
        self._queue.put(op)

    def _start(self) -> None:
        with self._writer_lock:
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write, name="policyroute-state", daemon=True
                )
                self._writer.start()

    def _write(self) -> None:
        while True:
            op = self._queue.get()
            if op is None:
                return
            batch = [op]
            while len(batch) < 1000:  # whatever else is waiting goes in the same round trip
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._send(batch)
                    return
                batch.append(more)
            self._send(batch)

    def _send(self, batch: list[_Op]) -> None:
        try:
            usd = sum(op[2] for op in batch)
            if not self.health.ready():
                self.health.dropped_usd += usd
                return
            try:
                pipe = self.client.pipeline(transaction=False)
                for kind, args, _ in batch:
                    if kind == "spend":
                        keys, amount = args
                        for key, expires in keys:
                            pipe.incrbyfloat(key, amount)
                            pipe.expireat(key, expires)
                    else:
                        self._remember(keys=[args[0]], args=list(args[1:]), client=pipe)
                pipe.execute()
            except self._errors() as e:
                self.health.failed("write", e, dropped_usd=usd)
            except Exception as e:  # the writer never dies
                log.warning("state writer: %s", e)
            else:
                self.health.ok()
        finally:
            with self._applied:
                self._sent += len(batch)
                self._applied.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._applied:
            target = self._queued
            while self._sent < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._applied.wait(left)
        return True

    def close(self) -> None:
        self.flush()
        self._closed = True
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(timeout=5)
        self.client.close()


__all__ = ["RedisState", "StateHealth", "check_url", "shown"]
