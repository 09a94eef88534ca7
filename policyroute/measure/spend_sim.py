"""Spend counters simulated through a replay, so a budget rule is measured like any other.

Counterfactually: the replayed policy's own costs fill the counters, line after line in the
order of the traffic, each added in the calendar windows (UTC) of the line's `time`. A line
reads the counters as they stand before it (what a live decision would have read), then
adds its own cost. What can be simulated: `spend.user.*` (the line's user id) and
`spend.policy.*`; a record does not say whose credential sent it, and replay sends no shadow
calls, so `spend.key.*` and `spend.shadow.*` read as missing, as does every spend attribute
of a line without a time. The summary says how many decisions spend changed (against the
same policy with every spend attribute missing) and what each scope spent, simulated against
recorded.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..request.spend import NAMES, WINDOWS, parse, window_of

SIMULATED_SCOPES = ("user", "policy")


@dataclass(frozen=True, slots=True)
class ScopeSpend:
    """What one scope spent over the replay: simulated (the replayed policy's costs) and,
    on decision records, recorded (what was really spent)."""

    scope: str
    owners: int
    simulated_usd: float
    recorded_usd: float | None
    # The most one owner spent in one UTC day.
    top_day_simulated_usd: float
    top_day_recorded_usd: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "owners": self.owners,
            "simulated_usd": self.simulated_usd,
            "recorded_usd": self.recorded_usd,
            "top_day_simulated_usd": self.top_day_simulated_usd,
            "top_day_recorded_usd": self.top_day_recorded_usd,
        }


@dataclass(frozen=True, slots=True)
class SpendSummary:
    attributes: tuple[str, ...]  # the spend attributes the policy reads
    changed: int  # requests whose tier spend changed
    timed: int  # requests with a time (whose spend was simulated)
    untimed: int  # requests without one: every spend attribute missing
    unsimulated: tuple[str, ...]  # attributes replay cannot fill (read as missing)
    scopes: list[ScopeSpend] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "attributes": list(self.attributes),
            "changed": self.changed,
            "timed": self.timed,
            "untimed": self.untimed,
            "unsimulated": list(self.unsimulated),
            "scopes": {s.scope: s.to_json() for s in self.scopes},
        }


def spend_attributes_of(policy: Any) -> tuple[str, ...]:
    features = getattr(getattr(policy, "atoms", None), "features", ())
    return tuple(sorted({f.key[1] for f in features if f.key[0] == "num" and f.key[1] in NAMES}))


class SpendSimulation:
    """The counters of one replayed policy."""

    def __init__(self, policy: Any) -> None:
        self.attributes = spend_attributes_of(policy)
        self.policy = policy.name or "(unnamed)"
        self.counters: dict[tuple[str, str, str, str], float] = defaultdict(float)
        # (scope, owner, day label) -> USD, simulated and recorded
        self.days: dict[tuple[str, str, str], float] = defaultdict(float)
        self.recorded_days: dict[tuple[str, str, str], float] = defaultdict(float)
        self.recorded_any = False
        self.changed = 0
        self.timed = 0
        self.untimed = 0

    def owners(self, user_id: str | None) -> dict[str, str]:
        owners = {"policy": self.policy}
        if user_id:
            owners["user"] = user_id
        return owners

    def values(self, owners: dict[str, str], at: float | None) -> dict[str, float]:
        """The spend a decision at time `at` reads (missing: not in the mapping)."""
        if at is None:
            return {}
        out = {}
        for name in self.attributes:
            got = parse(name)
            assert got is not None
            scope, window = got
            ident = owners.get(scope) if scope in SIMULATED_SCOPES else None
            if ident is not None:
                label = window_of(window, at)[0]
                out[name] = self.counters.get((scope, ident, window, label), 0.0)
        return out

    def add(
        self, owners: dict[str, str], at: float | None, usd: float, recorded: float | None
    ) -> None:
        if at is None:
            self.untimed += 1
            return
        self.timed += 1
        day = window_of("day", at)[0]
        for scope, ident in owners.items():
            for window in WINDOWS:
                self.counters[(scope, ident, window, window_of(window, at)[0])] += usd
            self.days[(scope, ident, day)] += usd
            if recorded is not None:
                self.recorded_any = True
                self.recorded_days[(scope, ident, day)] += recorded

    def summary(self) -> SpendSummary:
        scopes = []
        for scope in SIMULATED_SCOPES:
            days = {k: v for k, v in self.days.items() if k[0] == scope}
            if not days:
                continue
            rec = {k: v for k, v in self.recorded_days.items() if k[0] == scope}
            scopes.append(
                ScopeSpend(
                    scope=scope,
                    owners=len({k[1] for k in days}),
                    simulated_usd=sum(days.values()),
                    recorded_usd=sum(rec.values()) if self.recorded_any else None,
                    top_day_simulated_usd=max(days.values()),
                    top_day_recorded_usd=max(rec.values(), default=0.0)
                    if self.recorded_any
                    else None,
                )
            )
        unsimulated = tuple(
            n for n in self.attributes if (parse(n) or ("", ""))[0] not in SIMULATED_SCOPES
        )
        return SpendSummary(
            self.attributes, self.changed, self.timed, self.untimed, unsimulated, scopes
        )
