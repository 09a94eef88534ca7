"""Spend on the runtime's side: who a request's cost belongs to, the lazy read a decision
makes when it reaches a `spend.*` condition, and the counting of every attempt's cost.

A request's owners are its user (`user.id`), its key (a hash of the caller's credential,
never the credential) and its policy. The decision reads the counters of those owners once,
only if evaluation reaches a spend condition, in one round trip under the state's timeout;
an owner the request lacks (no user id), or a state that does not answer, leaves the
attribute missing. What the caller gives as `route.spend` is not used at run time: the
counters are the state's, or a caller could spend past a budget by saying otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from policyroute.request import Request
from policyroute.request.spend import NAMES, SpendReader, parse
from policyroute.runtime.state import SpendRead, State


def key_owner(*secrets: str | None) -> str | None:
    """The `key` scope's id of a credential: a short digest, never the credential."""
    given = [s for s in secrets if s]
    if not given:
        return None
    return hashlib.sha256("\0".join(given).encode("utf-8", "surrogatepass")).hexdigest()[:24]


def policy_owner(policy: Any) -> str:
    name = getattr(policy, "name", None)
    return name if isinstance(name, str) and name else "(unnamed)"


_READS: weakref.WeakKeyDictionary[Any, tuple[str, ...]] = weakref.WeakKeyDictionary()


def spend_names(policy: Any) -> tuple[str, ...]:
    """The spend attributes a policy's conditions read (cached per compiled policy)."""
    try:
        return _READS[policy]
    except (KeyError, TypeError):
        pass
    atoms = getattr(policy, "atoms", None)
    features = getattr(atoms, "features", ())
    names = tuple(sorted({f.key[1] for f in features if f.key[0] == "num" and f.key[1] in NAMES}))
    with contextlib.suppress(TypeError):  # a hand-made policy that cannot be weakly referenced
        _READS[policy] = names
    return names


def waits_on_state(state: State, policy: Any) -> bool:
    """Whether deciding for `policy` may wait on `state` (a shared state, and a sticky floor
    or a spend counter to read): an async front end then decides off its event loop."""
    if not state.blocking:
        return False
    return getattr(policy, "sticky_window", None) is not None or bool(spend_names(policy))


class StateSpend(SpendReader):
    """The spend of a request's owners, read from the state at most once, when first asked.

    Made for every request of a spend policy, so making one only keeps references: which
    counters to read is worked out on the first `get`, if evaluation ever asks."""

    __slots__ = ("_names", "_owners", "_state", "_values", "asked", "at")

    def __init__(
        self, state: State, names: tuple[str, ...], owners: Mapping[str, str], at: float
    ) -> None:
        self._state = state
        self._names = names
        self._owners = owners
        self._values: dict[str, float] | None = None
        self.asked = False
        self.at = at

    def _reads(self) -> list[SpendRead]:
        reads = []
        for name in self._names:
            got = parse(name)
            assert got is not None
            scope, window = got
            ident = self._owners.get("policy" if scope == "shadow" else scope)
            if ident is not None:
                reads.append(SpendRead(name, scope, ident, window))
        return reads

    def get(self, name: str, default: float | None = None) -> float | None:
        if not self.asked:
            self.asked = True
            reads = self._reads()
            self._values = self._state.read_spend(reads, self.at) if reads else {}
        if self._values is None:
            return None
        return self._values.get(name)

    @property
    def values(self) -> dict[str, float] | None:
        """What the decision read (None: not read, or the state did not answer)."""
        return dict(self._values) if self.asked and self._values is not None else None

    def __repr__(self) -> str:
        shown = self._values if self.asked else "not read"
        return f"StateSpend({shown})"


class SpendMeter:
    """The state's spend as one front end uses it: attaching lazy reads, counting costs."""

    def __init__(self, state: State) -> None:
        self.state = state

    @staticmethod
    def owners(policy: Any, user_id: str | None, key: str | None) -> dict[str, str]:
        owners = {"policy": policy_owner(policy)}
        if user_id:
            owners["user"] = user_id
        if key:
            owners["key"] = key
        return owners

    def attach(self, policy: Any, request: Request, owners: Mapping[str, str]) -> Request:
        """The request with its spend read lazily from the state, when the policy reads any."""
        names = spend_names(policy)
        if not names:
            return request
        return request.with_spend(StateSpend(self.state, names, owners, time.time()))

    def count(self, owners: Mapping[str, str], usd: float) -> None:
        """Add a cost known now (an attempt's) to every window of every owner."""
        if usd > 0:
            self.state.add_spend(owners, usd)

    def count_attempts(self, owners: Mapping[str, str], attempts: Iterable[Any]) -> None:
        """Add the cost of a request's attempts (shadow calls are counted by the shadow cap)."""
        self.count(owners, sum(a.cost_usd for a in attempts if a.kind != "shadow"))

    def count_classifiers(self, owners: Mapping[str, str], attempts: Iterable[Any]) -> None:
        """Add the cost of the classifier calls, when the request ends (each generation is
        counted as it ends, through `hook`)."""
        self.count(owners, sum(a.cost_usd for a in attempts if a.kind == "classify"))

    def hook(
        self, owners: Mapping[str, str], then: Callable[[Any], None] | None = None
    ) -> Callable[[Any], None]:
        """The ladder's per-attempt hook for one request: each generation's cost goes to the
        owners' spend the moment it is known, then to `then` (a front end's own hook)."""
        count = self.count

        def counted(attempt: Any) -> None:
            count(owners, attempt.cost_usd)
            if then is not None:
                then(attempt)

        return counted


def read_values(request: Request) -> dict[str, float] | None:
    """The spend values a decision read from the state, for its record."""
    spend = request.spend
    return spend.values if isinstance(spend, StateSpend) else None
