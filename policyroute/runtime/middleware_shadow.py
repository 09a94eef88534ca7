"""The middleware's shadow copies: sent down the call's own middleware chain after a success.

A middleware may serve a sync and an async client, so it keeps one runner of each kind,
made on first use; the decision record of a shadowed request is written by the runner once
its shadow calls end (runtime/shadowing.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any

from anthropic.types import Message

from policyroute.runtime.answers import check_message
from policyroute.runtime.attempts import Attempt
from policyroute.runtime.chain import error_for, side_request
from policyroute.runtime.ladder import Answer
from policyroute.runtime.pending import PendingCall
from policyroute.runtime.sdk import APIRequest, AsyncCallNext, CallNext
from policyroute.runtime.shadowing import AsyncShadow, Served, ShadowConfig, ThreadShadow
from policyroute.runtime.state import State


def _shadow_request(request: APIRequest, params: dict[str, Any]) -> APIRequest:
    req = side_request(request, params, None)
    req.options.idempotency_key = f"{request.options.idempotency_key}-shadow"
    return req


class ShadowSend:
    """Sends a shadow copy down this call's middleware chain, from a shadow worker thread."""

    def __init__(self, request: APIRequest, call_next: CallNext) -> None:
        self._request = request
        self._call_next = call_next

    def __call__(self, params: dict[str, Any]) -> Message:
        response = self._call_next(_shadow_request(self._request, params))
        if response.status_code >= 400:
            raise error_for(response)
        return check_message(response.parse())


class AsyncShadowSend:
    def __init__(self, request: APIRequest, call_next: AsyncCallNext) -> None:
        self._request = request
        self._call_next = call_next

    async def send(self, params: dict[str, Any]) -> Message:
        response = await self._call_next(_shadow_request(self._request, params))
        if response.status_code >= 400:
            raise error_for(response)
        return check_message(await response.parse())


class MiddlewareShadows:
    """The shadow runners of one middleware (none without a ShadowConfig)."""

    def __init__(self, config: ShadowConfig | None, log_prompts: bool, state: State) -> None:
        self.config = config
        self._log_prompts = log_prompts
        self._state = state
        self._sync: ThreadShadow | None = None
        self._async: AsyncShadow | None = None
        self._lock = threading.Lock()

    def offer(
        self,
        call: PendingCall,
        answer: Answer,
        write: Callable[[Sequence[Attempt]], None],
    ) -> bool:
        """Offer the sampled copies; True when the runner writes the record once they end."""
        if self.config is None or call.send is None or not answer.shadows:
            return False
        served = Served(
            request_id=call.request_id,
            decision=call.decision,
            params={
                k: v for k, v in call.body.items() if k not in ("model", "stream", "max_tokens")
            },
            max_tokens=call.max_tokens,
            route=call.route,
            text=call.request.text,
            answer=call.attempts[-1],
            message=answer.message,
            finish=write,
        )
        if asyncio.iscoroutinefunction(call.send):
            if self._async is None:
                self._async = AsyncShadow(self.config, self._log_prompts, self._state)
            return self._async.offer(served, answer.shadows, call.send)
        with self._lock:
            if self._sync is None:
                self._sync = ThreadShadow(self.config, self._log_prompts, self._state)
        return self._sync.offer(served, answer.shadows, call.send)

    @property
    def stats(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for runner in (self._sync, self._async):
            for k, v in (runner.stats.as_dict() if runner is not None else {}).items():
                total[k] = total.get(k, 0) + v
        return total

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.drain()
