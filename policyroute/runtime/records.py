"""Decision records: one JSON line per routed request (schema documented in docs/records.md)."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from policyroute.decision import Decision
from policyroute.request import Request
from policyroute.runtime.attempts import Attempt

SCHEMA_VERSION = 1

Outcome = Literal["ok", "failed", "interrupted"]


def new_request_id() -> str:
    """policyroute's id of one request: the same form from every front end (serve answers it
    in `x-policyroute-request-id`, so a record is found from either side)."""
    return "pr_" + uuid.uuid4().hex[:24]


# A record's `attempts[]` are the attempts themselves: pydantic reads and writes the dataclass,
# so its fields are declared once (runtime/attempts.py). The name stays for readers of records.
AttemptRecord = Attempt


class PromptRecord(BaseModel):
    """The request text: by default only its length and digest, the text itself on opt-in."""

    model_config = ConfigDict(extra="forbid")

    length: int
    sha256: str
    text: str | None = None


class DecisionRecord(BaseModel):
    """One routed request."""

    model_config = ConfigDict(extra="forbid")

    v: int = SCHEMA_VERSION
    time: str
    request_id: str
    # Optional with a default: lines leave out nulls, and must still read back.
    policy: str | None = None
    revision: str
    rule: str
    tier: str
    model: str
    final_tier: str | None = None
    outcome: Outcome
    route: dict[str, Any] = {}
    attempts: list[Attempt]
    triggers: list[str]
    escalations: int
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    cost_usd: float
    latency_ms: float
    prompt: PromptRecord | None = None
    error: str | None = None
    shadow_cost_usd: float | None = None  # shadow attempts, apart from the request's own cost
    # The tier the rules chose when `sticky conversations` raised the request to its
    # conversation's previous tier (`tier` is then the raised one).
    sticky_from: str | None = None
    # The last user turn held only tool results: the request kept the tier of the turn that
    # issued the tool call (`sticky_from` names the tier the rules chose when it was raised).
    continuation: bool | None = None
    # With log_prompts: every attribute the decision read (`prompt`, `system`, `text`, turns,
    # tokens, tools, images, the user...), so `replay` decides exactly as the live request.
    request: dict[str, Any] | None = None


class RecordSink(Protocol):
    def write(self, record: BaseModel) -> None: ...


class RecordedCall(Protocol):
    """What every front end's call holds for its record: the Router's `Call`, serve's
    `ServedCall`, the middleware's `PendingCall`."""

    @property
    def request_id(self) -> str: ...
    @property
    def attempts(self) -> list[Attempt]: ...
    @property
    def route(self) -> dict[str, Any]: ...
    @property
    def request(self) -> Request: ...
    @property
    def sticky_from(self) -> str | None: ...
    @property
    def continuation(self) -> bool: ...


def record_call(
    sink: RecordSink | None,
    call: RecordedCall,
    decision: Decision,
    outcome: Outcome,
    *,
    latency_ms: float,
    log_prompts: bool,
    error: str | None = None,
    shadows: Sequence[Attempt] = (),
) -> None:
    """Write the record of one finished call (no sink: nothing). Every front end ends here,
    so a record reads the same whichever path the request took."""
    if sink is None:
        return
    write_record(
        sink,
        build_record(
            request_id=call.request_id,
            decision=decision,
            attempts=[*call.attempts, *shadows],
            latency_ms=latency_ms,
            outcome=outcome,
            route=call.route,
            prompt=prompt_record(call.request.text, log_prompts),
            error=error,
            sticky_from=call.sticky_from,
            continuation=call.continuation,
            request=call.request,
            log_prompts=log_prompts,
        ),
    )


class JsonlWriter:
    """Appends records to a file, one line each; safe to share between threads.

    Each line is written with one `write` call on a file opened in append mode and flushed
    under a lock, so concurrent requests never interleave halves of two lines.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, record: BaseModel) -> None:
        line = record.model_dump_json(exclude_none=True) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_record(sink: RecordSink, record: DecisionRecord) -> None:
    """Hand `record` to `sink`; a failing sink (a full disk, say) is logged, never raised:
    losing one record must not lose the answer, or the attempts of a failed request."""
    try:
        sink.write(record)
    except Exception:
        logging.getLogger("policyroute.records").exception(
            "could not write the record of request %s", record.request_id
        )


def sink_for(records: str | os.PathLike[str] | RecordSink | None) -> RecordSink | None:
    if records is None:
        return None
    if isinstance(records, str | os.PathLike):
        return JsonlWriter(records)
    return records


def prompt_record(text: str | None, log_prompts: bool) -> PromptRecord | None:
    if text is None:
        return None
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return PromptRecord(length=len(text), sha256=digest, text=text if log_prompts else None)


# The Request attributes a record keeps (classifier answers are not: replay asks again).
REQUEST_FIELDS = (
    "prompt",
    "system",
    "text",
    "task",
    "domain",
    "user_tier",
    "user_id",
    "files",
    "context_tokens",
    "output_tokens",
    "turns",
    "metadata",
    "has_tools",
    "has_images",
)


def request_record(request: Request | None, log_prompts: bool) -> dict[str, Any] | None:
    """What the decision read, for a record written with log_prompts (else None)."""
    if request is None or not log_prompts:
        return None
    out = {k: getattr(request, k) for k in REQUEST_FIELDS}
    return {k: v for k, v in out.items() if v not in (None, {}, False)}


def build_record(
    *,
    request_id: str,
    decision: Decision,
    attempts: Sequence[Attempt],
    latency_ms: float,
    outcome: Outcome,
    route: Mapping[str, Any] | None,
    prompt: PromptRecord | None,
    error: str | None = None,
    sticky_from: str | None = None,
    continuation: bool = False,
    request: Request | None = None,
    log_prompts: bool = False,
) -> DecisionRecord:
    generations = [a for a in attempts if a.kind == "generate"]
    final = generations[-1].tier if generations and outcome == "ok" else None
    shadows = [a for a in attempts if a.kind == "shadow"]
    billed = [a for a in attempts if a.kind != "shadow"]
    return DecisionRecord(
        time=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        request_id=request_id,
        policy=decision.policy,
        revision=decision.revision,
        rule=decision.rule,
        tier=decision.tier,
        model=decision.model,
        final_tier=final,
        outcome=outcome,
        route=dict(route or {}),
        attempts=[replace(a, latency_ms=round(a.latency_ms, 3)) for a in attempts],
        triggers=[a.trigger for a in generations if a.trigger],
        escalations=max(len(generations) - 1, 0),
        input_tokens=sum(a.input_tokens for a in billed),
        output_tokens=sum(a.output_tokens for a in billed),
        cache_creation_tokens=sum(a.cache_creation_tokens for a in billed),
        cache_read_tokens=sum(a.cache_read_tokens for a in billed),
        cost_usd=sum(a.cost_usd for a in billed),
        latency_ms=round(latency_ms, 3),
        prompt=prompt,
        error=error,
        shadow_cost_usd=sum(a.cost_usd for a in shadows) if shadows else None,
        sticky_from=sticky_from,
        continuation=True if continuation else None,
        request=request_record(request, log_prompts),
    )
