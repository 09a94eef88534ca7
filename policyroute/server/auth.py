"""Who may call the server, which key goes upstream, and keeping keys out of everything else.

Two modes:

- pass-through (default): the client's `x-api-key` / `authorization` goes upstream unchanged.
- held key (`--api-key-env NAME`): the server sends its own key upstream and requires one of
  its client tokens instead, given as `x-api-key`, `authorization: Bearer ...` or
  `x-policyroute-token` (so `ANTHROPIC_API_KEY=<token>` just works in clients).

Client tokens may also be required in pass-through mode; there they travel in
`x-policyroute-token`, since `x-api-key` carries the caller's own Anthropic key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from policyroute.runtime.redact import redact
from policyroute.server.stream import ProxyStream

__all__ = ["Auth", "AuthError", "Caller", "redact", "scrub", "scrubbed"]

TOKEN_HEADER = "x-policyroute-token"
SECRET_HEADERS = frozenset({"x-api-key", "authorization", TOKEN_HEADER})


class AuthError(Exception):
    pass


def scrub(data: bytes, secrets: Iterable[str | None]) -> bytes:
    """Bytes an upstream wrote (an error body, an error event) with every key masked: the
    held key, the client's key and token, anything shaped like an Anthropic key. The one
    place answers are redacted; the text rules are the runtime's `redact`."""
    text = data.decode("utf-8", "surrogateescape")
    clean = redact(text, secrets)
    return data if clean == text else clean.encode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who called: a digest of their credential (scopes sticky conversations, never logged
    in clear) and the secrets seen, for redaction."""

    scope: str
    secrets: tuple[str, ...]


class Auth:
    def __init__(self, held_key: str | None = None, tokens: Iterable[str] = ()) -> None:
        self.held_key = held_key or None
        self.tokens = tuple(t for t in tokens if t)
        if self.held_key is not None and not self.tokens:
            raise ValueError("a server that holds the API key must require client tokens")

    @property
    def requires_token(self) -> bool:
        return bool(self.tokens)

    def _presented(self, headers: Mapping[str, str]) -> str | None:
        token = headers.get(TOKEN_HEADER)
        if token is None and self.held_key is not None:
            token = headers.get("x-api-key")
            if token is None:
                auth = headers.get("authorization", "")
                if auth[:7].lower() == "bearer ":
                    token = auth[7:].strip()
        return token

    def check(self, headers: Mapping[str, str]) -> Caller:
        """The caller, or AuthError when a token is required and missing or wrong."""
        secrets = tuple(headers[h] for h in SECRET_HEADERS if h in headers)
        if self.tokens:
            token = self._presented(headers)
            if token is None:
                where = (
                    f"x-api-key, authorization: Bearer, or {TOKEN_HEADER}"
                    if self.held_key
                    else TOKEN_HEADER
                )
                raise AuthError(f"this server requires a client token ({where})")
            if not any(hmac.compare_digest(token.encode(), t.encode()) for t in self.tokens):
                raise AuthError("invalid client token")
            credential = token
        else:
            credential = headers.get("x-api-key") or headers.get("authorization") or ""
        scope = hashlib.sha256(credential.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return Caller(scope, secrets)

    def upstream_auth(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The request headers with the credential that goes upstream."""
        if self.held_key is None:
            return [(k, v) for k, v in headers if k != TOKEN_HEADER]
        kept = [(k, v) for k, v in headers if k not in SECRET_HEADERS]
        kept.append(("x-api-key", self.held_key))
        return kept

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.held_key, *self.tokens) if s)


def scrubbed(response: Response, secrets: Iterable[str]) -> Response:
    """An answer with no key in it: error bodies, and error events of streams."""
    if isinstance(response, ProxyStream):
        response.body_iterator = scrub_events(response.body_iterator, tuple(secrets))
        return response
    body = getattr(response, "body", b"")
    if response.status_code >= 400 or b"event: error" in body:
        clean = scrub(body, secrets)
        if clean is not body:
            response.body = clean
            response.headers["content-length"] = str(len(clean))
    return response


async def scrub_events(chunks: Any, secrets: tuple[str, ...]) -> AsyncIterator[Any]:
    async for chunk in chunks:
        if isinstance(chunk, bytes) and b"event: error" in chunk:
            chunk = scrub(chunk, secrets)
        yield chunk
