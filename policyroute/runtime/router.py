"""The router: decide a tier, call it, climb the ladder when a trigger fires, record it all."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Generator,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from typing import Any, Literal

import anthropic
import httpx2 as _http  # the SDK's HTTP library
from anthropic.types import Message
from pydantic import BaseModel

from policyroute.decision import Decision
from policyroute.request import Request
from policyroute.runtime.attempts import (
    Attempt,
    EscalationError,
    RoutedResult,
    StreamInterruptedError,
)
from policyroute.runtime.classifier import AnthropicClassifier, BlockingBridge
from policyroute.runtime.escalation import (
    ConfidenceFn,
    JsonExpectation,
    describe,
    error_trigger,
    judge,
    max_tokens_for,
    status_of,
    tiers_of,
)
from policyroute.runtime.records import RecordSink, build_record, prompt_record, sink_for
from policyroute.runtime.shadow import AsyncShadow, Served, ShadowConfig, ThreadShadow

# -- errors raised while reading a stream body ---------------------------------------------
# The SDK wraps transport failures of the request itself, but a body read mid-stream raises
# the HTTP library's own exceptions; map them onto the SDK's so the triggers stay the same.
STREAM_ERRORS: tuple[type[BaseException], ...] = (anthropic.APIError, _http.TransportError)


def _as_api_error(exc: BaseException) -> BaseException:
    if isinstance(exc, anthropic.APIError):
        return exc
    request = getattr(exc, "_request", None) or _http.Request("POST", "http://stream")
    if isinstance(exc, _http.TimeoutException):
        return anthropic.APITimeoutError(request=request)
    return anthropic.APIConnectionError(request=request)


# Stream events that carry content: once one has reached the caller, a failure can no
# longer be hidden by retrying on another tier.
CONTENT_EVENTS = frozenset(
    {"content_block_delta", "text", "citation", "thinking", "input_json", "signature"}
)


class PolicySource:
    """A Policy, or a store with `.policy` and `.decide`: whichever is current is used."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        if not callable(getattr(obj, "decide", None)):
            raise TypeError(
                f"expected a Policy or a policy store (with .decide), got {type(obj).__name__}"
            )
        self.obj = obj

    @property
    def policy(self) -> Any:
        return getattr(self.obj, "policy", self.obj)

    def has_classifiers(self) -> bool:
        return bool(getattr(self.policy, "classifiers", None))

    def routed_names(self) -> frozenset[str]:
        """Model names that mean "route me": `auto` and the policy's own name."""
        name = getattr(self.policy, "name", None)
        return frozenset({"auto", name}) if isinstance(name, str) and name else AUTO

    def decide(self, request: Request, classifier: Any) -> Decision:
        d: Decision = self.obj.decide(request, classifier=classifier)
        return d


AUTO = frozenset({"auto"})


@dataclass(slots=True)
class _Call:
    """One request on its way through the ladder."""

    params: dict[str, Any]
    max_tokens: int | None
    route: dict[str, Any]
    request: Request
    expect: JsonExpectation | None
    confidence: ConfidenceFn | None
    request_id: str
    start: float
    attempts: list[Attempt] = field(default_factory=list)


def _failed(attempt: Attempt, exc: BaseException, start: float, triggers: frozenset[str]) -> bool:
    """Record a failed call; True when its trigger lets the request climb."""
    attempt.status = status_of(exc)
    attempt.error = describe(exc)
    trig = error_trigger(exc)
    attempt.trigger = trig or "error"
    attempt.latency_ms = (time.perf_counter() - start) * 1000
    return trig is not None and trig in triggers


class _Core:
    """What the sync and async routers share: preparing a call and finishing it."""

    def __init__(
        self,
        policy_or_store: Any,
        records: str | os.PathLike[str] | RecordSink | None,
        log_prompts: bool,
        shadowing: ThreadShadow | AsyncShadow | None = None,
    ) -> None:
        self.source = PolicySource(policy_or_store)
        self.records = sink_for(records)
        self.log_prompts = log_prompts
        self.shadowing = shadowing

    def _prepare(
        self,
        params: dict[str, Any],
        route: Mapping[str, Any] | None,
        response_model: type[BaseModel] | None,
        json_schema: Mapping[str, Any] | None,
        confidence: ConfidenceFn | None,
    ) -> _Call:
        start = time.perf_counter()
        model = params.pop("model", None)
        if model is not None and model not in self.source.routed_names():
            raise ValueError(
                f"the router picks the model; got model={model!r} (omit it or use 'auto')"
            )
        if params.pop("stream", False):
            raise ValueError("use router.stream(...) to stream")
        max_tokens = params.pop("max_tokens", None)
        route = dict(route or {})
        request_params = params if max_tokens is None else {**params, "max_tokens": max_tokens}
        request = Request.from_anthropic(request_params, **route)
        expect = None
        if response_model is not None or json_schema is not None:
            expect = JsonExpectation(response_model, json_schema)
        return _Call(
            params=params,
            max_tokens=max_tokens,
            route=route,
            request=request,
            expect=expect,
            confidence=confidence,
            request_id=uuid.uuid4().hex,
            start=start,
        )

    def _record(
        self,
        call: _Call,
        decision: Decision,
        outcome: Literal["ok", "failed", "interrupted"],
        error: str | None = None,
        latency: float | None = None,
        shadows: Sequence[Attempt] = (),
    ) -> float:
        if latency is None:
            latency = (time.perf_counter() - call.start) * 1000
        if self.records is not None:
            self.records.write(
                build_record(
                    request_id=call.request_id,
                    decision=decision,
                    attempts=[*call.attempts, *shadows],
                    latency_ms=latency,
                    outcome=outcome,
                    route=call.route,
                    prompt=prompt_record(call.request.text, self.log_prompts),
                    error=error,
                )
            )
        return latency

    def _success(
        self, call: _Call, decision: Decision, message: Message, parsed: Any, final: str | None
    ) -> RoutedResult:
        latency = (time.perf_counter() - call.start) * 1000
        if not self._shadow(call, decision, message, latency):
            self._record(call, decision, "ok", latency=latency)
        return RoutedResult(
            message=message,
            decision=decision,
            attempts=tuple(call.attempts),
            request_id=call.request_id,
            latency_ms=latency,
            parsed=parsed,
            final_trigger=final,
        )

    def _shadow(self, call: _Call, decision: Decision, message: Message, latency: float) -> bool:
        """Hand a sampled copy to the shadow runner; True when it writes the record later."""
        if self.shadowing is None:
            return False
        shadows_for = getattr(self.source.policy, "shadows_for", None)
        shadows = shadows_for(decision.tier) if shadows_for is not None else ()
        if not shadows:
            return False
        served = Served(
            request_id=call.request_id,
            decision=decision,
            params=call.params,
            max_tokens=call.max_tokens,
            route=call.route,
            text=call.request.text,
            answer=call.attempts[-1],
            message=message,
            finish=lambda extra: self._record(call, decision, "ok", latency=latency, shadows=extra),
        )
        return self.shadowing.offer(served, shadows, self._shadow_send)

    def _shadow_send(self, params: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _give_up(
        self,
        call: _Call,
        decision: Decision,
        last_error: BaseException | None,
        last_message: Message | None,
        interrupted: bool = False,
    ) -> EscalationError:
        last = call.attempts[-1]
        why = last.error or f"trigger {last.trigger!r} fired"
        tiers = " -> ".join(a.tier for a in call.attempts if a.kind == "generate")
        text = f"every attempt failed ({tiers}); last: {why}"
        cls = EscalationError
        if interrupted:
            text = f"stream failed after content was sent ({last.tier}): {why}"
            cls = StreamInterruptedError
        self._record(call, decision, "interrupted" if interrupted else "failed", why)
        return cls(
            text,
            decision=decision,
            attempts=tuple(call.attempts),
            last_error=last_error,
            last_message=last_message,
            request_id=call.request_id,
        )


class Router(_Core):
    """Routes Messages API calls through a policy over a sync `anthropic.Anthropic` client.

    The SDK's own retries (the client's `max_retries`) run first; the `error` and `timeout`
    triggers fire only on what survives them.
    """

    def __init__(
        self,
        policy_or_store: Any,
        client: anthropic.Anthropic | None = None,
        records: str | os.PathLike[str] | RecordSink | None = None,
        log_prompts: bool = False,
        shadow: ShadowConfig | None = None,
    ) -> None:
        runner = ThreadShadow(shadow, log_prompts) if shadow is not None else None
        super().__init__(policy_or_store, records, log_prompts, runner)
        self.client = client if client is not None else anthropic.Anthropic()

    def _shadow_send(self, params: dict[str, Any]) -> Message:
        # Streamed, as the SDK requires of a call that may run long; nobody reads the events.
        with self.client.messages.stream(**params) as s:
            return s.get_final_message()

    def close(self) -> None:
        """Wait for the shadow calls still running (their records and pairs are written)."""
        if isinstance(self.shadowing, ThreadShadow):
            self.shadowing.close()

    def decide(self, call: _Call) -> Decision:
        classifier = AnthropicClassifier(self.client, call.attempts.append)
        return self.source.decide(call.request, classifier)

    def create(
        self,
        *,
        route: Mapping[str, Any] | None = None,
        response_model: type[BaseModel] | None = None,
        json_schema: Mapping[str, Any] | None = None,
        confidence: ConfidenceFn | None = None,
        **params: Any,
    ) -> RoutedResult:
        """`messages.create` with the model chosen by the policy; raises EscalationError."""
        call = self._prepare(params, route, response_model, json_schema, confidence)
        decision = self.decide(call)
        tiers = tiers_of(decision)
        esc = decision.escalation
        last_message: Message | None = None
        for index, tier in enumerate(tiers):
            top = index == len(tiers) - 1
            attempt = Attempt(kind="generate", tier=tier.name, model=tier.model)
            call.attempts.append(attempt)
            start = time.perf_counter()
            try:
                message = self.client.messages.create(
                    model=tier.model,
                    max_tokens=max_tokens_for(decision, index, tier, call.max_tokens),
                    **call.params,
                )
            except anthropic.APIError as e:
                if _failed(attempt, e, start, esc.triggers) and not top:
                    continue
                raise self._give_up(call, decision, e, last_message) from e
            attempt.answered(message, tier, start)
            verdict = judge(message, esc, call.expect, call.confidence)
            if verdict.trigger is None:
                return self._success(call, decision, message, verdict.parsed, None)
            attempt.trigger = verdict.trigger
            last_message = message
            if top:
                raise self._give_up(call, decision, None, message)
        raise AssertionError("unreachable: the ladder always has a first tier")

    def stream(
        self,
        *,
        route: Mapping[str, Any] | None = None,
        response_model: type[BaseModel] | None = None,
        json_schema: Mapping[str, Any] | None = None,
        confidence: ConfidenceFn | None = None,
        **params: Any,
    ) -> RoutedStream:
        """Stream events of the routed answer.

        Escalates on failures before the first content event; after that a failure is
        reported (StreamInterruptedError, or `result.final_trigger`), never retried.
        """
        call = self._prepare(params, route, response_model, json_schema, confidence)
        decision = self.decide(call)
        return RoutedStream(self, call, decision)

    def _events(self, stream: RoutedStream) -> Generator[Any, None, None]:
        call, decision = stream.call, stream.decision
        tiers = tiers_of(decision)
        esc = decision.escalation
        last_message: Message | None = None
        for index, tier in enumerate(tiers):
            top = index == len(tiers) - 1
            attempt = Attempt(kind="generate", tier=tier.name, model=tier.model)
            call.attempts.append(attempt)
            start = time.perf_counter()
            sent = False
            buffered: list[Any] = []
            try:
                with self.client.messages.stream(
                    model=tier.model,
                    max_tokens=max_tokens_for(decision, index, tier, call.max_tokens),
                    **call.params,
                ) as s:
                    for event in s:
                        if sent:
                            yield event
                            continue
                        buffered.append(event)
                        if event.type in CONTENT_EVENTS:
                            sent = True
                            yield from buffered
                            buffered.clear()
                    message = s.get_final_message()
            except STREAM_ERRORS as e:
                exc = _as_api_error(e)
                climbs = _failed(attempt, exc, start, esc.triggers)
                if sent:
                    raise self._give_up(call, decision, e, None, interrupted=True) from e
                if climbs and not top:
                    continue
                raise self._give_up(call, decision, e, last_message) from e
            attempt.answered(message, tier, start)
            verdict = judge(message, esc, call.expect, call.confidence)
            attempt.trigger = verdict.trigger
            if sent or verdict.trigger is None:
                yield from buffered
                stream.result = self._success(
                    call, decision, message, verdict.parsed, verdict.trigger
                )
                return
            last_message = message
            if top:
                raise self._give_up(call, decision, None, message)


class RoutedStream:
    """Iterate for the SDK's stream events; `result` is set once the stream has ended."""

    def __init__(self, router: Router, call: _Call, decision: Decision) -> None:
        self.call = call
        self.decision = decision
        self.result: RoutedResult | None = None
        self._events = router._events(self)

    def __iter__(self) -> Iterator[Any]:
        return self._events

    @property
    def text_stream(self) -> Iterator[str]:
        for event in self:
            if event.type == "text":
                yield event.text

    def get_result(self) -> RoutedResult:
        """Consume what is left of the stream and return the result."""
        for _ in self:
            pass
        assert self.result is not None
        return self.result

    def close(self) -> None:
        self._events.close()

    def __enter__(self) -> RoutedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRouter(_Core):
    """The `Router` over `anthropic.AsyncAnthropic`."""

    def __init__(
        self,
        policy_or_store: Any,
        client: anthropic.AsyncAnthropic | None = None,
        records: str | os.PathLike[str] | RecordSink | None = None,
        log_prompts: bool = False,
        shadow: ShadowConfig | None = None,
    ) -> None:
        runner = AsyncShadow(shadow, log_prompts) if shadow is not None else None
        super().__init__(policy_or_store, records, log_prompts, runner)
        self.client = client if client is not None else anthropic.AsyncAnthropic()

    async def _shadow_send(self, params: dict[str, Any]) -> Message:
        async with self.client.messages.stream(**params) as s:
            return await s.get_final_message()

    async def aclose(self) -> None:
        """Wait for the shadow calls still running (their records and pairs are written)."""
        if isinstance(self.shadowing, AsyncShadow):
            await self.shadowing.drain()

    async def decide(self, call: _Call) -> Decision:
        if not self.source.has_classifiers():
            return self.source.decide(call.request, None)
        # decide() is synchronous and may call a classifier: run it off the loop and let
        # the classifier schedule its API call back onto this loop.
        bridge = BlockingBridge(self.client, asyncio.get_running_loop())
        classifier = AnthropicClassifier(bridge, call.attempts.append)
        return await asyncio.to_thread(self.source.decide, call.request, classifier)

    async def create(
        self,
        *,
        route: Mapping[str, Any] | None = None,
        response_model: type[BaseModel] | None = None,
        json_schema: Mapping[str, Any] | None = None,
        confidence: ConfidenceFn | None = None,
        **params: Any,
    ) -> RoutedResult:
        call = self._prepare(params, route, response_model, json_schema, confidence)
        decision = await self.decide(call)
        tiers = tiers_of(decision)
        esc = decision.escalation
        last_message: Message | None = None
        for index, tier in enumerate(tiers):
            top = index == len(tiers) - 1
            attempt = Attempt(kind="generate", tier=tier.name, model=tier.model)
            call.attempts.append(attempt)
            start = time.perf_counter()
            try:
                message = await self.client.messages.create(
                    model=tier.model,
                    max_tokens=max_tokens_for(decision, index, tier, call.max_tokens),
                    **call.params,
                )
            except anthropic.APIError as e:
                if _failed(attempt, e, start, esc.triggers) and not top:
                    continue
                raise self._give_up(call, decision, e, last_message) from e
            attempt.answered(message, tier, start)
            verdict = judge(message, esc, call.expect, call.confidence)
            if verdict.trigger is None:
                return self._success(call, decision, message, verdict.parsed, None)
            attempt.trigger = verdict.trigger
            last_message = message
            if top:
                raise self._give_up(call, decision, None, message)
        raise AssertionError("unreachable: the ladder always has a first tier")

    async def stream(
        self,
        *,
        route: Mapping[str, Any] | None = None,
        response_model: type[BaseModel] | None = None,
        json_schema: Mapping[str, Any] | None = None,
        confidence: ConfidenceFn | None = None,
        **params: Any,
    ) -> AsyncRoutedStream:
        call = self._prepare(params, route, response_model, json_schema, confidence)
        decision = await self.decide(call)
        return AsyncRoutedStream(self, call, decision)

    async def _events(self, stream: AsyncRoutedStream) -> AsyncGenerator[Any, None]:
        call, decision = stream.call, stream.decision
        tiers = tiers_of(decision)
        esc = decision.escalation
        last_message: Message | None = None
        for index, tier in enumerate(tiers):
            top = index == len(tiers) - 1
            attempt = Attempt(kind="generate", tier=tier.name, model=tier.model)
            call.attempts.append(attempt)
            start = time.perf_counter()
            sent = False
            buffered: list[Any] = []
            try:
                async with self.client.messages.stream(
                    model=tier.model,
                    max_tokens=max_tokens_for(decision, index, tier, call.max_tokens),
                    **call.params,
                ) as s:
                    async for event in s:
                        if sent:
                            yield event
                            continue
                        buffered.append(event)
                        if event.type in CONTENT_EVENTS:
                            sent = True
                            for b in buffered:
                                yield b
                            buffered.clear()
                    message = await s.get_final_message()
            except STREAM_ERRORS as e:
                exc = _as_api_error(e)
                climbs = _failed(attempt, exc, start, esc.triggers)
                if sent:
                    raise self._give_up(call, decision, e, None, interrupted=True) from e
                if climbs and not top:
                    continue
                raise self._give_up(call, decision, e, last_message) from e
            attempt.answered(message, tier, start)
            verdict = judge(message, esc, call.expect, call.confidence)
            attempt.trigger = verdict.trigger
            if sent or verdict.trigger is None:
                for b in buffered:
                    yield b
                stream.result = self._success(
                    call, decision, message, verdict.parsed, verdict.trigger
                )
                return
            last_message = message
            if top:
                raise self._give_up(call, decision, None, message)


class AsyncRoutedStream:
    """Async-iterate for the SDK's stream events; `result` is set once the stream has ended."""

    def __init__(self, router: AsyncRouter, call: _Call, decision: Decision) -> None:
        self.call = call
        self.decision = decision
        self.result: RoutedResult | None = None
        self._events = router._events(self)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._events

    async def get_result(self) -> RoutedResult:
        async for _ in self._events:
            pass
        assert self.result is not None
        return self.result

    async def close(self) -> None:
        await self._events.aclose()

    async def __aenter__(self) -> AsyncRoutedStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
