"""The shadow spend cap: each shadow call's worst-case cost, reserved against a UTC day's
budget before the call and settled to its real cost after, and the counters of what ran.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from policyroute.decision import Tier
from policyroute.runtime.state import LocalState, State

if TYPE_CHECKING:
    from policyroute.runtime.shadowing import Served

# Per message and per request, tokens the API adds around the text (roles, separators).
_OVERHEAD_TOKENS = 64


class DailyBudget:
    """USD per UTC day, kept in the runtime's state; reservations make the cap hold with
    calls in flight, across replicas when the state is shared (the reservation is atomic).

    The day's shadow spend is the counter rules read as `spend.shadow.day` (of the policy
    named `ident`), reservations of calls in flight included until they settle.
    """

    def __init__(
        self,
        usd: float,
        clock: Callable[[], float] = time.time,
        state: State | None = None,
    ) -> None:
        self.usd = usd
        self._clock = clock
        self.state: State = state if state is not None else LocalState(clock=clock)

    @property
    def committed(self) -> float:
        """Spent and reserved today, by the unnamed policy (tests; a local state)."""
        return self.spent("(unnamed)") or 0.0

    def spent(self, ident: str) -> float | None:
        return self.state.shadow_spent(ident, self._clock())

    def reserve(self, usd: float, ident: str = "(unnamed)") -> bool:
        return self.state.reserve_shadow(ident, usd, self.usd, self._clock())

    def settle(self, reserved: float, actual: float, ident: str = "(unnamed)") -> None:
        self.state.settle_shadow(ident, reserved, actual, self._clock())


class ShadowStats:
    """Counters, for logs and metrics. `sampled` counts shadow calls chosen by sampling.

    Callers and workers count under separate locks, so the caller's path never waits for a
    worker; `as_dict()` adds them up.
    """

    FIELDS = ("sampled", "skipped_budget", "skipped_full", "succeeded", "failed", "spent_usd")

    def __init__(self) -> None:
        self._worker: dict[str, float] = dict.fromkeys(self.FIELDS, 0)
        self._caller: dict[str, float] = dict.fromkeys(self.FIELDS, 0)
        self._worker_lock = threading.Lock()
        self._caller_lock = threading.Lock()

    def add(self, **counts: float) -> None:
        """Count from a worker (or the event loop)."""
        with self._worker_lock:
            for k, v in counts.items():
                self._worker[k] += v

    def add_from_caller(self, **counts: float) -> None:
        with self._caller_lock:
            for k, v in counts.items():
                self._caller[k] += v

    def as_dict(self) -> dict[str, float]:
        with self._worker_lock, self._caller_lock:
            return {k: self._worker[k] + self._caller[k] for k in self.FIELDS}


def worst_case(served: Served, tier: Tier, max_tokens: int) -> float:
    text = served.text or ""
    a = served.answer
    real = a.input_tokens + a.cache_creation_tokens + a.cache_read_tokens
    # A token is at least one byte of text, so the byte count bounds a text-only request
    # for any tokenizer; the routed call's real count covers tools and images.
    turns = len(served.params.get("messages") or ()) + 1
    inputs = max(len(text.encode("utf-8", "surrogatepass")) + _OVERHEAD_TOKENS * turns, real)
    per_input = tier.input_price / 1_000_000 * max(1.0, tier.cache_write_multiplier)
    return inputs * per_input + max_tokens * tier.output_price / 1_000_000
