"""Keep API keys out of everything policyroute writes: error text, records, exceptions.

An upstream (or a proxy in front of it) may echo request headers in an error body; that
text reaches `EscalationError`, the record's `error` field and the `ask` output. Every
such string passes through `redact` first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "[REDACTED]"

# Anthropic keys, wherever they appear.
_KEY = re.compile(r"sk-ant-[A-Za-z0-9_\-]+")
# The value after a credential header or parameter name, quoted or not, with an optional
# auth scheme (`Bearer`). One pass, no nested repetition: linear on any input.
_HEADER = re.compile(
    r"""(?i)((?:x-api-key|authorization|api[_-]?key|access[_-]?token)["']?\s{0,8}[:=]\s{0,8}["']?)"""
    r"""((?:bearer|basic)\s{1,8})?[^\s"',;}\]]+"""
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with API keys, credential header values and the given secrets masked."""
    for secret in secrets:
        if secret and len(secret) >= 8 and secret in text:
            text = text.replace(secret, MASK)
    text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2) or ''}{MASK}", text)
    return _KEY.sub(MASK, text)
