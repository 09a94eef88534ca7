"""The router: decide a tier, call it, climb the ladder when a trigger fires, record it all.

Each router has one ladder loop (`_ladder`); `create` runs it without passing events on,
`stream` passes them on as they arrive. What happens at the end of each tier is decided in
`calls.Core.settle`, shared by the sync and async routers; a successful answer leaves
through `Core.success`, the one place a post-answer hook belongs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import anthropic
from anthropic.types import Message
from pydantic import BaseModel

from policyroute.decision import Decision
from policyroute.runtime import sdk  # noqa: F401  (fails early, clearly, on an unsupported SDK)
from policyroute.runtime.attempts import RoutedResult
from policyroute.runtime.calls import Call, Core, PolicySource, Records
from policyroute.runtime.classifier import AnthropicClassifier, BlockingBridge
from policyroute.runtime.deadlines import Deadlines
from policyroute.runtime.escalation import ConfidenceFn
from policyroute.runtime.ladder import Answer, Step, Try
from policyroute.runtime.sdk_tier import SdkTried, try_tier, try_tier_async
from policyroute.runtime.shadowing import AsyncShadow, ShadowConfig, ThreadShadow
from policyroute.runtime.state import State

if TYPE_CHECKING:
    from policyroute.runtime.calls import PolicyLike

__all__ = ["AsyncRoutedStream", "AsyncRouter", "PolicySource", "RoutedStream", "Router"]


class Router(Core):
    """Routes Messages API calls through a policy over a sync `anthropic.Anthropic` client.

    Every call is streamed under the hood, so any `max_tokens` works with a default client.
    The client's `max_retries` is honoured by the router itself (same backoff as the SDK,
    `retry-after` capped by `deadlines.max_retry_after`); the `error` and `timeout` triggers
    fire only on what survives those retries. `deadlines` bounds each try and the request.
    """

    def __init__(
        self,
        policy_or_store: PolicyLike,
        client: anthropic.Anthropic | None = None,
        records: Records = None,
        log_prompts: bool = False,
        deadlines: Deadlines | None = None,
        shadow: ShadowConfig | None = None,
        state: str | State | None = None,
    ) -> None:
        super().__init__(policy_or_store, records, log_prompts, deadlines, state)
        self.client = client if client is not None else anthropic.Anthropic()
        self._client = self.client.with_options(max_retries=0)
        self.use_client(self.client)
        if shadow is not None:
            self.shadowing = ThreadShadow(shadow, log_prompts, self.state)

    def shadow_send(self, params: dict[str, Any]) -> Message:
        # Streamed, as every generation here is; the client's own retries apply.
        with self.client.messages.stream(**params) as s:
            return s.get_final_message()

    def close(self) -> None:
        """Wait for the shadow calls still running (their records and pairs get written),
        and for the state's pending writes."""
        if isinstance(self.shadowing, ThreadShadow):
            self.shadowing.close()
        self.state.flush()

    def decide(self, call: Call) -> Decision:
        classifier = AnthropicClassifier(self._client, call.attempts.append, call.clock)
        return self.stick(call, self.source.decide(call.request, classifier))

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
        call = self.prepare(params, route, response_model, json_schema, confidence)
        decision = self.decide(call)
        ladder = self._ladder(call, decision, live=False)
        while True:
            try:
                next(ladder)
            except StopIteration as done:
                result: RoutedResult = done.value
                return result

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
        call = self.prepare(params, route, response_model, json_schema, confidence)
        decision = self.decide(call)
        return RoutedStream(self, call, decision)

    def _ladder(
        self, call: Call, decision: Decision, live: bool
    ) -> Generator[Any, None, RoutedResult]:
        ladder = self.ladder(call, decision)
        step: Step = ladder.first()
        while isinstance(step, Try):
            out: SdkTried = yield from try_tier(
                self._client,
                step.params(call.params),
                self.max_retries,
                call.clock,
                self.deadlines,
                live,
            )
            step = ladder.settle(step, out)
            if isinstance(step, Answer):
                yield from out.buffered
        return self.conclude(call, decision, ladder, step)


class _Stream:
    """What both routed streams hold: the call, its decision, and the result once ended."""

    def __init__(self, call: Call, decision: Decision) -> None:
        self.call = call
        self.decision = decision
        self.result: RoutedResult | None = None

    def __repr__(self) -> str:
        state = "done" if self.result is not None else "open"
        return f"<{type(self).__name__} {self.decision.tier} by rule {self.decision.rule} {state}>"

    def _ended(self) -> RoutedResult:
        if self.result is None:
            raise RuntimeError("the stream was closed before it ended")
        return self.result


class RoutedStream(_Stream):
    """Iterate for the SDK's stream events; `result` is set once the stream has ended."""

    def __init__(self, router: Router, call: Call, decision: Decision) -> None:
        super().__init__(call, decision)
        self._events = self._run(router)

    def _run(self, router: Router) -> Generator[Any, None, None]:
        self.result = yield from router._ladder(self.call, self.decision, live=True)

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
        return self._ended()

    def close(self) -> None:
        self._events.close()

    def __enter__(self) -> RoutedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRouter(Core):
    """The `Router` over `anthropic.AsyncAnthropic`."""

    def __init__(
        self,
        policy_or_store: PolicyLike,
        client: anthropic.AsyncAnthropic | None = None,
        records: Records = None,
        log_prompts: bool = False,
        deadlines: Deadlines | None = None,
        shadow: ShadowConfig | None = None,
        state: str | State | None = None,
    ) -> None:
        super().__init__(policy_or_store, records, log_prompts, deadlines, state)
        self.client = client if client is not None else anthropic.AsyncAnthropic()
        self._client = self.client.with_options(max_retries=0)
        self.use_client(self.client)
        if shadow is not None:
            self.shadowing = AsyncShadow(shadow, log_prompts, self.state)

    async def shadow_send(self, params: dict[str, Any]) -> Message:
        async with self.client.messages.stream(**params) as s:
            return await s.get_final_message()

    async def aclose(self) -> None:
        """Wait for the shadow calls still running (their records and pairs get written)."""
        if isinstance(self.shadowing, AsyncShadow):
            await self.shadowing.drain()
        await asyncio.to_thread(self.state.flush)

    def _decide_and_stick(self, call: Call) -> Decision:
        return self.stick(call, self.source.decide(call.request, None))

    async def decide(self, call: Call) -> Decision:
        if not self.source.has_classifiers():
            if self.needs_io():  # a floor or spend read from a shared state: off the loop
                return await asyncio.to_thread(self._decide_and_stick, call)
            return self.stick(call, self.source.decide(call.request, None))
        # decide() is synchronous and may call a classifier: run it off the loop and let
        # the classifier schedule its API call back onto this loop.
        bridge = BlockingBridge(self._client, asyncio.get_running_loop())
        classifier = AnthropicClassifier(bridge, call.attempts.append, call.clock)
        decided = await asyncio.to_thread(self.source.decide, call.request, classifier)
        if self.needs_io():
            return await asyncio.to_thread(self.stick, call, decided)
        return self.stick(call, decided)

    async def create(
        self,
        *,
        route: Mapping[str, Any] | None = None,
        response_model: type[BaseModel] | None = None,
        json_schema: Mapping[str, Any] | None = None,
        confidence: ConfidenceFn | None = None,
        **params: Any,
    ) -> RoutedResult:
        """`messages.create` with the model chosen by the policy; raises EscalationError."""
        call = self.prepare(params, route, response_model, json_schema, confidence)
        decision = await self.decide(call)
        async for item in self._ladder(call, decision, live=False):
            if isinstance(item, RoutedResult):
                return item
        raise AssertionError("unreachable: the ladder ends with a result or an error")

    async def stream(
        self,
        *,
        route: Mapping[str, Any] | None = None,
        response_model: type[BaseModel] | None = None,
        json_schema: Mapping[str, Any] | None = None,
        confidence: ConfidenceFn | None = None,
        **params: Any,
    ) -> AsyncRoutedStream:
        """Stream events of the routed answer (see `Router.stream`)."""
        call = self.prepare(params, route, response_model, json_schema, confidence)
        decision = await self.decide(call)
        return AsyncRoutedStream(self, call, decision)

    async def _ladder(
        self, call: Call, decision: Decision, live: bool
    ) -> AsyncGenerator[Any, None]:
        """Yields stream events when `live`, then the RoutedResult as the last item."""
        ladder = self.ladder(call, decision)
        step: Step = ladder.first()
        while isinstance(step, Try):
            out: SdkTried | None = None
            async for item in try_tier_async(
                self._client,
                step.params(call.params),
                self.max_retries,
                call.clock,
                self.deadlines,
                live,
            ):
                if isinstance(item, SdkTried):
                    out = item
                else:
                    yield item
            assert out is not None
            step = ladder.settle(step, out)
            if isinstance(step, Answer):
                for event in out.buffered:
                    yield event
        yield self.conclude(call, decision, ladder, step)


class AsyncRoutedStream(_Stream):
    """Async-iterate for the SDK's stream events; `result` is set once the stream has ended."""

    def __init__(self, router: AsyncRouter, call: Call, decision: Decision) -> None:
        super().__init__(call, decision)
        self._events = self._run(router)

    async def _run(self, router: AsyncRouter) -> AsyncGenerator[Any, None]:
        async for item in router._ladder(self.call, self.decision, live=True):
            if isinstance(item, RoutedResult):
                self.result = item
            else:
                yield item

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._events


    @property
    def text_stream(self) -> AsyncIterator[str]:
        return self._text()

    async def _text(self) -> AsyncIterator[str]:
        async for event in self:
            if event.type == "text":
                yield event.text

    async def get_result(self) -> RoutedResult:
        """Consume what is left of the stream and return the result."""
        async for _ in self._events:
            pass
        return self._ended()

    async def close(self) -> None:
        await self._events.aclose()

    async def __aenter__(self) -> AsyncRoutedStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
