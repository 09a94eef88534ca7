"""What the SDK middleware reads of an answer, under the try's deadline, streams included.

The middleware asks the SDK not to read a body eagerly, so every body is read here: a sync
read runs under a watchdog that shuts the socket down at the try's deadline (a server that
trickles bytes never trips a socket read timeout), an async one under `asyncio.timeout_at`.

A stream is read until its first content event and held back; a stream that fails before
it (a body that is not server-sent events, an `error` event, an event that is not JSON, a
malformed `message_start`, a cut, the deadline) ends the try unseen, and the ladder may
climb. From the first content event on, the SDK's stream reads the held bytes and then the
rest as it arrives, still under the deadline; how it ends is handed to `on_end` once. A
failure after content is reported to the caller as the API reports one, an `error` event
(which the SDK raises as its own error).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

from policyroute.runtime import sdk
from policyroute.runtime.answers import MalformedAnswerError
from policyroute.runtime.ladder import Tried
from policyroute.runtime.sdk_tier import SocketGuard, normalize_failure, overdue
from policyroute.runtime.sse import StreamState, check_start, error_event

# Called once when a committed stream ends: how it ended (`sent` is True), and whether the
# caller closed it first (then `message` is what the events so far describe, if anything).
StreamEnd = Callable[[Tried, bool], None]

# The SDK's header asking for a response whose body is not read eagerly.
RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"


def lazy_headers(headers: Any) -> dict[str, Any]:
    """A try's headers asking the SDK to leave the body unread (this module reads it)."""
    out = dict(headers) if isinstance(headers, Mapping) else {}
    out[RAW_RESPONSE_HEADER] = "stream"
    return out


def read_body(response: sdk.APIResponse[Any], end: float) -> None:
    """Read a whole body (JSON answers, error bodies) by `end`; raises DeadlineExceeded or
    the SDK's connection error."""
    raw = response.http_response
    guard = SocketGuard(raw, end)
    try:
        raw.read()
    except Exception as e:
        raw.close()
        raise overdue() if guard.fired else normalize_failure(e, True, raw.request) from None
    finally:
        guard.release()
    if guard.fired:
        raise overdue()


async def read_body_async(response: sdk.AsyncAPIResponse[Any], at: float) -> None:
    """`read_body` for an async response; `at` is the deadline on the loop's clock."""
    raw = response.http_response
    try:
        async with asyncio.timeout_at(at):
            await raw.aread()
    except Exception as e:
        await raw.aclose()
        if isinstance(e, TimeoutError):
            raise overdue() from None
        raise normalize_failure(e, True, raw.request) from None


class _Reading:
    """What the held part of a stream says so far."""

    __slots__ = ("checked", "held", "rid", "state")

    def __init__(self, raw: Any, keep_text: bool) -> None:
        self.state = StreamState(keep_text=keep_text)
        self.held: list[bytes] = []
        self.checked = False
        self.rid: str | None = raw.headers.get("request-id")

    def feed(self, chunk: bytes) -> BaseException | None:
        """Take a chunk; the failure it shows before content, if any."""
        self.held.append(chunk)
        state = self.state
        state.feed(chunk)
        if state.broken is not None:
            return MalformedAnswerError(state.broken)
        if state.message is not None and not self.checked:
            self.checked = True
            try:
                check_start(state.message)
            except MalformedAnswerError as e:
                return e
        if state.error is not None and not state.started:
            return error_event(state.error)
        return None

    def ended(self, model: str, sent: bool) -> Tried:
        """How the stream ended when the upstream closed it."""
        state = self.state
        tried = Tried(sent=sent, request_id=self.rid)
        if state.error is not None:
            tried.error = error_event(state.error)
        elif not state.finished:
            tried.error = MalformedAnswerError("the stream ended before message_stop")
        else:
            tried.message = state.final_message(model)
            if tried.message is None:
                tried.error = MalformedAnswerError("the stream did not describe a message")
        return tried


def _not_sse(raw: Any) -> Tried | None:
    ctype = raw.headers.get("content-type", "")
    if ctype.startswith("text/event-stream"):
        return None
    why = f"a stream request was answered with {ctype or 'no content type'}, not server-sent events"
    return Tried(error=MalformedAnswerError(why), request_id=raw.headers.get("request-id"))


def _rebuilt(raw: Any, stream: Any) -> Any:
    """The response as the SDK will read it: the same status and headers over `stream`
    (bytes already decoded, so no content encoding or length of the original)."""
    headers = [
        (k, v)
        for k, v in raw.headers.multi_items()
        if k.lower() not in ("content-encoding", "content-length")
    ]
    return sdk.http.Response(
        raw.status_code,
        headers=headers,
        stream=stream,
        request=raw.request,
        extensions=raw.extensions,
    )


def error_event_bytes(message: str) -> bytes:
    """An `error` event as the Messages API sends one."""
    body = {"type": "error", "error": {"type": "api_error", "message": message}}
    return b"event: error\ndata: " + json.dumps(body).encode() + b"\n\n"


def _failed_after_content(tried: Tried, reading: _Reading) -> bytes | None:
    """The error event to send the caller, or None when the upstream's own was passed on."""
    if tried.error is None or reading.state.error is not None:
        return None
    return error_event_bytes(f"the stream failed after content was sent: {tried.error}")


# -- sync ------------------------------------------------------------------------------------


def hold(
    response: sdk.APIResponse[Any], end: float, keep_text: bool, model: str, on_end: StreamEnd
) -> Tried | None:
    """Read a streamed 200 up to its first content event, by `end`.

    Returns the try's `Tried` when the stream ended before content (the response then
    holds what was read, for the SDK to parse); None once content has started: the
    response's body is the held bytes and the rest, and `on_end` hears how it ended.
    """
    raw = response.http_response
    not_sse = _not_sse(raw)
    if not_sse is not None:
        raw.close()
        return not_sse
    reading = _Reading(raw, keep_text)
    guard = SocketGuard(raw, end)
    chunks = raw.iter_bytes()
    failure: BaseException | None = None
    try:
        for chunk in chunks:
            failure = reading.feed(chunk)
            if failure is not None:
                break
            if reading.state.started:
                body = _HeldBody(reading, chunks, guard, raw, model, on_end)
                response.http_response = _rebuilt(raw, body)
                return None
        if guard.fired:
            failure = overdue()
    except Exception as e:
        failure = overdue() if guard.fired else normalize_failure(e, True, raw.request)
    finally:
        if not reading.state.started:
            guard.release()
            raw.close()
    return _before_content(response, raw, reading, model, failure)


def _before_content(
    response: Any, raw: Any, reading: _Reading, model: str, failure: BaseException | None
) -> Tried:
    """How a stream that ended before content ended; an answer is left for the SDK to parse."""
    if failure is not None:
        return Tried(error=failure, request_id=reading.rid)
    tried = reading.ended(model, sent=False)
    response.http_response = _rebuilt(raw, sdk.http.ByteStream(b"".join(reading.held)))
    return tried


class _Committed:
    """A stream past its first content event: tells `on_end` once how it ended."""

    def __init__(self, reading: _Reading, raw: Any, model: str, on_end: StreamEnd) -> None:
        self._reading, self._raw, self._model = reading, raw, model
        self._on_end: StreamEnd | None = on_end

    def _end(self, tried: Tried, closed: bool = False) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end(tried, closed)

    def _closed(self) -> None:
        reading = self._reading
        message = reading.state.final_message(self._model)
        self._end(Tried(message=message, sent=True, request_id=reading.rid), closed=True)


class _HeldBody(_Committed, sdk.http.SyncByteStream):  # type: ignore[misc, name-defined]
    def __init__(
        self,
        reading: _Reading,
        rest: Iterator[bytes],
        guard: SocketGuard,
        raw: Any,
        model: str,
        on_end: StreamEnd,
    ) -> None:
        super().__init__(reading, raw, model, on_end)
        self._rest, self._guard = rest, guard


    def __iter__(self) -> Iterator[bytes]:
        reading = self._reading
        yield b"".join(reading.held)
        try:
            for chunk in self._rest:
                reading.state.feed(chunk)
                yield chunk
            tried = reading.ended(self._model, sent=True)
            if self._guard.fired:
                tried = Tried(error=overdue(), sent=True, request_id=reading.rid)
        except Exception as e:
            failed = overdue() if self._guard.fired else normalize_failure(e, True)
            tried = Tried(error=failed, sent=True, request_id=reading.rid)
        # Settled before the caller hears of a failure: the SDK raises on the error event.
        self._end(tried)
        event = _failed_after_content(tried, reading)
        if event is not None:
            yield event

    def close(self) -> None:
        self._guard.release()
        self._raw.close()
        self._closed()


# -- async -----------------------------------------------------------------------------------


async def hold_async(
    response: sdk.AsyncAPIResponse[Any], at: float, keep_text: bool, model: str, on_end: StreamEnd
) -> Tried | None:
    """`hold` for an async response; `at` is the deadline on the loop's clock."""
    raw = response.http_response
    not_sse = _not_sse(raw)
    if not_sse is not None:
        await raw.aclose()
        return not_sse
    reading = _Reading(raw, keep_text)
    chunks = raw.aiter_bytes().__aiter__()
    failure: BaseException | None = None
    try:
        while failure is None:
            try:
                async with asyncio.timeout_at(at):
                    chunk = await chunks.__anext__()
            except StopAsyncIteration:
                break
            failure = reading.feed(chunk)
            if failure is None and reading.state.started:
                body = _AsyncHeldBody(reading, chunks, at, raw, model, on_end)
                response.http_response = _rebuilt(raw, body)
                return None
    except Exception as e:
        failure = overdue() if isinstance(e, TimeoutError) else normalize_failure(e, True)
    finally:
        if not reading.state.started:
            await raw.aclose()
    return _before_content(response, raw, reading, model, failure)


class _AsyncHeldBody(_Committed, sdk.http.AsyncByteStream):  # type: ignore[misc, name-defined]
    def __init__(
        self,
        reading: _Reading,
        rest: AsyncIterator[bytes],
        at: float,
        raw: Any,
        model: str,
        on_end: StreamEnd,
    ) -> None:
        super().__init__(reading, raw, model, on_end)
        self._rest, self._at = rest, at


    async def __aiter__(self) -> AsyncIterator[bytes]:
        reading = self._reading
        yield b"".join(reading.held)
        try:
            while True:
                try:
                    async with asyncio.timeout_at(self._at):
                        chunk = await self._rest.__anext__()
                except StopAsyncIteration:
                    break
                reading.state.feed(chunk)
                yield chunk
            tried = reading.ended(self._model, sent=True)
        except Exception as e:
            failed = overdue() if isinstance(e, TimeoutError) else normalize_failure(e, True)
            tried = Tried(error=failed, sent=True, request_id=reading.rid)
        self._end(tried)
        event = _failed_after_content(tried, reading)
        if event is not None:
            yield event

    async def aclose(self) -> None:
        await self._raw.aclose()
        self._closed()

