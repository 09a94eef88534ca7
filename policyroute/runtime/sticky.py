"""Conversation-sticky routing: a later turn never goes to a cheaper tier than the one before.

Prompt caching is per model. When turn 5 of a conversation goes to another tier than turn 4,
the whole cached prefix is written again at the full (or write) rate on the new model. A
policy that says `sticky conversations 10 minutes` keeps, for each conversation, the tier of
its last turn as a floor for the next one within the window: the policy may still send a
harder turn up, never down.

The floors live in the runtime's state (runtime/state.py): by default a table in this
process, bounded (least recently used conversations go first); with Redis, shared by every
replica, so a conversation keeps its tier whichever replica serves the next turn. Each entry
lives `window` seconds after its last turn. The Router, the SDK middleware and the server
all use it through `Sticky`, so the three behave the same.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from policyroute.decision import Decision

if TYPE_CHECKING:
    from policyroute.runtime.state import State

# The header (and, for the SDK middleware, extra header) that names a conversation.
CONVERSATION_HEADER = "x-policyroute-conversation"
DEFAULT_MAX_CONVERSATIONS = 100_000


def _canonical(content: Any) -> Any:
    """Content as the cache sees it: strings as one text block, `cache_control` dropped.

    Clients move `cache_control` breakpoints from turn to turn (Claude Code marks the newest
    message), so a key that included them would change on every turn.
    """
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, Mapping):
        return {k: _canonical_value(v) for k, v in content.items() if k != "cache_control"}
    if isinstance(content, list | tuple):
        return [_canonical(c) if isinstance(c, Mapping) else _canonical_value(c) for c in content]
    return content


def _canonical_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return _canonical(value)
    if isinstance(value, list | tuple):
        return [_canonical_value(v) for v in value]
    return value


def explicit_conversation(params: Mapping[str, Any]) -> str | None:
    """The conversation header among SDK call parameters (`extra_headers=`), if given."""
    headers = params.get("extra_headers")
    if isinstance(headers, Mapping):
        for name, value in headers.items():
            if isinstance(name, str) and name.lower() == CONVERSATION_HEADER:
                return str(value) if value else None
    return None


def conversation_key(
    params: Mapping[str, Any], explicit: str | None = None, scope: str = ""
) -> str | None:
    """The key of the conversation a Messages API request belongs to, or None.

    `explicit` (the conversation header) wins; else a digest of the system prompt and the
    first user message, which stay the same on every turn of one conversation. `scope`
    separates callers (the server passes a digest of the caller's credential), so two
    clients that open with the same words never share a conversation.
    """
    h = hashlib.sha256(scope.encode("utf-8", "surrogatepass"))
    if explicit:
        h.update(b"\0explicit\0" + explicit.encode("utf-8", "surrogatepass"))
        return h.hexdigest()
    messages = params.get("messages")
    if not isinstance(messages, list | tuple):
        return None
    first = next((m for m in messages if isinstance(m, Mapping) and m.get("role") == "user"), None)
    if first is None:
        return None
    shape = {"system": _canonical(params.get("system")), "first": _canonical(first.get("content"))}
    try:
        data = json.dumps(shape, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):  # SDK objects in the params: fall back to their repr
        data = repr(shape)
    h.update(b"\0derived\0" + data.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


class StickyTable:
    """conversation key -> (tier name, time of the last turn); bounded LRU, thread-safe."""

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_CONVERSATIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def floor(self, key: str, window: float) -> str | None:
        """The tier of the conversation's last turn, if that turn is within `window` s."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if now - entry[1] > window:
                del self._entries[key]
                return None
            return entry[0]

    def remember(self, key: str, tier: str, window: float, order: Sequence[str]) -> None:
        """Record a turn answered by `tier`; a fresher, higher tier already there is kept
        (two turns of one conversation may finish out of order)."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if (
                entry is not None
                and now - entry[1] <= window
                and entry[0] in order
                and tier in order
                and order.index(entry[0]) > order.index(tier)
            ):
                tier = entry[0]
            self._entries[key] = (tier, now)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


# How long a tool call's tier is kept for the turn that answers it (a tool-result-only user
# turn) when the policy has no `sticky` window of its own.
CONTINUATION_WINDOW = 3600.0


class Sticky:
    """Applies a policy's `sticky conversations` window to decisions, over one state.

    The same state keeps every conversation's last tier for continuations: a user turn that
    holds only tool results continues the task on the tier that issued the tool call,
    exactly, sticky statement or not (docs/language.md)."""

    def __init__(
        self, max_entries: int = DEFAULT_MAX_CONVERSATIONS, state: State | None = None
    ) -> None:
        if state is None:
            from policyroute.runtime.state import LocalState

            state = LocalState(max_entries)
        self.state = state

    @property
    def table(self) -> StickyTable | None:
        """The in-process table, when the floors are kept in this process."""
        table = getattr(self.state, "sticky", None)
        return table if isinstance(table, StickyTable) else None

    def size(self) -> int | None:
        """Conversations remembered here (None: they are in a shared state)."""
        table = self.table
        return len(table) if table is not None else None

    @staticmethod
    def window(policy: Any) -> float | None:
        w = getattr(policy, "sticky_window", None)
        return float(w) if isinstance(w, int | float) else None

    def apply(
        self, policy: Any, decision: Decision, key: str | None, continuation: bool = False
    ) -> tuple[Decision, str | None]:
        """(the decision to serve, the tier it was raised from or None)."""
        window = self.window(policy)
        if continuation:
            window = max(window or 0.0, CONTINUATION_WINDOW)
        if window is None or key is None:
            return decision, None
        floor = self.state.floor(key, window)
        if floor is None or floor == decision.tier:
            return decision, None
        # A tool-result turn continues the task on the tier that issued the tool call,
        # exactly (never a cheaper one, nor a dearer one its longer context would pick).
        move = getattr(policy, "at_tier", None) if continuation else None
        moved: Decision = move(decision, floor) if callable(move) else policy.raised(decision, floor)
        if moved is decision:
            return decision, None
        return moved, decision.tier

    def remember(self, policy: Any, key: str | None, tier: str | None) -> None:
        """Record the tier that answered this turn (after any escalation)."""
        window = max(self.window(policy) or 0.0, CONTINUATION_WINDOW)
        if key is None or tier is None:
            return
        self.state.remember(key, tier, window, [t.name for t in policy.tiers])
