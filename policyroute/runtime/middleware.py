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

The middleware never raises a request's `max_tokens`: the tier's cap is a ceiling on the
caller's value. A non-streaming call is therefore never longer than the caller asked for,
and the SDK's own "streaming is required" rule applies to it as it would without routing;
long outputs go through `client.messages.stream(model="auto", ...)`, which is routed too.

When a routed request fails for good (every tier tried, or a failure no tier would fix) the
middleware raises `EscalationError` carrying every attempt, with the SDK's own error as
`last_error`. A `retry-after` above `max_retry_after` is not waited for: the tier counts as
failed. An answer that is not a well-formed message counts as an upstream error.
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
from typing import TYPE_CHECKING, Any, Literal

import anthropic
from anthropic.types import Message

from policyroute import tracing
from policyroute.decision import Decision, Tier
from policyroute.request import Request
from policyroute.runtime.answers import MalformedAnswerError, check_message
from policyroute.runtime.attempts import Attempt, EscalationError
from policyroute.runtime.calls import PolicySource
from policyroute.runtime.chain import (
    AsyncChainMessages,
    ChainClient,
    ChainMessages,
    error_for,
    is_messages,
    secrets_of,
    side_request,
)
from policyroute.runtime.classifier import AnthropicClassifier
from policyroute.runtime.deadlines import (
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_REQUEST_SECONDS,
    retry_after,
)
from policyroute.runtime.escalation import (
    describe,
    error_trigger,
    judge,
    max_tokens_for,
    retryable_status,
    tiers_of,
)
from policyroute.runtime.records import (
    RecordSink,
    build_record,
    prompt_record,
    sink_for,
    write_record,
)
from policyroute.runtime.redact import redact
from policyroute.runtime.sdk import (
    APIRequest,
    APIResponse,
    AsyncAPIResponse,
    AsyncCallNext,
    CallNext,
    Middleware,
    request_body,
    with_body,
)
from policyroute.runtime.shadow import AsyncShadow, Served, ShadowConfig, ThreadShadow
from policyroute.runtime.sticky import Sticky, conversation_key, explicit_conversation

if TYPE_CHECKING:
    from policyroute.runtime.calls import PolicyLike

# The SDK's default read timeout: a deadline further away than this needs no cut.
CLIENT_DEFAULT_READ_SECONDS = 600.0

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
    max_tokens: int | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    index: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    conversation: str | None = None
    sticky_from: str | None = None
    send: Any = None  # how a shadow copy is sent: down this call's middleware chain


def _shadow_request(request: APIRequest, params: dict[str, Any]) -> APIRequest:
    req = side_request(request, params, None)
    req.options.idempotency_key = f"{request.options.idempotency_key}-shadow"
    return req


class _ShadowSend:
    """Sends a shadow copy down this call's middleware chain, from a shadow worker thread."""

    def __init__(self, request: APIRequest, call_next: CallNext) -> None:
        self._request = request
        self._call_next = call_next

    def __call__(self, params: dict[str, Any]) -> Message:
        response = self._call_next(_shadow_request(self._request, params))
        if response.status_code >= 400:
            raise error_for(response)
        return check_message(response.parse())


class _AsyncShadowSend:
    def __init__(self, request: APIRequest, call_next: AsyncCallNext) -> None:
        self._request = request
        self._call_next = call_next

    async def send(self, params: dict[str, Any]) -> Message:
        response = await self._call_next(_shadow_request(self._request, params))
        if response.status_code >= 400:
            raise error_for(response)
        return check_message(await response.parse())


class RoutingMiddleware(Middleware):
    """Route `model="auto"` requests through a policy (or a store) inside the Anthropic SDK.

    `max_retries` must match the client's (the middleware cannot see the client); it is the
    SDK's default unless told otherwise, and a per-call `max_retries` option wins.
    """

    def __init__(
        self,
        store_or_policy: PolicyLike,
        *,
        max_retries: int = anthropic.DEFAULT_MAX_RETRIES,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        request_deadline: float | None = DEFAULT_REQUEST_SECONDS,
        records: str | os.PathLike[str] | RecordSink | None = None,
        log_prompts: bool = False,
        on_attempts: Callable[[Decision, list[Attempt]], None] | None = None,
        shadow: ShadowConfig | None = None,
    ) -> None:
        self.source = PolicySource(store_or_policy)
        # One shadow runner per client kind: a middleware may serve a sync or an async client.
        self._shadow_config = shadow
        self._shadow_sync: ThreadShadow | None = None
        self._shadow_async: AsyncShadow | None = None
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        self.request_deadline = request_deadline
        self.records = sink_for(records)
        self.log_prompts = log_prompts
        self.on_attempts = on_attempts
        self._pending: OrderedDict[str, _State] = OrderedDict()
        self._lock = threading.Lock()
        # `sticky conversations` state (bounded LRU; see runtime/sticky.py).
        self.sticky = Sticky()

    def __repr__(self) -> str:
        return (
            f"<RoutingMiddleware policy {self.source.describe()}, max_retries={self.max_retries}, "
            f"records={'on' if self.records is not None else 'off'}>"
        )

    # -- shared steps ----------------------------------------------------------------------

    def _routed_body(self, request: APIRequest) -> dict[str, Any] | None:
        if not is_messages(request):
            return None
        body = request_body(request)
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

    def _new_state(
        self,
        body: dict[str, Any],
        decision: Decision,
        route: dict[str, Any],
        routed: Request,
        start: float,
        attempts: list[Attempt],
        request: APIRequest,
    ) -> _State:
        requested = body.get("max_tokens")
        if isinstance(requested, bool) or not isinstance(requested, int):
            requested = None
        policy = self.source.policy
        conversation = None
        if self.sticky.window(policy) is not None:
            headers = request.headers if isinstance(request.headers, Mapping) else {}
            conversation = conversation_key(body, explicit_conversation({"extra_headers": headers}))
        decision, sticky_from = self.sticky.apply(policy, decision, conversation)
        return _State(
            decision,
            tiers_of(decision),
            body,
            route,
            routed,
            start,
            max_tokens=requested,
            attempts=attempts,
            conversation=conversation,
            sticky_from=sticky_from,
        )

    def _sdk_will_retry(
        self, request: APIRequest, status: int | None, response: Any = None
    ) -> bool:
        budget = request.max_retries if isinstance(request.max_retries, int) else self.max_retries
        if request.retries_taken >= budget:
            return False
        if response is not None:
            should = response.headers.get("x-should-retry")
            if should in ("true", "false"):
                return bool(should == "true")
        return status is None or retryable_status(status)

    def _attempt_request(self, request: APIRequest, state: _State) -> tuple[APIRequest, Attempt]:
        tier = state.tiers[state.index]
        # The tier's cap is a ceiling on the caller's max_tokens, never a raise.
        max_tokens = max_tokens_for(state.decision, state.index, tier, state.max_tokens)
        body = {**state.body, "model": tier.model, "max_tokens": max_tokens}
        # No try outlasts the request's deadline: its socket timeouts are cut to what is left.
        left = self._left(state)
        cut = left if left is not None and left < CLIENT_DEFAULT_READ_SECONDS else None
        req = with_body(request, body, max(cut, 0.001) if cut is not None else None)
        if state.index:
            # A new model is a new request: never let an idempotency key tie it to the last.
            req.options.idempotency_key = f"{request.options.idempotency_key}-{tier.name}"
        attempt = Attempt(kind="generate", tier=tier.name, model=tier.model)
        state.attempts.append(attempt)
        return req, attempt

    def _left(self, state: _State) -> float | None:
        """Seconds left before the request's deadline (None: no deadline)."""
        if self.request_deadline is None:
            return None
        return state.start + self.request_deadline - time.perf_counter()

    def _overdue(self, state: _State) -> bool:
        left = self._left(state)
        return left is not None and left <= 0

    def _finish(
        self,
        state: _State,
        outcome: Literal["ok", "failed"],
        error: str | None,
        message: Message | None = None,
    ) -> None:
        latency = (time.perf_counter() - state.start) * 1000
        answered = [a for a in state.attempts if a.kind == "generate" and a.status == 200]
        if answered:
            self.sticky.remember(self.source.policy, state.conversation, answered[-1].tier)
        tracing.record_call(
            front_end="middleware",
            decision=state.decision,
            attempts=state.attempts,
            start=state.start,
            outcome=outcome,
            request_id=state.request_id,
            error=error,
            sticky_from=state.sticky_from,
        )

        def write(shadows: Sequence[Attempt] = ()) -> None:
            if self.records is not None:
                write_record(
                    self.records,
                    build_record(
                        request_id=state.request_id,
                        decision=state.decision,
                        attempts=[*state.attempts, *shadows],
                        latency_ms=latency,
                        outcome=outcome,
                        route=state.route,
                        prompt=prompt_record(state.request.text, self.log_prompts),
                        error=error,
                        sticky_from=state.sticky_from,
                    ),
                )

        # A shadowed request's record is written when its shadow calls end (runtime/shadow.py).
        shadowed = outcome == "ok" and message is not None and self._shadow(state, message, write)
        if not shadowed:
            write()
        if self.on_attempts is not None:
            self.on_attempts(state.decision, state.attempts)

    # -- shadow traffic --------------------------------------------------------------------

    def _shadow(
        self, state: _State, message: Message, write: Callable[[Sequence[Attempt]], None]
    ) -> bool:
        config = self._shadow_config
        if config is None or state.send is None:
            return False
        shadows_for = getattr(self.source.policy, "shadows_for", None)  # a hand-made policy
        shadows = shadows_for(state.decision.tier) if callable(shadows_for) else ()
        if not shadows:
            return False
        served = Served(
            request_id=state.request_id,
            decision=state.decision,
            params={
                k: v for k, v in state.body.items() if k not in ("model", "stream", "max_tokens")
            },
            max_tokens=state.max_tokens,
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
        with self._lock:
            if self._shadow_sync is None:
                self._shadow_sync = ThreadShadow(config, self.log_prompts)
        return self._shadow_sync.offer(served, shadows, state.send)

    @property
    def shadow_stats(self) -> dict[str, float]:
        """Shadow counters (sampled, skipped, succeeded, failed, spent_usd)."""
        total: dict[str, float] = {}
        for runner in (self._shadow_sync, self._shadow_async):
            for k, v in (runner.stats.as_dict() if runner is not None else {}).items():
                total[k] = total.get(k, 0) + v
        return total

    def close(self) -> None:
        """Wait for the shadow calls of a sync client still running."""
        if self._shadow_sync is not None:
            self._shadow_sync.close()

    async def aclose(self) -> None:
        """Wait for the shadow calls of an async client still running."""
        if self._shadow_async is not None:
            await self._shadow_async.drain()

    def _fail(
        self, state: _State, exc: BaseException | None, message: Message | None
    ) -> EscalationError:
        """Record the failed request; the error the caller gets, carrying every attempt."""
        last = state.attempts[-1]
        why = redact(last.error or f"trigger {last.trigger!r} fired")
        tiers = " -> ".join(a.tier for a in state.attempts if a.kind == "generate")
        self._finish(state, "failed", why)
        return EscalationError(
            f"every attempt failed ({tiers}); last: {why}",
            decision=state.decision,
            attempts=tuple(state.attempts),
            last_error=exc,
            last_message=message,
            request_id=state.request_id,
        )

    def _can_climb(self, state: _State, trigger: str | None) -> bool:
        if trigger is None or trigger not in state.decision.escalation.triggers:
            return False
        if state.index + 1 >= len(state.tiers) or self._overdue(state):
            return False
        state.index += 1
        return True

    def _on_exception(
        self,
        request: APIRequest,
        state: _State,
        attempt: Attempt,
        exc: Exception,
        start: float,
        secrets: tuple[str | None, ...],
    ) -> bool:
        """A call that raised: True to climb, False to hand it back to the SDK's retry.

        Raises EscalationError when the request has failed for good.
        """
        attempt.error = describe(exc, secrets)
        trig = error_trigger(exc)
        attempt.trigger = trig or "error"
        attempt.latency_ms = (time.perf_counter() - start) * 1000
        overdue = self._overdue(state)
        if overdue:
            attempt.error += " (the request's deadline has passed)"
        retry = isinstance(exc, anthropic.APIConnectionError) and self._sdk_will_retry(
            request, None
        )
        if retry and not overdue:
            self._keep_state(request, state)
            return False
        if self._can_climb(state, trig):
            return True
        raise self._fail(state, exc, None) from None

    def _on_status(
        self,
        request: APIRequest,
        state: _State,
        attempt: Attempt,
        response: APIResponse[Any] | AsyncAPIResponse[Any],
        start: float,
        secrets: tuple[str | None, ...],
    ) -> Literal["return", "climb"]:
        """An error status: climb, or "return" it for the SDK to retry; raises when done."""
        raw = response.http_response
        err = error_for(response)
        attempt.status = raw.status_code
        attempt.error = describe(err, secrets)
        attempt.trigger = "error"
        attempt.latency_ms = (time.perf_counter() - start) * 1000
        if not retryable_status(raw.status_code):
            raise self._fail(state, err, None) from None
        asked = retry_after(raw.headers)
        if asked is not None and asked > self.max_retry_after:
            # Not worth the wait: the SDK must not sleep on it, and this tier has failed.
            raw.headers["x-should-retry"] = "false"
            attempt.error += (
                f" (retry-after {asked:.0f} s is over the {self.max_retry_after:.0f} s cap)"
            )
        elif self._overdue(state):
            raw.headers["x-should-retry"] = "false"
            attempt.error += " (the request's deadline has passed)"
            raise self._fail(state, err, None) from None
        elif self._sdk_will_retry(request, raw.status_code, raw):
            self._keep_state(request, state)
            return "return"
        if self._can_climb(state, "error"):
            return "climb"
        raise self._fail(state, err, None) from None

    def _on_answer(
        self,
        state: _State,
        attempt: Attempt,
        message: Message | BaseException | None,
        start: float,
        secrets: tuple[str | None, ...],
    ) -> bool:
        """A 200: True to climb; raises EscalationError when a broken answer ends the request."""
        if message is None:  # a stream: its body is the caller's, uninspected
            attempt.status = 200
            attempt.latency_ms = (time.perf_counter() - start) * 1000
            self._finish(state, "ok", None)
            return False
        if isinstance(message, BaseException):
            attempt.status = 200
            attempt.error = describe(message, secrets)
            attempt.trigger = "error"
            attempt.latency_ms = (time.perf_counter() - start) * 1000
            if self._can_climb(state, "error"):
                return True
            raise self._fail(state, message, None) from None
        attempt.answered(message, state.tiers[state.index], start)
        verdict = judge(message, state.decision.escalation)
        attempt.trigger = verdict.trigger
        if self._can_climb(state, verdict.trigger):
            return True
        # At the top the last answer is returned as it is: the caller can read a refusal.
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
            chain = ChainClient(ChainMessages(request, call_next))
            decision = self.source.decide(routed, AnthropicClassifier(chain, attempts.append))
            state = self._new_state(body, decision, route, routed, start, attempts, request)
        state.send = _ShadowSend(request, call_next) if not request.stream else None
        secrets = secrets_of(request)
        while True:
            req, attempt = self._attempt_request(request, state)
            start = time.perf_counter()
            try:
                response = call_next(req)
            except Exception as e:
                if self._on_exception(request, state, attempt, e, start, secrets):
                    continue
                raise
            if response.status_code >= 400:
                if self._on_status(request, state, attempt, response, start, secrets) == "climb":
                    response.close()
                    continue
                return response
            answer: Message | BaseException | None = None
            if not request.stream:
                try:
                    answer = check_message(response.parse())
                except Exception as e:
                    answer = MalformedAnswerError(f"unreadable answer ({type(e).__name__}: {e})")
            if self._on_answer(state, attempt, answer, start, secrets):
                response.close()
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
            state = self._new_state(body, decision, route, routed, start, attempts, request)
        state.send = _AsyncShadowSend(request, call_next).send if not request.stream else None
        secrets = secrets_of(request)
        while True:
            sub, attempt = self._attempt_request(request, state)
            start = time.perf_counter()
            try:
                response = await call_next(sub)
            except Exception as e:
                if self._on_exception(request, state, attempt, e, start, secrets):
                    continue
                raise
            if response.status_code >= 400:
                if self._on_status(request, state, attempt, response, start, secrets) == "climb":
                    await response.close()
                    continue
                return response
            answer: Message | BaseException | None = None
            if not request.stream:
                try:
                    answer = check_message(await response.parse())
                except Exception as e:
                    answer = MalformedAnswerError(f"unreadable answer ({type(e).__name__}: {e})")
            if self._on_answer(state, attempt, answer, start, secrets):
                await response.close()
                continue
            return response

    async def _decide_async(
        self, request: APIRequest, call_next: AsyncCallNext, attempts: list[Attempt], req: Request
    ) -> Decision:
        if not self.source.has_classifiers():
            return self.source.decide(req, None)
        loop = asyncio.get_running_loop()
        classifier = AnthropicClassifier(
            ChainClient(AsyncChainMessages(request, call_next, loop)), attempts.append
        )
        decided: Awaitable[Decision] = asyncio.to_thread(self.source.decide, req, classifier)
        return await decided
