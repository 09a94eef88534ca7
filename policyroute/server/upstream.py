"""The upstream Messages API: one pooled httpx2 client, headers in and out, streaming.

Request headers go upstream as the client sent them except hop-by-hop ones, the body
length (recomputed), `accept-encoding` (the client here decodes, so what reaches the caller
is always identity-encoded) and policyroute's own `x-policyroute-*` headers. Response
headers come back the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx2

DEFAULT_UPSTREAM = "https://api.anthropic.com"
# The Anthropic SDK's own default: answers of long outputs take minutes.
DEFAULT_TIMEOUT_S = 600.0
CONNECT_TIMEOUT_S = 10.0

_HOP = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "accept-encoding",
        "content-encoding",
    }
)


def request_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """The client's headers worth sending upstream (names lower-cased)."""
    out = []
    for k, v in raw:
        name = k.decode("latin-1").lower()
        if name in _HOP or name.startswith("x-policyroute-"):
            continue
        out.append((name, v.decode("latin-1")))
    return out


def response_headers(headers: httpx2.Headers) -> dict[str, str]:
    """Upstream response headers worth passing back (the body is re-framed here)."""
    return {k: v for k, v in headers.items() if k.lower() not in _HOP}


class UpstreamFailure(Exception):
    """The upstream could not be reached or did not answer in time."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(f"{type(exc).__name__}: {exc}")
        self.exc = exc
        self.timeout = isinstance(exc, httpx2.TimeoutException)

    @property
    def trigger(self) -> str:
        return "timeout" if self.timeout else "error"

    @property
    def status(self) -> int:
        return 504 if self.timeout else 502


class Upstream:
    """A pooled client to the upstream API. Every call streams: the caller reads the body."""

    def __init__(
        self,
        base_url: str = DEFAULT_UPSTREAM,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: Any = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = httpx2.AsyncClient(
            base_url=self.base_url,
            timeout=httpx2.Timeout(timeout, connect=min(CONNECT_TIMEOUT_S, timeout)),
            limits=httpx2.Limits(max_connections=None, max_keepalive_connections=256),
            follow_redirects=False,
            # Proxy settings from the environment apply to the upstream, as in the SDK.
            trust_env=True,
            transport=transport,
        )

    async def open(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        content: bytes | None = None,
        query: str = "",
    ) -> httpx2.Response:
        """Send a request and return as soon as the response head arrives.

        The caller must read or `aclose()` the response. Raises UpstreamFailure.
        """
        url = path + (f"?{query}" if query else "")
        request = self.client.build_request(method, url, headers=headers, content=content)
        try:
            return await self.client.send(request, stream=True)
        except httpx2.HTTPError as e:
            raise UpstreamFailure(e) from e

    async def read(self, response: httpx2.Response) -> bytes:
        try:
            return await response.aread()
        except httpx2.HTTPError as e:
            raise UpstreamFailure(e) from e
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self.client.aclose()
