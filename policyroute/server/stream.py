"""A streaming response that always closes its source: on completion, error or disconnect.

Starlette's StreamingResponse notices a client that went away only when the next chunk fails
to send (ASGI 2.4 servers), and then leaves the body iterator unclosed; with a slow upstream
the proxy would hold the upstream stream open, and pay for its tokens, long after the caller
left. This one listens for `http.disconnect` while it streams and closes the iterator (which
closes the upstream response) as soon as either side ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class ProxyStream(StreamingResponse):
    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[bytes], headers: dict[str, str]) -> None:
        super().__init__(content, 200, headers=headers, media_type="text/event-stream")
        self._source = content

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as tg:

                async def stream() -> None:
                    # OSError: the client went away mid-write.
                    with contextlib.suppress(OSError):
                        await self.stream_response(send)
                    tg.cancel_scope.cancel()

                tg.start_soon(stream)
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        break
                tg.cancel_scope.cancel()
        finally:
            aclose = getattr(self._source, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()
