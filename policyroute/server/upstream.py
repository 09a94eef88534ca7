"""The upstream Messages API: one pooled httpx2 client, headers in and out, streaming.

Request headers go upstream as the client sent them except hop-by-hop ones, the body
length (recomputed), `accept-encoding` (the client here decodes, so what reaches the caller
is always identity-encoded) and policyroute's own `x-policyroute-*` headers. Response
headers come back the same way.
"""

from __future__ import annotations

import os
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


_PROXY_ENV = ("http_proxy", "https_proxy", "all_proxy")


def _env_proxies() -> bool:
    return any(os.environ.get(n) or os.environ.get(n.upper()) for n in _PROXY_ENV)


class Upstream:
    """A pooled connection to the upstream API. Every call streams: the caller reads the body.

    Requests go straight to httpx2's transport (its connection pool): the client layer on top
    (cookies, auth flows, redirects, URL merging) is work a proxy does not want, about a
    quarter of the CPU per request. When the environment names an HTTP proxy, the full client
    is used instead, since it is the one that honours those variables (and NO_PROXY).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_UPSTREAM,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: Any = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = httpx2.Timeout(timeout, connect=min(CONNECT_TIMEOUT_S, timeout))
        self._extensions = {"timeout": self.timeout.as_dict()}
        limits = httpx2.Limits(max_connections=None, max_keepalive_connections=256)
        self.client: httpx2.AsyncClient | None = None
        self.transport: Any = transport
        if transport is None and _env_proxies():
            self.client = httpx2.AsyncClient(
                timeout=self.timeout, limits=limits, follow_redirects=False, trust_env=True
            )
        elif transport is None:
            self.transport = httpx2.AsyncHTTPTransport(limits=limits, trust_env=False)

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
        url = self.base_url + path + (f"?{query}" if query else "")
        try:
            request = httpx2.Request(
                method, url, headers=headers, content=content, extensions=self._extensions
            )
            if self.client is not None:
                return await self.client.send(request, stream=True)
            response: httpx2.Response = await self.transport.handle_async_request(request)
            response.request = request
            return response
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
        if self.client is not None:
            await self.client.aclose()
        elif self.transport is not None:
            await self.transport.aclose()
