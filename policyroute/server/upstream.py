"""The upstream Messages API: one pooled aiohttp session, headers in and out, streaming.

Request headers go upstream as the client sent them except hop-by-hop ones, the body
length (recomputed), `accept-encoding` (the session decodes, so what reaches the caller is
always identity-encoded) and policyroute's own `x-policyroute-*` headers. Response headers
come back the same way.

Why aiohttp rather than httpx: its HTTP parser is C, and per request it costs about a third
of the CPU (`bench/bench_serve.py`: 0.23 against 0.66 ms for a JSON answer, 0.68 against
1.56 ms for a stream); a proxy pays that on every request.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator, Iterable, Mapping
from urllib.parse import urlsplit

import aiohttp

from policyroute.decision import ERROR, TIMEOUT

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


# The server in front of the caller sets its own `date` and `server`: passing the
# upstream's on would give the caller two of each.
_RESPONSE_OWN = _HOP | {"date", "server"}


def response_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Upstream response headers worth passing back (the body is re-framed here)."""
    return {k: v for k, v in headers.items() if k.lower() not in _RESPONSE_OWN}


class UpstreamFailure(Exception):
    """The upstream could not be reached, did not answer in time, or broke off."""

    def __init__(self, exc: BaseException) -> None:
        self.timeout = isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError)
        what = "timed out" if self.timeout and not str(exc) else str(exc)
        super().__init__(f"{type(exc).__name__}: {what}")
        self.exc = exc

    @property
    def trigger(self) -> str:
        return TIMEOUT.name if self.timeout else ERROR.name

    @property
    def status(self) -> int:
        return 504 if self.timeout else 502


_FAILURES = (aiohttp.ClientError, asyncio.TimeoutError)


class UpstreamResponse:
    """An upstream answer whose head has arrived; read it, stream it, or close it."""

    __slots__ = ("_response", "headers", "status_code")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status_code = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except _FAILURES as e:
            raise UpstreamFailure(e) from e
        finally:
            self._response.release()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; raises UpstreamFailure if the upstream breaks off."""
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except _FAILURES as e:
            raise UpstreamFailure(e) from e

    def close(self) -> None:
        """Give the connection up: closed when the body was not read to its end."""
        self._response.close()


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`,
    less `NO_PROXY`), or None."""
    parts = urlsplit(url)
    if parts.hostname is None or urllib.request.proxy_bypass(parts.hostname):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(parts.scheme) or proxies.get("all")


class Upstream:
    """A pooled session to the upstream API (created on first use, inside the event loop).

    HTTP proxy variables of the environment (`HTTPS_PROXY`, `NO_PROXY`) are honoured, as the
    SDK honours them. They are read once, here: aiohttp's `trust_env` reads them, and a
    netrc file, again on every request, in a thread (a tenth of the proxy's CPU).
    """

    def __init__(
        self, base_url: str = DEFAULT_UPSTREAM, timeout: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # A read timeout between bytes, not a total: a long stream is fine while it moves.
        self.timeout = aiohttp.ClientTimeout(
            total=None, connect=min(CONNECT_TIMEOUT_S, timeout), sock_read=timeout
        )
        self._session: aiohttp.ClientSession | None = None
        self.proxy = env_proxy(self.base_url)

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self.timeout,
                trust_env=False,
                auto_decompress=True,
                # Only what the client sent: no user-agent of aiohttp's own.
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def open(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        content: bytes | None = None,
        query: str = "",
    ) -> UpstreamResponse:
        """Send a request and return as soon as the response head arrives.

        The caller must read, stream to the end or `close()` the response. Raises
        UpstreamFailure.
        """
        url = self.base_url + path + (f"?{query}" if query else "")
        try:
            response = await self._get_session().request(
                method, url, headers=headers, data=content, allow_redirects=False, proxy=self.proxy
            )
        except _FAILURES as e:
            raise UpstreamFailure(e) from e
        return UpstreamResponse(response)

    async def read(self, response: UpstreamResponse) -> bytes:
        return await response.read()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
