"""Keep API keys out of everything policyroute writes: error text, records, logs, clients.

The one place redaction happens. An upstream (or a proxy in front of it) may echo request
headers in an error body; that text reaches `EscalationError`, each attempt's `error`, the
record's `error` field, the server's log lines and its error responses. Every such string
passes through `redact` (or a `Redactor` that holds the secrets of its context: the key the
server holds, the caller's key, the client tokens) first. Anything shaped like an Anthropic
key, and the value after a credential header or parameter name, is masked even when no
secret was given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import anthropic

MASK = "[REDACTED]"

# Anthropic keys, wherever they appear.
_KEY = re.compile(r"sk-ant-[A-Za-z0-9_\-]+")
# The value after a credential header or parameter name, quoted or not, with an optional
# auth scheme (`Bearer`). One pass, no nested repetition: linear on any input.
_HEADER = re.compile(
    r"""(?i)((?:x-api-key|authorization|x-policyroute-token|api[_-]?key|access[_-]?token)["']?\s{0,8}[:=]\s{0,8}["']?)"""
    r"""((?:bearer|basic)\s{1,8})?[^\s"',;}\]]+"""
)
# A secret shorter than this is not searched for (it would mask ordinary words).
MIN_SECRET = 8


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with API keys, credential header values and the given secrets masked."""
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET and secret in text:
            text = text.replace(secret, MASK)
    text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2) or ''}{MASK}", text)
    return _KEY.sub(MASK, text)


def _error_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
    return str(exc.message)


def describe(exc: BaseException) -> str:
    """One line naming an exception (its status and the API's message when it has them);
    not yet redacted."""
    if isinstance(exc, anthropic.APIStatusError):
        return f"{type(exc).__name__}: {exc.status_code} {_error_message(exc)}"
    return f"{type(exc).__name__}: {exc}"


class Redactor:
    """`redact` bound to the secrets of one context (a router's client key, a server's held
    key and client tokens, a request's own credential headers)."""

    __slots__ = ("secrets",)

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Longest first: a key that contains another is masked whole.
        self.secrets: tuple[str, ...] = tuple(
            sorted({s for s in secrets if s and len(s) >= MIN_SECRET}, key=len, reverse=True)
        )

    def __call__(self, text: str) -> str:
        return redact(text, self.secrets)

    def exception(self, exc: BaseException) -> str:
        """One redacted line for `exc`, for a record, a log line or a client."""
        return redact(describe(exc), self.secrets)

    def with_secrets(self, more: Iterable[str | None]) -> Redactor:
        """This redactor plus the secrets of one request (its credential headers); each
        header's bare token (after `Bearer `) is masked too."""
        extra: list[str | None] = []
        for value in more:
            if value:
                extra.append(value)
                parts = value.split()
                extra.append(parts[-1] if parts else None)
        return Redactor((*self.secrets, *extra))
