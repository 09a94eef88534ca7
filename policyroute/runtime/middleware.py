"""Routing as Anthropic SDK middleware: `Anthropic(middleware=[RoutingMiddleware(store)])`.

A `/v1/messages` request whose model is `auto` (or the policy's name) is routed: the model
is replaced by the decided tier's and the request climbs the ladder when a trigger fires.
Routing attributes travel in the body as `extra_body={"route": {...}}` and are stripped
before sending. Any other request passes through untouched.

The SDK runs middleware inside its retry loop, once per HTTP attempt. So that `error` and
`timeout` fire only after the client's own retries, a retryable failure is handed back to
the SDK while it still has retries left; the call's routing state (its tier on the ladder,
its attempts) is kept by the call's idempotency key, which the SDK reuses across retries.
The retry budget is the call's, shared by every tier it climbs to.

Streaming requests are routed and escalate on failures before the stream opens (HTTP
status, connection, timeout); the body of a stream is passed through uninspected.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import anthropic
from anthropic._middleware import AsyncCallNext, CallNext, Middleware
from anthropic._request import APIRequest
from anthropic._response import APIResponse, AsyncAPIResponse
from anthropic.types import Message

from policyroute.decision import Decision, Tier
from policyroute.request import Request
from policyroute.runtime.attempts import Attempt
from policyroute.runtime.classifier import AnthropicClassifier
from policyroute.runtime.escalation import (
    describe,
    error_trigger,
    judge,
    retryable_status,
    tiers_of,
)
from policyroute.runtime.records import RecordSink, build_record, prompt_record, sink_for
from policyroute.runtime.router import PolicySource
from policyroute.runtime.shadow import AsyncShadow, Served, ShadowConfig, ThreadShadow

# Calls whose SDK retry is pending; bounded so an abandoned call cannot leak forever.
MAX_PENDING_CALLS = 4096


@dataclass(slots=True)
class _State:
    decision: Decision
    tiers: tuple[Tier, ...]
    body: dict[str, Any]
    route: dict[str, Any]
    request: Request
    start: float
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    index: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    send: Any = None  # how a shadow copy is sent: this call's middleware chain


def _is_messages(request: APIRequest) -> bool:
    url = request.url.split("?", 1)[0]
    return request.method.lower() == "post" and url.endswith("/v1/messages")


def _error_for(response: APIResponse[Any] | AsyncAPIResponse[Any]) -> anthropic.APIStatusError:
    raw = response.http_response
    return anthropic.APIStatusError(f"HTTP {raw.status_code}", response=raw, body=None)


class _ChainMessages:
    """`messages.create` over the rest of the middleware chain, for the classifier."""

    def __init__(self, request: APIRequest, call_next: CallNext) -> None:
        self._request = request
        self._call_next = call_next

    def create(self, **params: Any) -> Message:
        response = self._call_next(_side_request(self._request, params))
        if response.status_code >= 400:
            raise _error_for(response)
        message: Message = response.parse()
        return message


class _AsyncChainMessages:
    """The same over an async chain, from the worker thread decide() runs in."""

    def __init__(
        self, request: APIRequest, call_next: AsyncCallNext, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._request = request
        self._call_next = call_next
        self._loop = loop

    async def _create(self, params: dict[str, Any]) -> Message:
        response = await self._call_next(_side_request(self._request, params))
        if response.status_code >= 400:
            raise _error_for(response)
        message: Message = await response.parse()
        return message

    def create(self, **params: Any) -> Message:
        return asyncio.run_coroutine_threadsafe(self._create(params), self._loop).result()


class _ChainClient:
    def __init__(self, messages: _ChainMessages | _AsyncChainMessages) -> None:
        self.messages = messages


def _side_request(request: APIRequest, body: dict[str, Any], role: str = "classify") -> APIRequest:
    """A non-streaming request for `body`, with its own idempotency key."""
    copied = request.copy(body=body)
    copied.options.idempotency_key = f"{request.options.idempotency_key}-{role}"
    return APIRequest(
        options=copied.options,
        cast_to=Message,
        stream=False,
        retries_taken=request.retries_taken,
    )


class _ShadowSend:
    """Sends a shadow copy down this call's middleware chain, from a worker thread."""

    def __init__(self, request: APIRequest, call_next: CallNext) -> None:
        self._request = request
        self._call_next = call_next

    def __call__(self, params: dict[str, Any]) -> Message:
        response = self._call_next(_side_request(self._request, params, "shadow"))
        if response.status_code >= 400:
            raise _error_for(response)
        message: Message = response.parse()
        return message


class _AsyncShadowSend:
    def __init__(self, request: APIRequest, call_next: AsyncCallNext) -> None:
        self._request = request
        self._call_next = call_next

    async def send(self, params: dict[str, Any]) -> Message:
        response = await self._call_next(_side_request(self._request, params, "shadow"))
        if response.status_code >= 400:
            raise _error_for(response)
        message: Message = await response.parse()
        return message


class RoutingMiddleware(Middleware):
    """Route `model="auto"` requests through a policy (or a store) inside the Anthropic SDK.

    `max_retries` must match the client's (the middleware cannot see the client); it is the
    SDK's default unless told otherwise, and a per-call `max_retries` option wins.
    """

    def __init__(
        self,
        store_or_policy: Any,
        *,
        max_retries: int = anthropic.DEFAULT_MAX_RETRIES,
        records: str | os.PathLike[str] | RecordSink | None = None,
        log_prompts: bool = False,
        on_attempts: Callable[[Decision, list[Attempt]], None] | None = None,
        shadow: ShadowConfig | None = None,
    ) -> None:
        self.source = PolicySource(store_or_policy)
        # One runner per client kind: a middleware serves a sync or an async client.
        self._shadow_config = shadow
        self._shadow_sync: ThreadShadow | None = None
        self._shadow_async: AsyncShadow | None = None
        self.max_retries = max_retries
        self.records = sink_for(records)
        self.log_prompts = log_prompts
        self.on_attempts = on_attempts
        self._pending: OrderedDict[str, _State] = OrderedDict()
        self._lock = threading.Lock()

    # -- shared steps ----------------------------------------------------------------------

    def _routed_body(self, request: APIRequest) -> dict[str, Any] | None:
        if not _is_messages(request):
            return None
        body = request.json
        if not isinstance(body, Mapping) or body.get("model") not in self.source.routed_names():
            return None
        return dict(body)

    def _take_state(self, request: APIRequest) -> _State | None:
        key = request.options.idempotency_key
        if key is None:
            return None
        with self._lock:
            return self._pending.pop(key, None)

    def _keep_state(self, request: APIRequest, state: _State) -> None:
        key = request.options.idempotency_key
        if key is None:
            return
        with self._lock:
            self._pending[key] = state
            while len(self._pending) > MAX_PENDING_CALLS:
                self._pending.popitem(last=False)

    def _parse(self, body: dict[str, Any]) -> tuple[dict[str, Any], Request]:
        route = body.pop("route", None) or {}
        if not isinstance(route, Mapping):
            raise ValueError("'route' must be an object of routing attributes")
        return dict(route), Request.from_anthropic(body, **route)

    def _sdk_will_retry(self, request: APIRequest, status: int | None) -> bool:
        budget = request.max_retries if isinstance(request.max_retries, int) else self.max_retries
        if request.retries_taken >= budget:
            return False
        return status is None or retryable_status(status)

    def _attempt_request(self, request: APIRequest, state: _State) -> tuple[APIRequest, Attempt]:
        tier = state.tiers[state.index]
        body = {**state.body, "model": tier.model}
        req = request.copy(body=body)
        if state.index:
            # A new model is a new request: never let an idempotency key tie it to the last.
            req.options.idempotency_key = f"{request.options.idempotency_key}-{tier.name}"
        attempt = Attempt(kind="generate", tier=tier.name, model=tier.model)
        state.attempts.append(attempt)
        return req, attempt

    def _finish(
        self,
        state: _State,
        outcome: Literal["ok", "failed"],
        error: str | None,
        message: Message | None = None,
    ) -> None:
        latency = (time.perf_counter() - state.start) * 1000

        def write(shadows: Sequence[Attempt] = ()) -> None:
            if self.records is not None:
                self.records.write(
                    build_record(
                        request_id=state.request_id,
                        decision=state.decision,
                        attempts=[*state.attempts, *shadows],
                        latency_ms=latency,
                        outcome=outcome,
                        route=state.route,
                        prompt=prompt_record(state.request.text, self.log_prompts),
                        error=error,
                    )
                )

        if self.on_attempts is not None:
            self.on_attempts(state.decision, state.attempts)
        if outcome == "ok" and message is not None and self._shadow(state, message, write):
            return
        write()

    @property
    def shadow_stats(self) -> dict[str, float]:
        """Shadow counters (sampled, skipped, succeeded, failed, spent) of both client kinds."""
        total: dict[str, float] = {}
        for runner in (self._shadow_sync, self._shadow_async):
            for k, v in (runner.stats.as_dict() if runner is not None else {}).items():
                total[k] = total.get(k, 0) + v
        return total

    def _shadow(
        self, state: _State, message: Message, write: Callable[[Sequence[Attempt]], None]
    ) -> bool:
        config = self._shadow_config
        if config is None or state.send is None:
            return False
        shadows_for = getattr(self.source.policy, "shadows_for", None)
        shadows = shadows_for(state.decision.tier) if shadows_for is not None else ()
        if not shadows:
            return False
        params = {
            k: v for k, v in state.body.items() if k not in ("model", "stream", "max_tokens")
        }
        max_tokens = state.body.get("max_tokens")
        served = Served(
            request_id=state.request_id,
            decision=state.decision,
            params=params,
            max_tokens=max_tokens if isinstance(max_tokens, int) else None,
            route=state.route,
            text=state.request.text,
            answer=state.attempts[-1],
            message=message,
            finish=write,
        )
        if asyncio.iscoroutinefunction(state.send):
            if self._shadow_async is None:
                self._shadow_async = AsyncShadow(config, self.log_prompts)
            return self._shadow_async.offer(served, shadows, state.send)
        if self._shadow_sync is None:
            with self._lock:
                if self._shadow_sync is None:
                    self._shadow_sync = ThreadShadow(config, self.log_prompts)
        return self._shadow_sync.offer(served, shadows, state.send)

    def close(self) -> None:
        """Wait for the shadow calls of a sync client still running."""
        if self._shadow_sync is not None:
            self._shadow_sync.close()

    async def aclose(self) -> None:
        """Wait for the shadow calls of an async client still running."""
        if self._shadow_async is not None:
            await self._shadow_async.drain()

    def _on_exception(
        self, request: APIRequest, state: _State, attempt: Attempt, exc: Exception, start: float
    ) -> bool:
        """Record a connection failure; True to climb, False to re-raise it."""
        attempt.error = describe(exc)
        trig = error_trigger(exc)
        attempt.trigger = trig or "error"
        attempt.latency_ms = (time.perf_counter() - start) * 1000
        if trig is not None and self._sdk_will_retry(request, None):
            self._keep_state(request, state)
            return False
        if trig in state.decision.escalation.triggers and state.index + 1 < len(state.tiers):
            state.index += 1
            return True
        self._finish(state, "failed", attempt.error)
        return False

    def _on_status(
        self, request: APIRequest, state: _State, attempt: Attempt, status: int, start: float
    ) -> Literal["return", "climb"]:
        attempt.status = status
        attempt.error = f"HTTP {status}"
        attempt.trigger = "error"
        attempt.latency_ms = (time.perf_counter() - start) * 1000
        if not retryable_status(status):
            self._finish(state, "failed", attempt.error)
            return "return"
        if self._sdk_will_retry(request, status):
            self._keep_state(request, state)
            return "return"
        if "error" in state.decision.escalation.triggers and state.index + 1 < len(state.tiers):
            state.index += 1
            return "climb"
        self._finish(state, "failed", attempt.error)
        return "return"

    def _on_message(
        self, state: _State, attempt: Attempt, message: Any | None, start: float
    ) -> bool:
        """Record an answer; True to climb."""
        if message is None:  # a stream: its body is the caller's, uninspected
            attempt.status = 200
            attempt.latency_ms = (time.perf_counter() - start) * 1000
            self._finish(state, "ok", None)
            return False
        attempt.answered(message, state.tiers[state.index], start)
        verdict = judge(message, state.decision.escalation)
        attempt.trigger = verdict.trigger
        if verdict.trigger is not None and state.index + 1 < len(state.tiers):
            state.index += 1
            return True
        # At the top the last answer is returned as it is: the middleware stays transparent.
        self._finish(state, "ok" if verdict.trigger is None else "failed", None, message)
        return False

    # -- sync ------------------------------------------------------------------------------

    def handle(self, request: APIRequest, call_next: CallNext) -> APIResponse[Any]:
        body = self._routed_body(request)
        if body is None:
            return call_next(request)
        state = self._take_state(request)
        if state is None:
            start = time.perf_counter()
            route, routed = self._parse(body)
            attempts: list[Attempt] = []
            chain = _ChainClient(_ChainMessages(request, call_next))
            decision = self.source.decide(routed, AnthropicClassifier(chain, attempts.append))
            state = _State(
                decision, tiers_of(decision), body, route, routed, start, attempts=attempts
            )
        state.send = _ShadowSend(request, call_next) if not request.stream else None
        while True:
            req, attempt = self._attempt_request(request, state)
            start = time.perf_counter()
            try:
                response = call_next(req)
            except anthropic.APIConnectionError as e:
                if self._on_exception(request, state, attempt, e, start):
                    continue
                raise
            if response.status_code >= 400:
                if self._on_status(request, state, attempt, response.status_code, start) == "climb":
                    response.close()
                    continue
                return response
            message = None if request.stream else response.parse()
            if self._on_message(state, attempt, message, start):
                continue
            return response

    # -- async -----------------------------------------------------------------------------

    async def handle_async(
        self, request: APIRequest, call_next: AsyncCallNext
    ) -> AsyncAPIResponse[Any]:
        body = self._routed_body(request)
        if body is None:
            return await call_next(request)
        state = self._take_state(request)
        if state is None:
            start = time.perf_counter()
            route, routed = self._parse(body)
            attempts: list[Attempt] = []
            decision = await self._decide_async(request, call_next, attempts, routed)
            state = _State(
                decision, tiers_of(decision), body, route, routed, start, attempts=attempts
            )
        state.send = _AsyncShadowSend(request, call_next).send if not request.stream else None
        while True:
            sub, attempt = self._attempt_request(request, state)
            start = time.perf_counter()
            try:
                response = await call_next(sub)
            except anthropic.APIConnectionError as e:
                if self._on_exception(request, state, attempt, e, start):
                    continue
                raise
            if response.status_code >= 400:
                if self._on_status(request, state, attempt, response.status_code, start) == "climb":
                    await response.close()
                    continue
                return response
            message = None if request.stream else await response.parse()
            if self._on_message(state, attempt, message, start):
                continue
            return response

    async def _decide_async(
        self, request: APIRequest, call_next: AsyncCallNext, attempts: list[Attempt], req: Request
    ) -> Decision:
        if not self.source.has_classifiers():
            return self.source.decide(req, None)
        loop = asyncio.get_running_loop()
        classifier = AnthropicClassifier(
            _ChainClient(_AsyncChainMessages(request, call_next, loop)), attempts.append
        )
        decided: Awaitable[Decision] = asyncio.to_thread(self.source.decide, req, classifier)
        return await decided
