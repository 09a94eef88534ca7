"""A routed `POST /v1/messages`: decide, apply the sticky floor, drive the ladder, answer.

The ladder (`runtime/ladder.py`) decides every rung, as it does for the Router and the SDK
middleware; this module only does the HTTP it asks for (`server/rung.py`): the body goes
upstream as JSON bytes and the answer comes back as the upstream's own bytes (never
re-serialized), streams included.

A stream is held back until its first content event; from there on every chunk is passed on
as it arrives, still under the rung's deadline, and a failure is reported in the stream as
the API reports it: an `error` event (the record says `interrupted`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from anthropic.types import Message
from starlette.responses import Response

from policyroute.decision import CONFIDENCE, Decision
from policyroute.request import Request
from policyroute.runtime.attempts import Attempt
from policyroute.runtime.calls import PolicySource
from policyroute.runtime.classifier import AnthropicClassifier
from policyroute.runtime.deadlines import Clock, DeadlineExceeded, Deadlines
from policyroute.runtime.ladder import Answer, AttemptHook, Failure, Ladder, Step, Tried, Try
from policyroute.runtime.records import RecordSink, new_request_id, record_call
from policyroute.runtime.redact import Redactor
from policyroute.runtime.shadowing import AsyncShadow, Served
from policyroute.runtime.spend import SpendMeter, waits_on_state
from policyroute.runtime.sse import StreamErrorEvent
from policyroute.runtime.sticky import Sticky
from policyroute.server.auth import Caller
from policyroute.server.deferred import DeferredSink
from policyroute.server.errors import error_body, error_response
from policyroute.server.metrics import Metrics
from policyroute.server.rung import MESSAGES, Rung, try_rung
from policyroute.server.stream import ProxyStream
from policyroute.server.tracing import trace_call
from policyroute.server.upstream import Upstream, UpstreamFailure, response_headers

log = logging.getLogger("policyroute.server")

RecordOutcome = Literal["ok", "failed", "interrupted"]


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
    # Spend counters over the sticky floors' state (in process, or Redis with --state).
    spend: SpendMeter | None = None
    deadlines: Deadlines = field(default_factory=Deadlines)
    shadow: AsyncShadow | None = None
    # Called with each generation attempt once its cost is known (spend counters).
    on_attempt: AttemptHook | None = None

    @property
    def redactor(self) -> Redactor:
        return Redactor(self.secrets)


@dataclass(slots=True)
class ServedCall:
    """One routed request on its way up the ladder."""

    body: dict[str, Any]
    headers: list[tuple[str, str]]
    request: Request
    route: dict[str, Any]
    caller: Caller
    conversation: str | None
    stream: bool
    max_tokens: int | None
    query: str = ""
    start: float = field(default_factory=time.perf_counter)
    request_id: str = field(default_factory=new_request_id)
    attempts: list[Attempt] = field(default_factory=list)
    decision: Decision | None = None
    sticky_from: str | None = None
    owners: dict[str, str] = field(default_factory=dict)  # whose spend its cost adds to
    continuation: bool = False


# -- deciding ---------------------------------------------------------------------------------


class _UpstreamMessages:
    """`messages.create` over the upstream, for a classifier (or a shadow call)."""

    def __init__(
        self, upstream: Upstream, headers: list[tuple[str, str]], loop: Any = None
    ) -> None:
        self._upstream = upstream
        self._headers = [*headers, ("content-type", "application/json")]
        self._loop = loop

    async def send(self, params: dict[str, Any]) -> Message:
        response = await self._upstream.open(
            "POST", MESSAGES, self._headers, json.dumps(params).encode()
        )
        data = await self._upstream.read(response)
        if response.status_code >= 400:
            raise RuntimeError(f"HTTP {response.status_code}")
        return Message.model_validate_json(data)

    def create(self, **params: Any) -> Message:
        return asyncio.run_coroutine_threadsafe(self.send(params), self._loop).result()


class _Bridge:
    def __init__(self, messages: _UpstreamMessages) -> None:
        self.messages = messages


async def decide(services: Services, call: ServedCall, *, classify: bool = True) -> Decision:
    """The policy's decision, raised to the conversation's floor when the policy is sticky."""
    source = services.source
    policy = source.policy
    spend = services.spend
    if spend is not None:
        call.owners = spend.owners(policy, call.request.user_id, call.caller.scope or None)
        call.request = spend.attach(policy, call.request, call.owners)
    # A shared state is a round trip: a floor or spend read is made off the event loop.
    state = services.sticky.state
    blocking = waits_on_state(state, policy) or (state.blocking and call.continuation)
    if classify and source.has_classifiers():
        loop = asyncio.get_running_loop()
        bridge = _Bridge(_UpstreamMessages(services.upstream, call.headers, loop))
        classifier = AnthropicClassifier(bridge, call.attempts.append)
        decision = await asyncio.to_thread(source.decide, call.request, classifier)
        if blocking:
            decision, call.sticky_from = await asyncio.to_thread(_stick, services, call, decision)
        else:
            decision, call.sticky_from = _stick(services, call, decision)
    elif blocking:
        decision, call.sticky_from = await asyncio.to_thread(_decide_and_stick, services, call)
    else:
        decision, call.sticky_from = _decide_and_stick(services, call)
    if call.sticky_from is not None:
        services.metrics.sticky_raises.inc()
    call.decision = decision
    return decision


def _stick(services: Services, call: ServedCall, decision: Decision) -> tuple[Decision, str | None]:
    policy = services.source.policy
    return services.sticky.apply(policy, decision, call.conversation, call.continuation)


def _decide_and_stick(services: Services, call: ServedCall) -> tuple[Decision, str | None]:
    return _stick(services, call, services.source.decide(call.request, None))


# -- answering --------------------------------------------------------------------------------


def routing_headers(call: ServedCall, tier: str | None) -> dict[str, str]:
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
    if generations:
        out["x-policyroute-model"] = generations[-1].model
    triggers = [a.trigger for a in generations if a.trigger]
    if triggers:
        out["x-policyroute-triggers"] = ",".join(triggers)
    if call.sticky_from is not None:
        out["x-policyroute-sticky-from"] = call.sticky_from
    return out


def account(services: Services, call: ServedCall, outcome: RecordOutcome) -> None:
    """The request's metrics, its conversation's sticky floor and its one log line."""
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
    trace_call(call, outcome)
    if answered:
        services.sticky.remember(services.source.policy, call.conversation, answered[-1].tier)
    if services.spend is not None:
        services.spend.count_classifiers(call.owners, call.attempts)
    log.info(
        "%s %s rule=%s tier=%s final=%s attempts=%d outcome=%s %.1f ms",
        call.request_id,
        "stream" if call.stream else "json",
        decision.rule,
        decision.tier,
        final,
        len(generations),
        outcome,
        (time.perf_counter() - call.start) * 1000,
    )


def record(
    services: Services,
    call: ServedCall,
    outcome: RecordOutcome,
    error: str | None = None,
    shadows: Sequence[Attempt] = (),
    latency: float | None = None,
) -> None:
    decision = call.decision
    assert decision is not None
    if latency is None:
        latency = (time.perf_counter() - call.start) * 1000
    sink = services.records
    deferred = sink if isinstance(sink, DeferredSink) else None
    write = partial(
        record_call,
        sink if deferred is None else deferred.sink,
        call,
        decision,
        outcome,
        latency_ms=latency,
        log_prompts=services.log_prompts,
        error=error,
        shadows=tuple(shadows),
    )
    if deferred is None:
        write()
    else:
        # Built and written once the answer is out; the call is finished, nothing changes it.
        deferred.defer(write)


def finish(
    services: Services, call: ServedCall, outcome: RecordOutcome, error: str | None = None
) -> None:
    account(services, call, outcome)
    record(services, call, outcome, error)


def _ladder(services: Services, call: ServedCall, decision: Decision) -> Ladder:
    shadows_for = getattr(services.source.policy, "shadows_for", None)
    return Ladder(
        decision,
        Clock(services.deadlines, call.start),
        requested=call.max_tokens,
        thinking=call.body.get("thinking"),
        shadows_for=shadows_for if services.shadow is not None and callable(shadows_for) else None,
        on_attempt=services.spend.hook(call.owners, services.on_attempt)
        if services.spend is not None
        else services.on_attempt,
        redactor=Redactor((*services.secrets, *call.caller.secrets)),
        attempts=call.attempts,
    )


async def answer(services: Services, call: ServedCall) -> Response:
    """Climb the ladder for a decided call and answer it (JSON or stream)."""
    decision = call.decision
    assert decision is not None
    ladder = _ladder(services, call, decision)
    keep_text = CONFIDENCE.name in decision.escalation.triggers
    loop = asyncio.get_running_loop()
    step: Step = ladder.first()
    rung: Rung | None = None
    while isinstance(step, Try):
        payload = json.dumps(step.params(call.body), ensure_ascii=False).encode()
        end = call_end(ladder.clock, services.deadlines, step.max_tokens, loop.time())
        rung = await try_rung(
            services.upstream, call.headers, call.query, payload, call.stream, end, keep_text
        )
        if rung.live:
            headers = {
                **response_headers(rung.headers),
                **routing_headers(call, step.tier.name),
            }
            relay = _relay(services, call, ladder, step, rung, end)
            return ProxyStream(relay, headers=headers)
        step = ladder.settle(step, rung.tried)
    assert rung is not None
    tier = call.attempts[-1].tier
    if isinstance(step, Answer):
        account(services, call, "ok")
        if not _shadow(services, call, step, decision):
            record(services, call, "ok")
    else:
        finish(services, call, "failed", step.reason)
    return _respond(call, ladder, step, rung, tier, services)


def call_end(clock: Clock, deadlines: Deadlines, max_tokens: int, now_loop: float) -> float:
    """The rung's deadline on the event loop's clock."""
    return now_loop + (clock.attempt_end(deadlines, max_tokens) - time.perf_counter())


def _respond(
    call: ServedCall,
    ladder: Ladder,
    step: Answer | Failure,
    rung: Rung,
    tier: str,
    services: Services,
) -> Response:
    headers = routing_headers(call, tier)
    if isinstance(step, Failure) and (step.error is not None and rung.data == b""):
        # Nothing came back to pass on (a transport failure, a deadline, a broken body).
        timeout = isinstance(step.error, DeadlineExceeded) or (
            isinstance(step.error, UpstreamFailure) and step.error.timeout
        )
        return error_response(504 if timeout else 502, ladder.summary(step), headers)
    if (
        isinstance(step, Failure)
        and step.error is not None
        and rung.status == 200
        and not isinstance(step.error, StreamErrorEvent)
    ):
        return error_response(502, ladder.summary(step), headers)
    # An answer, the caller's own error (400, 404...) or the top rung's last answer: the
    # upstream's bytes as they came (the proxy stays transparent).
    out = {**response_headers(rung.headers), **headers}
    if call.stream and rung.status == 200:
        return Response(rung.data, 200, headers=out, media_type="text/event-stream")
    return Response(rung.data, rung.status, headers=out)


def _shadow(services: Services, call: ServedCall, step: Answer, decision: Decision) -> bool:
    """Offer the shadow copies; True when the runner writes the record once they end."""
    runner = services.shadow
    if runner is None or not step.shadows:
        return False
    send = _UpstreamMessages(services.upstream, call.headers).send
    latency = (time.perf_counter() - call.start) * 1000
    served = Served(
        request_id=call.request_id,
        decision=decision,
        params={k: v for k, v in call.body.items() if k not in ("model", "stream", "max_tokens")},
        max_tokens=call.max_tokens,
        route=call.route,
        text=call.request.text,
        answer=call.attempts[-1],
        message=step.message,
        finish=lambda extra: record(services, call, "ok", shadows=extra, latency=latency),
    )
    return runner.offer(served, step.shadows, send)


def _stream_error_event(message: str) -> bytes:
    return b"event: error\ndata: " + error_body(502, message) + b"\n\n"


async def _relay(
    services: Services,
    call: ServedCall,
    ladder: Ladder,
    step: Try,
    rung: Rung,
    end: float,
) -> AsyncIterator[bytes]:
    """The committed stream: what was held, then every chunk as it arrives, under the
    rung's deadline. The ladder settles the rung when the stream has ended."""
    response, chunks, state = rung.response, rung.chunks, rung.state
    assert response is not None and chunks is not None and state is not None
    outcome: RecordOutcome = "interrupted"
    error: str | None = "the client went away before the stream ended"
    tried = Tried(sent=True, request_id=rung.tried.request_id)
    settled: Step | None = None
    try:
        yield rung.data
        while True:
            try:
                async with asyncio.timeout_at(end):
                    chunk = await chunks.__anext__()
            except StopAsyncIteration:
                break
            state.feed(chunk)
            yield chunk
        if state.error is not None:
            err = state.error
            tried.error = StreamErrorEvent(
                f"stream error event: {err.get('type')}: {err.get('message')}"
            )
        elif not state.finished:
            tried.error = StreamErrorEvent("the upstream stream ended without message_stop")
        else:
            tried.message = state.final_message(step.tier.model)
            if tried.message is None:
                tried.error = StreamErrorEvent("the stream did not describe a message")
        settled = ladder.settle(step, tried)
        if isinstance(settled, Failure) and state.error is None:
            yield _stream_error_event(f"upstream {step.tier.model}: {settled.reason}")
    except (TimeoutError, UpstreamFailure) as e:
        failure: BaseException = (
            DeadlineExceeded("the attempt ran past its deadline")
            if isinstance(e, TimeoutError)
            else e
        )
        tried.error = failure
        settled = ladder.settle(step, tried)
        yield _stream_error_event(
            f"upstream {step.tier.model}: the stream failed after content was sent"
        )
    finally:
        response.close()
        if settled is None:
            # The client went away: the ladder never hears of it; account what was seen.
            attempt = step.attempt
            message = state.final_message(step.tier.model)
            if message is not None:
                attempt.answered(message, step.tier, step.start)
            else:
                attempt.status = 200
                attempt.latency_ms = (time.perf_counter() - step.start) * 1000
            attempt.error = error
        elif isinstance(settled, Answer):
            outcome, error = "ok", None
        elif isinstance(settled, Failure):  # content was sent: the ladder never climbs
            error = settled.reason
        finish(services, call, outcome, error)
