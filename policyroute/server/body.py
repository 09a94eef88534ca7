"""Reading a request body: the size limit, the read deadline, a client that leaves, and the
one guarded JSON parse every body goes through.

Hostile bodies are answered 400 in the API's shape, never 500: over-long integers, deep
nesting, `NaN`/`Infinity` (not JSON, and they would go upstream as such), and lone
surrogates (`"\\ud800"` decodes to a string that cannot be encoded again, so it would fail
later, anywhere).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.requests import Request as HttpRequest

from policyroute import jsonsafe
from policyroute.server.errors import ApiError

# Seconds a client has to send its whole body, however slowly it drips.
DEFAULT_BODY_TIMEOUT_S = 60.0

# A body found too large is read to its end (within the body deadline and this many bytes)
# before the 413 goes out: a client that writes its whole body before reading would
# otherwise see the connection reset, not the answer. Past the cap it is reset after all.
DRAIN_MAX_BYTES = 256 * 1024 * 1024

# An escaped high or low surrogate: the only way valid UTF-8 JSON yields a lone one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class ClientGone(Exception):
    """The client hung up before its request was read: nobody to answer, nothing failed."""


async def read_body(request: HttpRequest, limit: int, timeout: float) -> bytes:
    """The whole body, or ApiError 413 (too large, declared or sent) / 408 (too slow).

    Raises ClientGone when the client disconnects mid-body.
    """
    declared = request.headers.get("content-length")
    too_large: str | None = None
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, "content-length is not a number") from None
        if size > limit:
            too_large = f"request body is {size} bytes; the limit is {limit}"
            if request.headers.get("expect", "").lower() == "100-continue":
                # The client waits for a go-ahead that never comes: nothing to drain.
                raise ApiError(413, too_large)
    parts: list[bytes] = []
    total = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                total += len(chunk)
                if too_large is None and total > limit:
                    too_large = f"request body exceeds the limit of {limit} bytes"
                if too_large is None:
                    parts.append(chunk)
                elif total > DRAIN_MAX_BYTES:
                    break
    except TimeoutError:
        if too_large is not None:
            raise ApiError(413, too_large) from None
        raise ApiError(
            408, f"the request body did not arrive within {timeout:g} s ({total} bytes read)"
        ) from None
    except ClientDisconnect:
        raise ClientGone() from None
    if too_large is not None:
        raise ApiError(413, too_large)
    return b"".join(parts)


def parse_json(raw: bytes) -> Any:
    """A request body through the project's one guarded JSON reader (`jsonsafe`), which
    reports long integers, NaN/Infinity, out-of-range floats and deep nesting with their
    line and column. A lone surrogate, which `jsonsafe` would make U+FFFD, is refused here
    as the Messages API refuses it (a body is not a log line to salvage)."""
    try:
        value = jsonsafe.loads(raw, where="request body")
    except jsonsafe.JSONError as e:
        raise ApiError(400, f"the request body is not valid JSON: {e}") from None
    if _SURROGATE_ESCAPE.search(raw) is not None:
        # Checked above: nothing in it can fail to parse now; only rare bodies pay twice.
        _lone_surrogates(json.loads(raw))
    return value


def _lone_surrogates(value: Any) -> None:
    """Iteratively (the depth is bounded, but a walk need not recurse)."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                at = f"{where}.{_shown(k)}" if where else _shown(k)
                _text(k, at)
                stack.append((v, at))
        elif isinstance(node, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(node))
        elif isinstance(node, str):
            _text(node, where or "the body")


def _shown(key: str) -> str:
    return key.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")[:40]


def _text(s: str, where: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ApiError(
            400,
            f"{where}: a lone surrogate (\\u{ord(s[e.start]):04x}) is not a character; "
            "strings must be valid Unicode",
        ) from None


def json_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object."""
    if not raw:
        raise ApiError(400, "the request body is empty; expected a JSON object")
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise ApiError(400, f"the request body must be a JSON object, not {type(body).__name__}")
    return body
