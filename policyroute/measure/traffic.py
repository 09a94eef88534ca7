"""TRAFFIC readers: JSON lines (plain or .gz), one request a line, in three shapes.

Each line is recognised on its own:

- ``request``: the object ``policyroute route --request`` reads (Messages API parameters plus
  a ``route`` object), with an ``id`` (string or whole number; the line number when absent);
- ``batch``: an Anthropic Message Batches request line, ``{"custom_id": ..., "params": {...}}``;
- ``record``: a policyroute decision record (docs/records.md) written with
  ``log_prompts=True``. A record without its text cannot be replayed; it comes back as an
  `Unreplayable` of kind ``no_text``, never dropped.

A line that cannot be read comes back as an `Unreplayable` of kind ``unreadable`` with its
``file:line`` and why; the caller decides whether to go on (the default) or stop (``--strict``).

The reader is split in two so replay can parallelise: `iter_chunks` (reading.py) reads raw lines (cheap,
in the parent process) and `parse_line` turns one into a `TrafficItem` (in a worker).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from .. import jsonsafe
from ..request import Request, RequestError, normalize_route
from ..request.messages import from_parsed
from ..request.request import route_of
from .reading import LongLine as LongLine
from .reading import RawLine as RawLine
from .reading import TrafficFileError as TrafficFileError
from .reading import iter_chunks as iter_chunks
from .reading import open_traffic as open_traffic

Shape = Literal["request", "batch", "record"]


@dataclass(frozen=True, slots=True)
class Location:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class AttemptUsage:
    """Real usage of one answered generation attempt, as a decision record holds it."""

    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a decision record says happened when the request was served."""

    tier: str
    rule: str
    final_tier: str | None
    outcome: str
    attempts: int  # generation attempts (the ladder climbed), classifications excluded
    triggers: tuple[str, ...]
    latency_ms: float | None
    usage: Mapping[str, AttemptUsage]  # per tier that answered: its last answer's usage
    cost_usd: float | None = None  # what the request cost (shadow calls apart)
    # The tier the rules chose (before a sticky floor raised it) and the policy revision.
    decided_tier: str | None = None
    revision: str | None = None


@dataclass(frozen=True, slots=True)
class TrafficItem:
    """One replayable request."""

    id: str
    group: str | None  # the --group-by value; None: the request is its own group
    request: Request
    where: Location
    shape: Shape
    recorded: Recorded | None = None
    time: float | None = None  # Unix time of the request, when the line says (`time`)


UnreplayableKind = Literal["unreadable", "no_text"]


@dataclass(frozen=True, slots=True)
class Unreplayable:
    """A line that is not replayed, and why. ``reason`` is short and groups lines in reports."""

    where: Location
    kind: UnreplayableKind
    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.detail}"


# -- parsing one line -------------------------------------------------------------------


_REASONS = {
    "syntax": "invalid JSON",
    "encoding": "not UTF-8",
    "number": "bad number",
    "depth": "nested too deeply",
    "size": "line too long",
}


def json_problem(e: jsonsafe.JSONError) -> str:
    """The error as a sentence, its column appended: "invalid JSON: expecting value at column 3"."""
    msg = e.message
    if e.column is None:
        return msg
    return f"{msg}{'' if msg.endswith(' at') else ' at'} column {e.column}"


def json_reason(e: jsonsafe.JSONError) -> str:
    """The short reason a report counts lines under."""
    return _REASONS.get(e.kind, "invalid JSON")


def _fail(where: Location, reason: str, detail: str) -> Unreplayable:
    return Unreplayable(where, "unreadable", reason, detail)


def _lookup(obj: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    cur: Any = obj
    for key in path:
        if not isinstance(cur, Mapping) or key not in cur:
            return None
        cur = cur[key]
    return cur


def group_of(obj: Mapping[str, Any], path: tuple[str, ...]) -> str | None:
    """The --group-by value of a line: the dotted field in the line itself, else under its
    ``route`` object, else under ``route.metadata`` (or a batch line's ``params.metadata``).
    """
    for base in (
        (),
        ("route",),
        ("route", "metadata"),
        ("params",),
        ("params", "metadata"),
    ):
        value = _lookup(obj, base + path)
        if value is not None:
            if isinstance(value, str):
                return value
            return json.dumps(value, sort_keys=True)
    return None


def _id(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ValueError
    if value < 0:
        raise ValueError
    return int(value)


def _recorded(obj: Mapping[str, Any]) -> Recorded:
    """The served facts of a record; ValueError on a field of the wrong type."""
    attempts = obj.get("attempts")
    if not isinstance(attempts, list):
        raise ValueError("'attempts' must be a list")
    usage: dict[str, AttemptUsage] = {}
    generations = 0
    triggers: list[str] = []
    for i, a in enumerate(attempts):
        if not isinstance(a, Mapping):
            raise ValueError(f"attempts[{i}] must be an object")
        if a.get("kind", "generate") != "generate":
            continue
        generations += 1
        tier = a.get("tier")
        if not isinstance(tier, str):
            raise ValueError(f"attempts[{i}].tier must be a string")
        trigger = a.get("trigger")
        if isinstance(trigger, str):
            triggers.append(trigger)
        try:
            counts = [
                _count(a.get(k, 0))
                for k in (
                    "input_tokens",
                    "output_tokens",
                    "cache_creation_tokens",
                    "cache_read_tokens",
                )
            ]
        except ValueError:
            raise ValueError(f"attempts[{i}]: token counts must be whole numbers >= 0") from None
        if a.get("error") is None and (counts[0] or counts[1]):
            usage[tier] = AttemptUsage(*counts)
    tier, rule = obj.get("tier"), obj.get("rule")
    if not isinstance(tier, str) or not isinstance(rule, str):
        raise ValueError("'tier' and 'rule' must be strings")
    final = obj.get("final_tier")
    latency = obj.get("latency_ms")
    if latency is not None and (
        isinstance(latency, bool) or not isinstance(latency, (int, float)) or latency < 0
    ):
        raise ValueError("'latency_ms' must be a number >= 0")
    return Recorded(
        tier=tier,
        rule=rule,
        final_tier=final if isinstance(final, str) else None,
        outcome=str(obj.get("outcome", "ok")),
        attempts=generations,
        triggers=tuple(triggers),
        latency_ms=float(latency) if latency is not None else None,
        usage=usage,
        cost_usd=_cost(obj.get("cost_usd")),
        decided_tier=obj.get("sticky_from") if isinstance(obj.get("sticky_from"), str) else tier,
        revision=obj.get("revision") if isinstance(obj.get("revision"), str) else None,
    )


def _cost(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value) if value >= 0 else None


def _time(value: Any) -> float | None:
    """A line's `time`: an ISO 8601 time (a record's, `...Z`) or a Unix time in seconds;
    ValueError on anything else."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            t = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return (t if t.tzinfo is not None else t.replace(tzinfo=UTC)).timestamp()
    raise ValueError("'time' must be an ISO 8601 time or a Unix time in seconds")


def parse_line(
    raw: RawLine | str, where: Location, group_by: tuple[str, ...] | None = None
) -> TrafficItem | Unreplayable | None:
    """One TRAFFIC line as a `TrafficItem`, an `Unreplayable` saying why not, or None if blank."""
    if isinstance(raw, LongLine):
        e = jsonsafe.too_long(raw.max_bytes)
        return _fail(where, json_reason(e), e.message)
    head = raw[:1]
    if (not head or head.isspace()) and not raw.strip():  # strip() copies the whole line
        return None
    # The line without its terminator, however it was read, so a broken line gets the same
    # message from every reader.
    if isinstance(raw, bytes):
        raw = raw[:-1] if raw.endswith(b"\n") else raw
    elif raw.endswith("\n"):
        raw = raw[:-1]
    try:
        obj = jsonsafe.loads(raw)
    except jsonsafe.JSONError as e:
        return _fail(where, json_reason(e), json_problem(e))
    if not isinstance(obj, dict):
        return _fail(
            where, "not an object", f"a line must be a JSON object, got {type(obj).__name__}"
        )
    group = group_of(obj, group_by) if group_by else None
    try:
        if "custom_id" in obj and "params" in obj:
            rid = obj["custom_id"]
            if not isinstance(rid, str):
                return _fail(where, "bad id", "batch line: 'custom_id' must be a string")
            params = obj["params"]
            if not isinstance(params, (dict, Mapping)):
                return _fail(where, "bad request", "batch line: 'params' must be an object")
            # from_parsed is Request.from_anthropic without its depth walk: the parse
            # above already refused a line nested deeper than it allows.
            return TrafficItem(rid, group, from_parsed(params, {}).request, where, "batch")
        if "request_id" in obj and "attempts" in obj:
            return _record(obj, where, group)
        if "messages" not in obj:
            return _fail(
                where,
                "unknown shape",
                "not a request ('messages'), a batch line ('custom_id' and 'params') "
                "or a decision record ('request_id' and 'attempts')",
            )
        rid = _id(obj["id"]) if "id" in obj else str(where.line)
        if rid is None:
            return _fail(where, "bad id", "'id' must be a string or a whole number")
        at = _time(obj.get("time"))
        # Request.from_json of the line without `id` and `time`, in the same order of checks,
        # minus its copies of the line (the mapping reads none of `id`, `time`, `route`)
        # and minus its depth walk (the parse bounded the depth already).
        request = from_parsed(obj, route_of(obj)).request
        return TrafficItem(rid, group, request, where, "request", time=at)
    except RequestError as e:
        return _fail(where, "bad request", str(e))
    except ValueError as e:
        return _fail(where, "bad time", str(e))


def _record(
    obj: Mapping[str, Any], where: Location, group: str | None
) -> TrafficItem | Unreplayable:
    rid = obj["request_id"]
    if not isinstance(rid, str):
        return _fail(where, "bad id", "record: 'request_id' must be a string")
    try:
        recorded = _recorded(obj)
    except ValueError as e:
        return _fail(where, "bad record", f"record: {e}")
    attrs = obj.get("request")
    if isinstance(attrs, Mapping):
        # Written since records keep what the decision read: it replays exactly.
        try:
            request = Request(attrs.get("prompt"), **{k: v for k, v in attrs.items() if k != "prompt"})
        except (RequestError, TypeError) as e:
            return _fail(where, "bad record", f"record: 'request': {e}")
        return TrafficItem(rid, group, request, where, "record", recorded)
    prompt = obj.get("prompt")
    text = prompt.get("text") if isinstance(prompt, Mapping) else None
    if not isinstance(text, str):
        return Unreplayable(
            where,
            "no_text",
            "record without prompt text",
            "record has no prompt text (written without log_prompts=True): cannot be replayed",
        )
    route = obj.get("route") or {}
    if not isinstance(route, Mapping):
        return _fail(where, "bad record", "record: 'route' must be an object")
    # An older record keeps only the request's whole text (system and every message), so
    # `prompt` replays as that whole text: documented in docs/replay.md.
    try:
        at = _time(obj.get("time"))
    except ValueError as e:
        return _fail(where, "bad time", f"record: {e}")
    request = Request(text, text=text, **normalize_route(route))
    return TrafficItem(rid, group, request, where, "record", recorded, time=at)


def read_traffic(
    paths: Iterable[str | Path], group_by: str | None = None
) -> Iterator[TrafficItem | Unreplayable]:
    """Every line of the files, in order, parsed: the simple serial reader.

    Use it to iterate traffic from Python (``learn`` does); `replay` parses in parallel.
    """
    path = tuple(group_by.split(".")) if group_by else None
    for name, start, lines in iter_chunks(paths):
        for offset, raw in enumerate(lines):
            item = parse_line(raw, Location(name, start + offset), path)
            if item is not None:
                yield item
