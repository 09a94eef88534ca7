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
import dataclasses
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import anthropic
from anthropic.types import Message

from policyroute import tracing
from policyroute.decision import Decision
from policyroute.request import Request
from policyroute.request.messages import Mapped, from_messages_api
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
    Clock,
    Deadlines,
    retry_after,
)
from policyroute.runtime.escalation import retryable_status
from policyroute.runtime.ladder import Answer, AttemptHook, Ladder, Tried, Try
from policyroute.runtime.records import RecordSink, new_request_id, record_call, sink_for
from policyroute.runtime.redact import Redactor
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
from policyroute.runtime.shadowing import AsyncShadow, Served, ShadowConfig, ThreadShadow
from policyroute.runtime.spend import SpendMeter, key_owner, waits_on_state
from policyroute.runtime.state import State, open_state
from policyroute.runtime.sticky import Sticky, conversation_key, explicit_conversation

if TYPE_CHECKING:
    from policyroute.runtime.calls import PolicyLike

# The SDK's default read timeout: a deadline further away than this needs no cut.
CLIENT_DEFAULT_READ_SECONDS = 600.0

# Calls whose SDK retry is pending; bounded so an abandoned call cannot leak forever.
MAX_PENDING_CALLS = 4096


@dataclass(slots=True)
class PendingCall:
    """A routed call between the SDK's tries: its ladder and the rung it is on."""

    decision: Decision
    ladder: Ladder
    step: Try
    body: dict[str, Any]
    route: dict[str, Any]
    request: Request
    start: float
    max_tokens: int | None = None
    request_id: str = field(default_factory=new_request_id)
    conversation: str | None = None
    sticky_from: str | None = None
    continuation: bool = False
    send: Any = None  # how a shadow copy is sent: down this call's middleware chain
    owners: dict[str, str] = field(default_factory=dict)  # whose spend its cost adds to

    @property
    def attempts(self) -> list[Attempt]:
        return self.ladder.attempts


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
        state: str | State | None = None,
    ) -> None:
        self.source = PolicySource(store_or_policy)
        # Sticky floors, spend counters, shadow spend: in this process, or Redis for a fleet.
        self.state = open_state(state)
        self.spend = SpendMeter(self.state)
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
        self._pending: OrderedDict[str, PendingCall] = OrderedDict()
        self._lock = threading.Lock()
        # `sticky conversations` floors, in the state (see runtime/sticky.py).
        self.sticky = Sticky(state=self.state)
        # Called with each generation attempt once its cost is known (spend counters).
        self.on_attempt: AttemptHook | None = None

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

    def _take_state(self, request: APIRequest) -> PendingCall | None:
        key = request.options.idempotency_key
        if key is None:
            return None
        with self._lock:
            return self._pending.pop(key, None)

    def _keep_state(self, request: APIRequest, state: PendingCall) -> None:
        key = request.options.idempotency_key
        if key is None:
            return
        state.step.attempt.retries += 1  # the SDK tries this rung again
        with self._lock:
            self._pending[key] = state
            while len(self._pending) > MAX_PENDING_CALLS:
                self._pending.popitem(last=False)

    def _parse(
        self, body: dict[str, Any], request: APIRequest
    ) -> tuple[dict[str, Any], Mapped, dict[str, str]]:
        route = body.pop("route", None) or {}
        if not isinstance(route, Mapping):
            raise ValueError("'route' must be an object of routing attributes")
        mapped = from_messages_api(body, **route)
        policy = self.source.policy
        user = mapped.request.user_id
        owners = self.spend.owners(policy, user, key_owner(*secrets_of(request)))
        spent = self.spend.attach(policy, mapped.request, owners)
        return dict(route), dataclasses.replace(mapped, request=spent), owners

    def _needs_io(self) -> bool:
        """Whether deciding may wait on a shared state: the async path then leaves the loop."""
        return waits_on_state(self.state, self.source.policy)

    def _new_state(
        self,
        body: dict[str, Any],
        decision: Decision,
        route: dict[str, Any],
        mapped: Mapped,
        start: float,
        attempts: list[Attempt],
        request: APIRequest,
        owners: dict[str, str] | None = None,
    ) -> PendingCall:
        owners = owners if owners is not None else {}
        requested = body.get("max_tokens")
        if isinstance(requested, bool) or not isinstance(requested, int):
            requested = None
        policy = self.source.policy
        headers = request.headers if isinstance(request.headers, Mapping) else {}
        explicit = explicit_conversation({"extra_headers": headers}) or mapped.conversation
        conversation = conversation_key(body, explicit)
        decision, sticky_from = self.sticky.apply(
            policy, decision, conversation, mapped.continuation
        )
        shadows_for = getattr(policy, "shadows_for", None)  # a hand-made policy may lack it
        deadline = Deadlines(request=self.request_deadline)
        ladder = Ladder(
            decision,
            Clock(deadline, start),
            requested=requested,
            thinking=body.get("thinking"),
            shadows_for=shadows_for if self._shadow_config and callable(shadows_for) else None,
            on_attempt=self.spend.hook(owners, self.on_attempt),
            redactor=Redactor(secrets_of(request)),
            attempts=attempts,
        )
        return PendingCall(
            decision,
            ladder,
            ladder.first(),
            body,
            route,
            mapped.request,
            start,
            max_tokens=requested,
            conversation=conversation,
            sticky_from=sticky_from,
            owners=owners,
            continuation=mapped.continuation,
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

    def _attempt_request(self, request: APIRequest, state: PendingCall) -> APIRequest:
        step = state.step
        body = step.params(state.body)
        # No try outlasts the request's deadline: its socket timeouts are cut to what is left.
        left = self._left(state)
        cut = left if left is not None and left < CLIENT_DEFAULT_READ_SECONDS else None
        req = with_body(request, body, max(cut, 0.001) if cut is not None else None)
        if step.index:
            # A new model is a new request: never let an idempotency key tie it to the last.
            req.options.idempotency_key = f"{request.options.idempotency_key}-{step.tier.name}"
        return req

    def _left(self, state: PendingCall) -> float | None:
        """Seconds left before the request's deadline (None: no deadline)."""
        if self.request_deadline is None:
            return None
        return state.start + self.request_deadline - time.perf_counter()

    def _overdue(self, state: PendingCall) -> bool:
        left = self._left(state)
        return left is not None and left <= 0

    def _finish(
        self,
        state: PendingCall,
        outcome: Literal["ok", "failed"],
        error: str | None,
        answer: Answer | None = None,
    ) -> None:
        latency = (time.perf_counter() - state.start) * 1000
        answered = [a for a in state.attempts if a.kind == "generate" and a.status == 200]
        if answered:
            self.sticky.remember(self.source.policy, state.conversation, answered[-1].tier)
        self.spend.count_classifiers(state.owners, state.attempts)
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
            record_call(
                self.records,
                state,
                state.decision,
                outcome,
                latency_ms=latency,
                log_prompts=self.log_prompts,
                error=error,
                shadows=shadows,
            )

        # A shadowed request's record is written when its shadow calls end (runtime/shadowing.py).
        shadowed = answer is not None and self._shadow(state, answer, write)
        if not shadowed:
            write()
        if self.on_attempts is not None:
            self.on_attempts(state.decision, state.attempts)

    # -- shadow traffic --------------------------------------------------------------------

    def _shadow(
        self, state: PendingCall, answer: Answer, write: Callable[[Sequence[Attempt]], None]
    ) -> bool:
        config = self._shadow_config
        shadows = answer.shadows
        if config is None or state.send is None or not shadows:
            return False
        message = answer.message
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
                self._shadow_async = AsyncShadow(config, self.log_prompts, self.state)
            return self._shadow_async.offer(served, shadows, state.send)
        with self._lock:
            if self._shadow_sync is None:
                self._shadow_sync = ThreadShadow(config, self.log_prompts, self.state)
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

    def _settle(self, state: PendingCall, out: Tried, message: Message | None = None) -> bool:
        """Hand the rung's outcome to the ladder: True to climb (the next rung is set);
        False when the answer is returned; raises EscalationError when the request failed."""
        step = state.ladder.settle(state.step, out)
        if isinstance(step, Try):
            state.step = step
            return True
        if isinstance(step, Answer):
            self._finish(state, "ok", None, step)
            return False
        if step.message is not None and step.error is None:
            # At the top the last answer is returned as it is: the caller can read a refusal.
            self._finish(state, "failed", step.reason)
            return False
        self._finish(state, "failed", step.reason)
        raise EscalationError(
            state.ladder.summary(step),
            decision=state.decision,
            attempts=tuple(state.attempts),
            last_error=step.error,
            last_message=step.message,
            request_id=state.request_id,
        ) from None

    def _on_exception(self, request: APIRequest, state: PendingCall, exc: Exception) -> bool:
        """A call that raised: True to climb, False to hand it back to the SDK's retry.

        Raises EscalationError when the request has failed for good.
        """
        overdue = self._overdue(state)
        retry = isinstance(exc, anthropic.APIConnectionError) and self._sdk_will_retry(
            request, None
        )
        if retry and not overdue:
            self._keep_state(request, state)
            return False
        return self._settle(state, Tried(error=exc))

    def _on_status(
        self,
        request: APIRequest,
        state: PendingCall,
        response: APIResponse[Any] | AsyncAPIResponse[Any],
    ) -> Literal["return", "climb"]:
        """An error status: climb, or "return" it for the SDK to retry; raises when done."""
        raw = response.http_response
        err = error_for(response)
        note = None
        if retryable_status(raw.status_code):
            asked = retry_after(raw.headers)
            if asked is not None and asked > self.max_retry_after:
                # Not worth the wait: the SDK must not sleep on it, and this tier has failed.
                raw.headers["x-should-retry"] = "false"
                note = f"retry-after {asked:.0f} s is over the {self.max_retry_after:.0f} s cap"
            elif self._overdue(state):
                raw.headers["x-should-retry"] = "false"
            elif self._sdk_will_retry(request, raw.status_code, raw):
                self._keep_state(request, state)
                return "return"
        climb = self._settle(state, Tried(error=err, note=note))
        return "climb" if climb else "return"

    def _on_answer(self, state: PendingCall, message: Message | BaseException | None) -> bool:
        """A 200: True to climb; raises EscalationError when a broken answer ends the request."""
        if message is None:  # a stream: its body is the caller's, uninspected
            attempt = state.step.attempt
            attempt.status = 200
            attempt.latency_ms = (time.perf_counter() - state.step.start) * 1000
            self._finish(state, "ok", None)
            return False
        if isinstance(message, BaseException):
            state.step.attempt.status = 200
            return self._settle(state, Tried(error=message))
        return self._settle(state, Tried(message=message))

    # -- sync ------------------------------------------------------------------------------

    def handle(self, request: APIRequest, call_next: CallNext) -> APIResponse[Any]:
        body = self._routed_body(request)
        if body is None:
            return call_next(request)
        state = self._take_state(request)
        if state is None:
            start = time.perf_counter()
            route, mapped, owners = self._parse(body, request)
            attempts: list[Attempt] = []
            chain = ChainClient(ChainMessages(request, call_next))
            classifier = AnthropicClassifier(chain, attempts.append)
            decision = self.source.decide(mapped.request, classifier)
            state = self._new_state(body, decision, route, mapped, start, attempts, request, owners)
        state.send = _ShadowSend(request, call_next) if not request.stream else None
        while True:
            req = self._attempt_request(request, state)
            try:
                response = call_next(req)
            except Exception as e:
                if self._on_exception(request, state, e):
                    continue
                raise
            if response.status_code >= 400:
                if self._on_status(request, state, response) == "climb":
                    response.close()
                    continue
                return response
            answer: Message | BaseException | None = None
            if not request.stream:
                try:
                    answer = check_message(response.parse())
                except Exception as e:
                    answer = MalformedAnswerError(f"unreadable answer ({type(e).__name__}: {e})")
            if self._on_answer(state, answer):
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
            route, mapped, owners = self._parse(body, request)
            attempts: list[Attempt] = []
            decision = await self._decide_async(request, call_next, attempts, mapped.request)
            if self.state.blocking:  # a floor (sticky, continuation) is a round trip: off the loop
                state = await asyncio.to_thread(
                    self._new_state, body, decision, route, mapped, start, attempts, request, owners
                )
            else:
                state = self._new_state(
                    body, decision, route, mapped, start, attempts, request, owners
                )
        state.send = _AsyncShadowSend(request, call_next).send if not request.stream else None
        while True:
            sub = self._attempt_request(request, state)
            try:
                response = await call_next(sub)
            except Exception as e:
                if self._on_exception(request, state, e):
                    continue
                raise
            if response.status_code >= 400:
                if self._on_status(request, state, response) == "climb":
                    await response.close()
                    continue
                return response
            answer: Message | BaseException | None = None
            if not request.stream:
                try:
                    answer = check_message(await response.parse())
                except Exception as e:
                    answer = MalformedAnswerError(f"unreadable answer ({type(e).__name__}: {e})")
            if self._on_answer(state, answer):
                await response.close()
                continue
            return response

    async def _decide_async(
        self, request: APIRequest, call_next: AsyncCallNext, attempts: list[Attempt], req: Request
    ) -> Decision:
        if not self.source.has_classifiers():
            if self._needs_io():
                return await asyncio.to_thread(self.source.decide, req, None)
            return self.source.decide(req, None)
        loop = asyncio.get_running_loop()
        classifier = AnthropicClassifier(
            ChainClient(AsyncChainMessages(request, call_next, loop)), attempts.append
        )
        decided: Awaitable[Decision] = asyncio.to_thread(self.source.decide, req, classifier)
        return await decided
