"""The spend attributes of the language: `spend.SCOPE.WINDOW`, US dollars spent so far in
the current calendar WINDOW (UTC) by SCOPE. One table, read by the request checks, the
attribute table, the runtime's state and replay, so all of them name the same twelve.

A request carries them as `Request.spend`: given by the caller (`route.spend`, `--attr`, an
inline test, replay's simulated counters) or read lazily from the runtime's state, once,
when evaluation first reaches a condition on one of them.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .checks import RequestError, type_name

# user: the request's user.id; key: a hash of the caller's credential; policy: every request
# the policy routed; shadow: what the policy's shadow calls spent (what the shadow cap reads).
SCOPES = ("user", "key", "policy", "shadow")
WINDOWS = ("hour", "day", "month")
ATTRIBUTES = tuple(f"spend.{s}.{w}" for s in SCOPES for w in WINDOWS)
NAMES = frozenset(ATTRIBUTES)

DOCS = {
    "user": "the request's user (user.id)",
    "key": "the caller's credential (a hash of it)",
    "policy": "every request this policy routed",
    "shadow": "this policy's shadow calls",
}


# The last window computed of each kind, (start, end, label): every request counts its
# spend in the windows of its own time, nearly always the same ones as the last request's,
# and formatting a calendar window was a twentieth of a routed request's CPU in `serve`.
_LAST: dict[str, tuple[float, float, str]] = {}


def window_of(window: str, at: float) -> tuple[str, float]:
    """(the window's label, its end as a Unix time) for the UTC `window` holding time `at`."""
    last = _LAST.get(window)
    if last is not None and last[0] <= at < last[1]:
        return last[2], last[1]
    label, end = _window_of(window, at)
    start = datetime.strptime(label, _FORMATS[window]).replace(tzinfo=UTC).timestamp()
    _LAST[window] = (start, end, label)
    return label, end


_FORMATS = {"hour": "%Y%m%d%H", "day": "%Y%m%d", "month": "%Y%m"}


def _window_of(window: str, at: float) -> tuple[str, float]:
    t = datetime.fromtimestamp(at, UTC)
    if window == "hour":
        start = t.replace(minute=0, second=0, microsecond=0)
        return start.strftime("%Y%m%d%H"), start.timestamp() + 3600
    if window == "day":
        start = t.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.strftime("%Y%m%d"), start.timestamp() + 86_400
    if window == "month":
        start = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (
            start.replace(year=start.year + 1, month=1)
            if t.month == 12
            else start.replace(month=start.month + 1)
        )
        return start.strftime("%Y%m"), end.timestamp()
    raise ValueError(f"unknown spend window {window!r}; the windows are {', '.join(WINDOWS)}")


def parse(name: str) -> tuple[str, str] | None:
    """(scope, window) of a spend attribute's name, or None."""
    if name not in NAMES:
        return None
    _, scope, window = name.split(".")
    return scope, window


def doc(name: str) -> str:
    scope, window = name.split(".")[1:]
    return f"USD spent this {window} (UTC) by {DOCS[scope]}"


def check(where: str, value: Any) -> dict[str, float]:
    """Spend values a caller gives: `{"user": {"day": 0.7}}`, `{"user.day": 0.7}` or
    `{"spend.user.day": 0.7}`; each a finite number of USD, 0 or more."""
    if not isinstance(value, Mapping):
        raise RequestError(f"{where}: must be an object, got {type_name(value)}")
    out: dict[str, float] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise RequestError(f"{where}: keys must be strings, got {type_name(key)}")
        if key in SCOPES and isinstance(item, Mapping):
            for window, v in item.items():
                out.update(check(f"{where}.{key}", {f"{key}.{window}": v}))
            continue
        name = key if key.startswith("spend.") else f"spend.{key}"
        if name not in NAMES:
            raise RequestError(
                f"{where}: unknown spend {key!r}; give SCOPE.WINDOW with SCOPE one of "
                f"{', '.join(SCOPES)} and WINDOW one of {', '.join(WINDOWS)}"
            )
        out[name] = usd(f"{where}.{name[6:]}", item)
    return out


def usd(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RequestError(f"{where}: must be a number of USD, got {type_name(value)}")
    if value < 0:
        raise RequestError(f"{where}: a spend is 0 or more, got {value}")
    return float(value)


class SpendReader(abc.ABC):
    """Spend values read from elsewhere when a decision first asks for one (the runtime's
    state, runtime/spend.py); `get` answers None for a value that could not be read."""

    __slots__ = ()

    @abc.abstractmethod
    def get(self, name: str, default: float | None = None) -> float | None:
        """The value of one spend attribute, or `default` when it cannot be read."""

    def __bool__(self) -> bool:
        return True
