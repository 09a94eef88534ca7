"""One rung of the ladder over HTTP: send the body upstream, read what came back, say how
it ended (a `Tried` for the ladder) and keep the bytes to answer with.

Everything here runs under the rung's deadline, headers and body alike: an upstream that
trickles one byte at a time cannot hold a rung past it. A stream is read until its first
content event and no further; what was read is held back, so a rung that fails before
saying anything (an `error` event, an event that is not JSON, a body that is not
server-sent events, a cut) is replaced by the next one without the caller seeing it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from anthropic.types import Message
from pydantic import ValidationError

from policyroute.decision import ERROR
from policyroute.runtime.answers import MalformedAnswerError, check_message
from policyroute.runtime.deadlines import DeadlineExceeded
from policyroute.runtime.escalation import retryable_status
from policyroute.runtime.ladder import Tried
from policyroute.runtime.sse import StreamErrorEvent, StreamState, check_start
from policyroute.server.upstream import Upstream, UpstreamFailure, UpstreamResponse

MESSAGES = "/v1/messages"


class UpstreamStatus(Exception):
    """An error status from the upstream. A 4xx other than 408/409/429 is the caller's
    error (no tier would answer it differently): it fires no trigger."""

    def __init__(self, status: int, data: bytes) -> None:
        super().__init__(f"HTTP {status}: {api_message(data)}")
        self.status_code = status
        self.trigger: str | None = ERROR.name if retryable_status(status) else None


def api_message(data: bytes) -> str:
    try:
        obj = json.loads(data)
        return str(obj["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return data[:200].decode("utf-8", "replace")


@dataclass(slots=True)
class Rung:
    """What one rung left: the ladder's `Tried`, and what to answer with if it is the last.

    `data`: the whole body (JSON answers, error bodies), or the held-back start of a stream.
    `live`: the stream whose content has started (then `tried` is not final yet)."""

    tried: Tried
    status: int = 502
    headers: Mapping[str, str] = field(default_factory=dict)
    data: bytes = b""
    response: UpstreamResponse | None = None
    chunks: AsyncIterator[bytes] | None = None
    state: StreamState | None = None

    @property
    def live(self) -> bool:
        return self.response is not None


async def _within(end: float, awaitable: Any) -> Any:
    """`awaitable` bounded by `end` (the loop's clock); DeadlineExceeded when it is past."""
    try:
        async with asyncio.timeout_at(end):
            return await awaitable
    except TimeoutError:
        raise DeadlineExceeded("the attempt ran past its deadline") from None


async def try_rung(
    up: Upstream,
    headers: list[tuple[str, str]],
    query: str,
    payload: bytes,
    stream: bool,
    end: float,
    keep_text: bool,
) -> Rung:
    """Send one rung and read it as far as the ladder needs; never raises for upstream
    failures (they are in `tried.error`)."""
    response: UpstreamResponse | None = None
    try:
        data: bytes | None = None
        try:
            # One deadline around the head and the body (a timeout each cost twice).
            async with asyncio.timeout_at(end):
                response = await up.open("POST", MESSAGES, headers, payload, query)
                if response.status_code >= 400 or not stream:
                    data = await response.read()
        except TimeoutError:
            raise DeadlineExceeded("the attempt ran past its deadline") from None
        rid = response.headers.get("request-id")
        if data is not None:
            rung = Rung(Tried(request_id=rid), response.status_code, response.headers, data)
            if response.status_code >= 400:
                rung.tried.error = UpstreamStatus(response.status_code, data)
            else:
                rung.tried.message = _message(data)
            return rung
        return await _hold(response, rid, end, keep_text)
    except (UpstreamFailure, DeadlineExceeded, MalformedAnswerError) as e:
        if response is not None:
            response.close()
        return Rung(Tried(error=e))


def _check_start(message: dict[str, Any], response: UpstreamResponse) -> None:
    try:
        check_start(message)
    except MalformedAnswerError:
        response.close()
        raise


def _message(data: bytes) -> Message:
    try:
        return check_message(Message.model_validate_json(data))
    except ValidationError:
        raise MalformedAnswerError("malformed answer: not a Messages API message") from None


async def _hold(response: UpstreamResponse, rid: str | None, end: float, keep_text: bool) -> Rung:
    """Read a stream up to its first content event; hold what was read."""
    ctype = response.headers.get("content-type", "")
    if not ctype.startswith("text/event-stream"):
        response.close()
        raise MalformedAnswerError(
            f"a stream request was answered with {ctype or 'no content type'}, "
            "not server-sent events"
        )
    state = StreamState(keep_text=keep_text)
    held: list[bytes] = []
    chunks = response.chunks().__aiter__()
    checked = False
    while True:
        try:
            chunk = await _within(end, chunks.__anext__())
        except StopAsyncIteration:
            break
        held.append(chunk)
        state.feed(chunk)
        if state.broken is not None:
            response.close()
            raise MalformedAnswerError(state.broken)
        if state.message is not None and not checked:
            checked = True
            _check_start(state.message, response)
        if state.started:
            return Rung(
                Tried(request_id=rid),
                200,
                response.headers,
                b"".join(held),
                response,
                chunks,
                state,
            )
        if state.error is not None:
            response.close()
            err = state.error
            return Rung(
                Tried(
                    error=StreamErrorEvent(
                        f"stream error event: {err.get('type')}: {err.get('message')}"
                    ),
                    request_id=rid,
                ),
                200,
                response.headers,
                b"".join(held),
            )
    response.close()
    # The stream ended before any content: judge the whole answer like a JSON one.
    if not state.finished:
        raise MalformedAnswerError("the stream ended before message_stop")
    message = state.final_message("")
    if message is None:
        raise MalformedAnswerError("the stream did not describe a message")
    return Rung(Tried(message=message, request_id=rid), 200, response.headers, b"".join(held))
