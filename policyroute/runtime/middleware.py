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

Streams are treated as the Router treats them (runtime/middleware_bodies.py): held back
until the first content event, so a failure before it (a body that is not server-sent
events, an `error` event, an event that is not JSON, a cut) escalates unseen; a failure
after it is `interrupted` and reaches the caller as an `error` event in the API's shape.
Each try is bounded by its own deadline and by the request's, headers and body alike.

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
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anthropic
from anthropic.types import Message

from policyroute import tracing
from policyroute.decision import CONFIDENCE, Decision
from policyroute.request import Request
from policyroute.request.messages import Mapped, from_messages_api
from policyroute.runtime.answers import check_message
from policyroute.runtime.attempts import Attempt
from policyroute.runtime.calls import PolicySource
from policyroute.runtime.chain import (
    AsyncChainMessages,
    ChainClient,
    ChainMessages,
    is_messages,
    secrets_of,
)
from policyroute.runtime.classifier import AnthropicClassifier
from policyroute.runtime.deadlines import (
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_REQUEST_SECONDS,
    Clock,
    Deadlines,
)
from policyroute.runtime.ladder import Answer, AttemptHook, Ladder
from policyroute.runtime.middleware_bodies import (
    StreamEnd,
    hold,
    hold_async,
    lazy_headers,
    read_body,
    read_body_async,
)
from policyroute.runtime.middleware_shadow import AsyncShadowSend, MiddlewareShadows, ShadowSend
from policyroute.runtime.middleware_tries import Tries, unreadable
from policyroute.runtime.pending import PendingCall, PendingCalls
from policyroute.runtime.records import Outcome, RecordSink, record_call, sink_for
from policyroute.runtime.redact import Redactor
from policyroute.runtime.sdk import (
    APIRequest,
    APIResponse,
    AsyncAPIResponse,
    AsyncCallNext,
    CallNext,
    Middleware,
    Timeout,
    request_body,
    with_body,
)
from policyroute.runtime.sdk_tier import bounded_timeout, overdue
from policyroute.runtime.shadowing import ShadowConfig
from policyroute.runtime.spend import SpendMeter, key_owner, waits_on_state
from policyroute.runtime.state import State, open_state
from policyroute.runtime.sticky import Sticky, conversation_key, explicit_conversation

if TYPE_CHECKING:
    from policyroute.runtime.calls import PolicyLike

# The SDK's default read timeout: a deadline further away than this needs no cut.
CLIENT_DEFAULT_READ_SECONDS = 600.0


class RoutingMiddleware(Middleware):
    """Route `model="auto"` requests through a policy (or a store) inside the Anthropic SDK.

    `max_retries` must match the client's (the middleware cannot see the client); it is the
    SDK's default unless told otherwise, and a per-call `max_retries` option wins.
    `attempt_deadline` bounds each HTTP try, headers and body (by default derived from its
    max_tokens, as the Router's), `request_deadline` the whole routed request.
    """

    def __init__(
        self,
        store_or_policy: PolicyLike,
        *,
        max_retries: int = anthropic.DEFAULT_MAX_RETRIES,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        request_deadline: float | None = DEFAULT_REQUEST_SECONDS,
        attempt_deadline: float | None = None,
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
        self.shadows = MiddlewareShadows(shadow, log_prompts, self.state)
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        self.request_deadline = request_deadline
        self.deadlines = Deadlines(attempt_deadline, request_deadline, max_retry_after)
        self.records = sink_for(records)
        self.log_prompts = log_prompts
        self.on_attempts = on_attempts
        self._pending = PendingCalls()
        self._tries = Tries(self._pending, max_retries, max_retry_after, self._finish)
        # `sticky conversations` floors, in the state (see runtime/sticky.py).
        self.sticky = Sticky(state=self.state)
        # Called with each generation attempt once its cost is known (spend counters).
        self.on_attempt: AttemptHook | None = None

    def __repr__(self) -> str:
        return (
            f"<RoutingMiddleware policy {self.source.describe()}, max_retries={self.max_retries}, "
            f"records={'on' if self.records is not None else 'off'}>"
        )

    # -- a new call ------------------------------------------------------------------------

    def _routed_body(self, request: APIRequest) -> dict[str, Any] | None:
        if not is_messages(request):
            return None
        body = request_body(request)
        if not isinstance(body, Mapping) or body.get("model") not in self.source.routed_names():
            return None
        return dict(body)

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

    def _new_state(
        self,
        body: dict[str, Any],
        decision: Decision,
        route: dict[str, Any],
        mapped: Mapped,
        start: float,
        attempts: list[Attempt],
        request: APIRequest,
        owners: dict[str, str],
    ) -> PendingCall:
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
        ladder = Ladder(
            decision,
            Clock(self.deadlines, start),
            requested=requested,
            thinking=body.get("thinking"),
            shadows_for=shadows_for if self.shadows.config and callable(shadows_for) else None,
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

    # -- one try ---------------------------------------------------------------------------

    def _attempt_request(self, request: APIRequest, state: PendingCall) -> tuple[APIRequest, float]:
        """The try's request, and when it must be over (its own deadline, cut to the
        request's): its socket timeouts are cut to that, and its body left unread."""
        step = state.step
        end = state.ladder.clock.attempt_end(self.deadlines, step.max_tokens)
        left = end - time.perf_counter()
        own = request.timeout
        if isinstance(own, int | float | Timeout):
            timeout = bounded_timeout(own, left)
        else:  # the client's own is unseen here: cut it only to an explicit bound nearer than
            # the SDK's default read timeout (the body is bounded by `end` either way)
            near = left if self.deadlines.attempt is not None else state.ladder.clock.remaining()
            timeout = max(near, 0.001) if near < CLIENT_DEFAULT_READ_SECONDS else None
        req = with_body(request, step.params(state.body), timeout)
        req.options.headers = lazy_headers(req.headers)
        if step.index:
            # A new model is a new request: never let an idempotency key tie it to the last.
            req.options.idempotency_key = f"{request.options.idempotency_key}-{step.tier.name}"
        return req, end

    def _keep_text(self, state: PendingCall) -> bool:
        return CONFIDENCE.name in state.decision.escalation.triggers

    def _finish(
        self,
        state: PendingCall,
        outcome: Outcome,
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
        shadowed = answer is not None and self.shadows.offer(state, answer, write)
        if not shadowed:
            write()
        if self.on_attempts is not None:
            self.on_attempts(state.decision, state.attempts)

    @property
    def shadow_stats(self) -> dict[str, float]:
        """Shadow counters (sampled, skipped, succeeded, failed, spent_usd)."""
        return self.shadows.stats

    def close(self) -> None:
        """Wait for the shadow calls of a sync client still running."""
        self.shadows.close()

    async def aclose(self) -> None:
        """Wait for the shadow calls of an async client still running."""
        await self.shadows.aclose()

    # -- sync ------------------------------------------------------------------------------

    def handle(self, request: APIRequest, call_next: CallNext) -> APIResponse[Any]:
        body = self._routed_body(request)
        if body is None:
            return call_next(request)
        state = self._pending.take(request)
        if state is None:
            start = time.perf_counter()
            route, mapped, owners = self._parse(body, request)
            attempts: list[Attempt] = []
            chain = ChainClient(ChainMessages(request, call_next))
            classifier = AnthropicClassifier(chain, attempts.append)
            decision = self.source.decide(mapped.request, classifier)
            state = self._new_state(body, decision, route, mapped, start, attempts, request, owners)
        state.send = ShadowSend(request, call_next) if not request.stream else None
        while True:
            req, end = self._attempt_request(request, state)
            try:
                response = call_next(req)
                if response.status_code >= 400 or not request.stream:
                    read_body(response, end)
            except Exception as e:
                if self._tries.on_exception(request, state, e):
                    continue
                raise
            if response.status_code >= 400:
                if self._tries.on_status(request, state, response) == "climb":
                    response.close()
                    continue
                return response
            if request.stream:
                on_end = self._on_end(state)
                tried = hold(response, end, self._keep_text(state), state.step.tier.model, on_end)
                climb = self._tries.held(state, tried)
            else:
                climb = self._tries.on_answer(state, self._parsed_sync(response))
            if climb:
                response.close()
                continue
            return response

    def _on_end(self, state: PendingCall) -> StreamEnd:
        return lambda out, closed: self._tries.stream_ended(state, out, closed)

    def _parsed_sync(self, response: APIResponse[Any]) -> Message | BaseException:
        try:
            return check_message(response.parse())
        except Exception as e:
            return unreadable(e)

    # -- async -----------------------------------------------------------------------------

    async def handle_async(
        self, request: APIRequest, call_next: AsyncCallNext
    ) -> AsyncAPIResponse[Any]:
        body = self._routed_body(request)
        if body is None:
            return await call_next(request)
        state = self._pending.take(request)
        if state is None:
            start = time.perf_counter()
            route, mapped, owners = self._parse(body, request)
            attempts: list[Attempt] = []
            decision = await self._decide_async(request, call_next, attempts, mapped.request)
            args = (body, decision, route, mapped, start, attempts, request, owners)
            if self.state.blocking:  # a floor (sticky, continuation) is a round trip: off the loop
                state = await asyncio.to_thread(self._new_state, *args)
            else:
                state = self._new_state(*args)
        state.send = AsyncShadowSend(request, call_next).send if not request.stream else None
        loop = asyncio.get_running_loop()
        while True:
            sub, end = self._attempt_request(request, state)
            at = loop.time() + (end - time.perf_counter())
            try:
                try:
                    async with asyncio.timeout_at(at):
                        response = await call_next(sub)
                except TimeoutError:
                    raise overdue() from None
                if response.status_code >= 400 or not request.stream:
                    await read_body_async(response, at)
            except Exception as e:
                if self._tries.on_exception(request, state, e):
                    continue
                raise
            if response.status_code >= 400:
                if self._tries.on_status(request, state, response) == "climb":
                    await response.close()
                    continue
                return response
            if request.stream:
                model, on_end = state.step.tier.model, self._on_end(state)
                tried = await hold_async(response, at, self._keep_text(state), model, on_end)
                climb = self._tries.held(state, tried)
            else:
                climb = self._tries.on_answer(state, await self._parsed_async(response))
            if climb:
                await response.close()
                continue
            return response

    async def _parsed_async(self, response: AsyncAPIResponse[Any]) -> Message | BaseException:
        try:
            return check_message(await response.parse())
        except Exception as e:
            return unreadable(e)

    async def _decide_async(
        self, request: APIRequest, call_next: AsyncCallNext, attempts: list[Attempt], req: Request
    ) -> Decision:
        if not self.source.has_classifiers():
            if waits_on_state(self.state, self.source.policy):
                return await asyncio.to_thread(self.source.decide, req, None)
            return self.source.decide(req, None)
        loop = asyncio.get_running_loop()
        classifier = AnthropicClassifier(
            ChainClient(AsyncChainMessages(request, call_next, loop)), attempts.append
        )
        decided: Awaitable[Decision] = asyncio.to_thread(self.source.decide, req, classifier)
        return await decided
