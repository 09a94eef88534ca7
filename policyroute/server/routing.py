"""A routed `POST /v1/messages`: decide, apply the sticky floor, climb the ladder, answer.

The steps are the runtime's own: `tiers_of` gives the ladder, `max_tokens_for` the limit of
each rung, `judge` the trigger an answer fires, `retryable_status` which failures climb,
`Attempt.answered` the accounting and `build_record` the record. What this module adds is
HTTP: the body goes upstream as JSON bytes and the answer comes back as the upstream's own
bytes (never re-serialized), streams included.

A stream is held back only until its first content event (so a tier that fails before
saying anything can still be replaced by the next one, as the Router does); from there on
every chunk is passed on as it arrives and a failure is reported in the stream, as the API
reports it: an `error` event.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from anthropic.types import Message
from pydantic import ValidationError
from starlette.responses import Response

from policyroute.decision import Decision, Tier
from policyroute.request import Request
from policyroute.runtime.answers import MalformedAnswerError, check_message
from policyroute.runtime.attempts import Attempt
from policyroute.runtime.calls import PolicySource
from policyroute.runtime.classifier import AnthropicClassifier
from policyroute.runtime.escalation import judge, max_tokens_for, retryable_status, tiers_of
from policyroute.runtime.records import RecordSink, build_record, prompt_record, write_record
from policyroute.runtime.sticky import Sticky
from policyroute.server.auth import Caller, redact
from policyroute.server.errors import error_body, error_response
from policyroute.server.metrics import Metrics
from policyroute.server.sse import StreamState
from policyroute.server.stream import ProxyStream
from policyroute.server.tracing import trace_call
from policyroute.server.upstream import (
    Upstream,
    UpstreamFailure,
    UpstreamResponse,
    response_headers,
)

MESSAGES = "/v1/messages"
Outcome = Literal["ok", "failed", "interrupted"]


@dataclass(slots=True)
class Services:
    """What every routed request shares."""

    source: PolicySource
    upstream: Upstream
    metrics: Metrics
    sticky: Sticky
    records: RecordSink | None = None
    log_prompts: bool = False
    secrets: tuple[str, ...] = ()


@dataclass(slots=True)
class Call:
    """One routed request on its way up the ladder."""

    body: dict[str, Any]
    headers: list[tuple[str, str]]
    request: Request
    route: dict[str, Any]
    caller: Caller
    conversation: str | None
    stream: bool
    max_tokens: int | None
    start: float = field(default_factory=time.perf_counter)
    request_id: str = field(default_factory=lambda: "pr_" + uuid.uuid4().hex[:24])
    attempts: list[Attempt] = field(default_factory=list)
    decision: Decision | None = None
    sticky_from: str | None = None


# -- deciding ---------------------------------------------------------------------------------


class _UpstreamMessages:
    """`messages.create` over the upstream, for a classifier run in a worker thread."""

    def __init__(self, upstream: Upstream, headers: list[tuple[str, str]], loop: Any) -> None:
        self._upstream = upstream
        self._headers = [*headers, ("content-type", "application/json")]
        self._loop = loop

    async def _create(self, params: dict[str, Any]) -> Message:
        response = await self._upstream.open(
            "POST", MESSAGES, self._headers, json.dumps(params).encode()
        )
        data = await self._upstream.read(response)
        if response.status_code >= 400:
            raise RuntimeError(f"HTTP {response.status_code}")
        return Message.model_validate_json(data)

    def create(self, **params: Any) -> Message:
        return asyncio.run_coroutine_threadsafe(self._create(params), self._loop).result()


class _Bridge:
    def __init__(self, messages: _UpstreamMessages) -> None:
        self.messages = messages


async def decide(services: Services, call: Call, *, classify: bool = True) -> Decision:
    """The policy's decision, raised to the conversation's floor when the policy is sticky."""
    source = services.source
    policy = source.policy
    if classify and source.has_classifiers():
        loop = asyncio.get_running_loop()
        bridge = _Bridge(_UpstreamMessages(services.upstream, call.headers, loop))
        classifier = AnthropicClassifier(bridge, call.attempts.append)
        decision = await asyncio.to_thread(source.decide, call.request, classifier)
    else:
        decision = source.decide(call.request, None)
    decision, call.sticky_from = services.sticky.apply(policy, decision, call.conversation)
    if call.sticky_from is not None:
        services.metrics.sticky_raises.inc()
    call.decision = decision
    return decision


# -- answering --------------------------------------------------------------------------------


def routing_headers(call: Call, tier: str | None) -> dict[str, str]:
    d = call.decision
    assert d is not None
    generations = [a for a in call.attempts if a.kind == "generate"]
    out = {
        "x-policyroute-routed": "true",
        "x-policyroute-tier": tier or d.tier,
        "x-policyroute-rule": d.rule,
        "x-policyroute-revision": d.revision,
        "x-policyroute-attempts": str(len(generations)),
        "x-policyroute-request-id": call.request_id,
    }
    triggers = [a.trigger for a in generations if a.trigger]
    if triggers:
        out["x-policyroute-triggers"] = ",".join(triggers)
    if call.sticky_from is not None:
        out["x-policyroute-sticky-from"] = call.sticky_from
    return out


def _finish(services: Services, call: Call, outcome: Outcome, error: str | None = None) -> None:
    decision = call.decision
    assert decision is not None
    generations = [a for a in call.attempts if a.kind == "generate"]
    answered = [a for a in generations if a.status == 200]
    final = generations[-1].tier if generations else decision.tier
    m = services.metrics
    m.requests.labels(final, decision.rule, outcome).inc()
    for a in generations[:-1]:
        if a.trigger:
            m.escalations.labels(a.trigger).inc()
    m.attempts(call.attempts)
    trace_call(call, outcome, error)
    if answered:
        services.sticky.remember(services.source.policy, call.conversation, answered[-1].tier)
    if services.records is not None:
        write_record(
            services.records,
            build_record(
                request_id=call.request_id,
                decision=decision,
                attempts=call.attempts,
                latency_ms=(time.perf_counter() - call.start) * 1000,
                outcome=outcome,
                route=call.route,
                prompt=prompt_record(call.request.text, services.log_prompts),
                error=redact(error, services.secrets) if error else None,
                sticky_from=call.sticky_from,
            ),
        )


def _api_message(data: bytes) -> str:
    try:
        obj = json.loads(data)
        return str(obj["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return data[:200].decode("utf-8", "replace")


def _status_failure(attempt: Attempt, status: int, data: bytes, start: float) -> str | None:
    """Account an error status; the trigger it fires, or None when no tier would do better."""
    attempt.status = status
    attempt.error = redact(f"HTTP {status}: {_api_message(data)}")
    trig = "error" if retryable_status(status) else None
    attempt.trigger = trig or "error"
    attempt.latency_ms = (time.perf_counter() - start) * 1000
    return trig


def _transport_failure(attempt: Attempt, failure: UpstreamFailure, start: float) -> str:
    attempt.error = failure.args[0]
    attempt.trigger = failure.trigger
    attempt.latency_ms = (time.perf_counter() - start) * 1000
    return failure.trigger


def _payload(call: Call, decision: Decision, index: int, tier: Tier) -> bytes:
    body = dict(call.body)
    body["model"] = tier.model
    body["max_tokens"] = max_tokens_for(decision, index, tier, call.max_tokens)
    return json.dumps(body, ensure_ascii=False).encode()


async def answer(services: Services, call: Call) -> Response:
    """Climb the ladder for a decided call and answer it (JSON or stream)."""
    decision = call.decision
    assert decision is not None
    tiers = tiers_of(decision)
    esc = decision.escalation
    up = services.upstream
    secrets = services.secrets
    for index, tier in enumerate(tiers):
        top = index == len(tiers) - 1
        attempt = Attempt(kind="generate", tier=tier.name, model=tier.model)
        call.attempts.append(attempt)
        start = time.perf_counter()
        try:
            response = await up.open(
                "POST", MESSAGES, call.headers, _payload(call, decision, index, tier)
            )
            if response.status_code >= 400 or not call.stream:
                data = await up.read(response)
        except UpstreamFailure as f:
            trig = _transport_failure(attempt, f, start)
            if trig in esc.triggers and not top:
                continue
            _finish(services, call, "failed", attempt.error)
            text = redact(f"upstream {tier.model}: {attempt.error}", secrets)
            return error_response(f.status, text, routing_headers(call, tier.name))
        attempt.upstream_request_id = response.headers.get("request-id")
        if response.status_code >= 400:
            status_trigger = _status_failure(attempt, response.status_code, data, start)
            if status_trigger is not None and status_trigger in esc.triggers and not top:
                continue
            _finish(services, call, "failed", attempt.error)
            headers = {**response_headers(response.headers), **routing_headers(call, tier.name)}
            return Response(data, response.status_code, headers=headers)
        if call.stream:
            result = await _open_stream(services, call, attempt, tier, response, start, top)
            if result is None:
                continue
            return result
        try:
            message = check_message(Message.model_validate_json(data))
        except (ValidationError, MalformedAnswerError) as e:
            attempt.status = response.status_code
            why = e.args[0] if isinstance(e, MalformedAnswerError) else "not a Messages API message"
            attempt.error = f"malformed answer: {why}"
            attempt.trigger = "error"
            attempt.latency_ms = (time.perf_counter() - start) * 1000
            if "error" in esc.triggers and not top:
                continue
            _finish(services, call, "failed", attempt.error)
            return error_response(
                502,
                f"upstream {tier.model} answered with a malformed message",
                routing_headers(call, tier.name),
            )
        attempt.answered(message, tier, start)
        attempt.upstream_request_id = response.headers.get("request-id")
        verdict = judge(message, esc)
        attempt.trigger = verdict.trigger
        if verdict.trigger is not None and not top:
            continue
        # At the top the last answer goes back as it is: the proxy stays transparent.
        _finish(services, call, "ok" if verdict.trigger is None else "failed")
        headers = {**response_headers(response.headers), **routing_headers(call, tier.name)}
        return Response(data, 200, headers=headers)
    raise AssertionError("unreachable: the ladder always has a first tier")


async def _open_stream(
    services: Services,
    call: Call,
    attempt: Attempt,
    tier: Tier,
    response: UpstreamResponse,
    start: float,
    top: bool,
) -> Response | None:
    """Read a stream up to its first content; None to climb to the next tier."""
    esc = call.decision.escalation if call.decision else None
    assert esc is not None
    state = StreamState(keep_text="confidence" in esc.triggers)
    held: list[bytes] = []
    chunks = response.chunks()
    try:
        async for chunk in chunks:
            held.append(chunk)
            state.feed(chunk)
            if state.started or state.error is not None:
                break
    except UpstreamFailure as e:
        response.close()
        trig = _transport_failure(attempt, e, start)
        if trig in esc.triggers and not top:
            return None
        _finish(services, call, "failed", attempt.error)
        return error_response(
            504 if trig == "timeout" else 502,
            redact(f"upstream {tier.model}: {attempt.error}", services.secrets),
            routing_headers(call, tier.name),
        )
    headers = {**response_headers(response.headers), **routing_headers(call, tier.name)}
    if state.error is not None and not state.started:
        response.close()
        attempt.status = 200
        attempt.error = redact(
            f"stream error event: {state.error.get('type')}: {state.error.get('message')}"
        )
        attempt.trigger = "error"
        attempt.latency_ms = (time.perf_counter() - start) * 1000
        if "error" in esc.triggers and not top:
            return None
        _finish(services, call, "failed", attempt.error)
        return Response(b"".join(held), 200, headers=headers)
    if not state.started:
        # The stream ended without content: judge the whole answer like a JSON one.
        response.close()
        message = state.final_message(tier.model)
        if message is None:
            attempt.status = 200
            attempt.error = "malformed answer: the stream did not describe a message"
            attempt.trigger = "error"
            if "error" in esc.triggers and not top:
                return None
            _finish(services, call, "failed", attempt.error)
            return Response(b"".join(held), 200, headers=headers)
        attempt.answered(message, tier, start)
        attempt.upstream_request_id = response.headers.get("request-id")
        verdict = judge(message, esc)
        attempt.trigger = verdict.trigger
        if verdict.trigger is not None and not top:
            return None
        _finish(services, call, "ok" if verdict.trigger is None else "failed")
        return Response(b"".join(held), 200, headers=headers)
    return ProxyStream(
        _relay(services, call, attempt, tier, response, chunks, held, state, start),
        headers=headers,
    )


def _stream_error_event(message: str) -> bytes:
    return b"event: error\ndata: " + error_body(502, message) + b"\n\n"


async def _relay(
    services: Services,
    call: Call,
    attempt: Attempt,
    tier: Tier,
    response: UpstreamResponse,
    chunks: AsyncIterator[bytes],
    held: list[bytes],
    state: StreamState,
    start: float,
) -> AsyncIterator[bytes]:
    """The committed stream: what was held, then every chunk as it arrives."""
    outcome: Outcome = "interrupted"
    error: str | None = "the client went away before the stream ended"
    try:
        for chunk in held:
            yield chunk
        held.clear()
        async for chunk in chunks:
            state.feed(chunk)
            yield chunk
        if state.error is not None:
            error = redact(
                f"stream error event: {state.error.get('type')}: {state.error.get('message')}"
            )
        elif not state.finished:
            error = "the upstream stream ended without message_stop"
        else:
            outcome, error = "ok", None
    except UpstreamFailure as e:
        error = redact(f"upstream stream failed: {e}", services.secrets)
        yield _stream_error_event(
            f"upstream {tier.model}: the stream failed after content was sent"
        )
    finally:
        response.close()
        message = state.final_message(tier.model)
        if message is not None:
            attempt.answered(message, tier, start)
            attempt.upstream_request_id = response.headers.get("request-id")
            assert call.decision is not None
            if outcome == "ok":
                # Content already went out: a trigger is recorded, never acted on.
                attempt.trigger = judge(message, call.decision.escalation).trigger
        else:
            attempt.status = 200
            attempt.latency_ms = (time.perf_counter() - start) * 1000
        if outcome != "ok":
            attempt.error = error
        _finish(services, call, outcome, error)
