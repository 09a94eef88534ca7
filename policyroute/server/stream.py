"""A streaming response that always closes its source: on completion, error or disconnect.

Starlette's StreamingResponse notices a client that went away only when the next chunk fails
to send (ASGI 2.4 servers), and then leaves the body iterator unclosed; with a slow upstream
the proxy would hold the upstream stream open, and pay for its tokens, long after the caller
left. This one listens for `http.disconnect` while it streams and closes the iterator (which
closes the upstream response) as soon as either side ends.

Two plain asyncio tasks, not an anyio task group: the group's cancel scopes cost about a
twentieth of a proxied stream's CPU (`bench/bench_serve.py`, py-spy), for what `wait` and
`cancel` do here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


async def _disconnected(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class ProxyStream(StreamingResponse):
    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[bytes], headers: dict[str, str]) -> None:
        super().__init__(content, 200, headers=headers, media_type="text/event-stream")
        self._source = content

    async def _stream(self, send: Send) -> None:
        # OSError: the client went away mid-write.
        with contextlib.suppress(OSError):
            await self.stream_response(send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.ensure_future(self._stream(send))
        watching = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait((streaming, watching), return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Whichever side ended first, the other is done with; the source is closed once
            # the stream task has let go of it, even when this task is being cancelled.
            streaming.cancel()
            watching.cancel()
            await asyncio.shield(self._close(streaming, watching))
        failed = None if streaming.cancelled() else streaming.exception()
        if failed is not None:
            raise failed

    async def _close(self, *tasks: asyncio.Future[None]) -> None:
        await asyncio.gather(*tasks, return_exceptions=True)
        aclose = getattr(self._source, "aclose", None)
        if aclose is not None:
            await aclose()
