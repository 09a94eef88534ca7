"""One tier, tried until it answers or fails: the only code that talks to the Messages API.

Every generation is streamed under the hood and assembled into the final message, which is
the SDK's own guidance for long outputs: a non-streaming call whose `max_tokens` may take
more than ten minutes is refused by the SDK with a default client, and a long one would
hold a socket silent for minutes. The caller of `create` never sees the difference.

A try fails on an error status, a connection failure, its deadline, a stream cut before
`message_stop`, or an answer that is not a well-formed message. Retryable failures are
tried again on the same tier the way the SDK would (the client's `max_retries`, the SDK's
backoff, `retry-after` up to a cap, never past the request's deadline); the client itself
is used with `max_retries=0`, so no wait happens where policyroute cannot bound it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass, field
from typing import Any

import anthropic

from policyroute.runtime import sdk
from policyroute.runtime.answers import MalformedAnswerError, check_message
from policyroute.runtime.deadlines import (
    WATCHDOG,
    Clock,
    DeadlineExceeded,
    Deadlines,
    backoff,
    retry_after,
)
from policyroute.runtime.escalation import retryable_status
from policyroute.runtime.ladder import Tried

# Stream events that carry content: once one has reached the caller, a failure can no
# longer be hidden by retrying on another tier.
CONTENT_EVENTS = frozenset(
    {"content_block_delta", "text", "citation", "thinking", "input_json", "signature"}
)


@dataclass(slots=True)
class SdkTried(Tried):
    """How one tier ended over the SDK: the ladder's `Tried`, plus what the stream held."""

    opened: bool = False  # the server answered at all (headers arrived)
    buffered: list[Any] = field(default_factory=list)  # events held back, not yet sent


def bounded_timeout(timeout: Any, remaining: float) -> Any:
    """`timeout` (the caller's or the client's) cut to what is left of the deadline; None
    when no part of it is longer, so the call keeps the client's own and costs nothing."""
    remaining = max(remaining, 0.001)
    if isinstance(timeout, sdk.Timeout):
        parts = timeout.as_dict()
        if all(v is not None and v <= remaining for v in parts.values()):
            return None
        return sdk.Timeout(
            **{k: remaining if v is None else min(v, remaining) for k, v in parts.items()}
        )
    if isinstance(timeout, int | float):
        return None if timeout <= remaining else remaining
    return remaining


def _stream_call(client: Any, params: dict[str, Any], remaining: float) -> Any:
    """`client.messages.stream(...)` with its timeout bounded by the deadline."""
    params = dict(params)
    own = params.pop("timeout", None)  # the caller's, if given; else the client's applies
    bounded = bounded_timeout(own if own is not None else client.timeout, remaining)
    if bounded is not None:
        params["timeout"] = bounded
    elif own is not None:
        params["timeout"] = own
    return client.messages.stream(**params)


def normalize_failure(exc: BaseException, opened: bool, request: Any = None) -> BaseException:
    """Map what a try raised onto the failures escalation knows.

    Transport errors while reading a body become the SDK's connection/timeout errors; any
    other exception once the server has answered means the answer itself is broken.
    """
    if isinstance(exc, anthropic.APIError | DeadlineExceeded | MalformedAnswerError):
        return exc
    if isinstance(exc, sdk.TransportError):
        req = request if request is not None else sdk.http.Request("POST", "http://stream")
        if isinstance(exc, sdk.HTTPTimeout):
            return anthropic.APITimeoutError(request=req)
        return anthropic.APIConnectionError(message=f"{type(exc).__name__}: {exc}", request=req)
    if opened:
        return MalformedAnswerError(f"unreadable answer ({type(exc).__name__}: {exc})")
    return exc  # raised before anything was sent: the caller's parameters, not upstream


def retry_wait(
    error: BaseException, retries: int, max_retries: int, clock: Clock, deadlines: Deadlines
) -> tuple[float | None, str | None]:
    """(seconds to wait before trying the same tier again, or None; why not, when relevant)."""
    if retries >= max_retries:
        return None, None
    if isinstance(error, anthropic.APIStatusError):
        should = error.response.headers.get("x-should-retry")
        if should == "false" or (should != "true" and not retryable_status(error.status_code)):
            return None, None
        asked = retry_after(error.response.headers)
        if asked is not None and asked > deadlines.max_retry_after:
            return None, (
                f"retry-after {asked:.0f} s is over the {deadlines.max_retry_after:.0f} s cap"
            )
        wait = asked if asked is not None and asked > 0 else backoff(retries)
    elif isinstance(error, anthropic.APIConnectionError):  # timeouts included
        wait = backoff(retries)
    else:
        return None, None
    if wait >= clock.remaining():
        return None, "no time left before the request's deadline"
    return wait, None


class SocketGuard:
    """Ends a sync try at its deadline by shutting its connection down from the watchdog.

    The lock makes `release` and the kill exclusive: once released (still inside the
    stream's `with`, before the connection can return to the pool) the kill is a no-op, so
    it can never hit a connection another request has taken over.
    """

    __slots__ = ("_handle", "_lock", "_sock", "active", "fired")

    def __init__(self, response: Any, end: float) -> None:
        self._lock = threading.Lock()
        self.active = True
        self.fired = False
        stream = response.extensions.get("network_stream")
        self._sock: socket.socket | None = (
            stream.get_extra_info("socket") if stream is not None else None
        )
        self._handle = WATCHDOG.arm(end, self._kill)

    def _kill(self) -> None:
        with self._lock:
            if not self.active:
                return
            self.fired = True
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)

    def release(self) -> None:
        with self._lock:
            self.active = False
        WATCHDOG.disarm(self._handle)


def overdue() -> DeadlineExceeded:
    return DeadlineExceeded("the attempt ran past its deadline")


def _checked(event: Any) -> bool:
    """True at `message_stop`; a malformed `message_start` fails before any content is sent."""
    if event.type == "message_start":
        check_message(event.message)
    return bool(event.type == "message_stop")


def _accept(event: Any, out: SdkTried, live: bool) -> list[Any]:
    """The events to pass on now; buffers until the first content event on a live stream."""
    if not live:
        return []
    if out.sent:
        return [event]
    out.buffered.append(event)
    if event.type in CONTENT_EVENTS:
        out.sent = True
        flushed, out.buffered = out.buffered, []
        return flushed
    return []


def _one_try(
    client: anthropic.Anthropic, params: dict[str, Any], end: float, live: bool
) -> Generator[Any, None, SdkTried]:
    out = SdkTried()
    remaining = end - time.perf_counter()
    if remaining <= 0:
        out.error = overdue()
        return out
    guard: SocketGuard | None = None
    request = None
    try:
        with _stream_call(client, params, remaining) as s:
            out.opened = True
            request = s.response.request
            out.request_id = s.response.headers.get("request-id")
            guard = SocketGuard(s.response, end)
            try:
                stopped = False
                for event in s:
                    stopped = stopped or _checked(event)
                    yield from _accept(event, out, live)
                    if time.perf_counter() > end:
                        raise overdue()
                if guard.fired:
                    raise overdue()
                if not stopped:
                    raise MalformedAnswerError("the stream ended before message_stop")
                out.message = check_message(s.get_final_message())
            finally:
                guard.release()
    except Exception as e:
        out.error = overdue() if guard is not None and guard.fired else e
        out.error = normalize_failure(out.error, out.opened, request)
        out.message = None
    return out


async def _one_try_async(
    client: anthropic.AsyncAnthropic, params: dict[str, Any], end: float, live: bool
) -> AsyncGenerator[Any, None]:
    """The async try; its last item is the SdkTried (async generators cannot return one).

    Each await on the network runs under the deadline on its own, so the time the caller
    spends between events is never cancelled from inside this generator.
    """
    out = SdkTried()
    loop = asyncio.get_running_loop()
    at = loop.time() + (end - time.perf_counter())
    request = None
    try:
        if end <= time.perf_counter():
            raise overdue()
        manager = _stream_call(client, params, end - time.perf_counter())
        try:
            async with asyncio.timeout_at(at):
                s = await manager.__aenter__()
        except TimeoutError:
            raise overdue() from None
        out.opened = True
        try:
            request = s.response.request
            out.request_id = s.response.headers.get("request-id")
            stopped = False
            events = s.__aiter__()
            while True:
                try:
                    async with asyncio.timeout_at(at):
                        event = await events.__anext__()
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise overdue() from None
                stopped = stopped or _checked(event)
                for item in _accept(event, out, live):
                    yield item
            if not stopped:
                raise MalformedAnswerError("the stream ended before message_stop")
            out.message = check_message(await s.get_final_message())
        finally:
            await manager.__aexit__(None, None, None)
    except Exception as e:
        out.error = normalize_failure(e, out.opened, request)
        out.message = None
    yield out


def try_tier(
    client: anthropic.Anthropic,
    params: dict[str, Any],
    max_retries: int,
    clock: Clock,
    deadlines: Deadlines,
    live: bool,
) -> Generator[Any, None, SdkTried]:
    """Try one tier, again after retryable failures; yields stream events when `live`."""
    retries = 0
    while True:
        end = clock.attempt_end(deadlines, params["max_tokens"])
        out = yield from _one_try(client, params, end, live)
        out.retries = retries
        if out.error is None or out.sent:
            return out
        wait, out.note = retry_wait(out.error, retries, max_retries, clock, deadlines)
        if wait is None:
            return out
        time.sleep(wait)
        retries += 1


async def try_tier_async(
    client: anthropic.AsyncAnthropic,
    params: dict[str, Any],
    max_retries: int,
    clock: Clock,
    deadlines: Deadlines,
    live: bool,
) -> AsyncGenerator[Any, None]:
    """The async `try_tier`; its last item is the SdkTried."""
    retries = 0
    while True:
        end = clock.attempt_end(deadlines, params["max_tokens"])
        out: SdkTried | None = None
        async for item in _one_try_async(client, params, end, live):
            if isinstance(item, SdkTried):
                out = item
            else:
                yield item
        assert out is not None
        out.retries = retries
        if out.error is None or out.sent:
            yield out
            return
        wait, out.note = retry_wait(out.error, retries, max_retries, clock, deadlines)
        if wait is None:
            yield out
            return
        await asyncio.sleep(wait)
        retries += 1
