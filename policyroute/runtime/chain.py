"""The middleware's view of the SDK's chain: error responses, credentials, side calls.

Helpers of `RoutingMiddleware`: turning an error response into the SDK's exception, the
credentials a request carries (so an echo of them is masked), and the classifier's call
through the rest of the middleware chain.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import anthropic
from anthropic.types import Message

from policyroute.runtime.sdk import (
    APIRequest,
    APIResponse,
    AsyncAPIResponse,
    AsyncCallNext,
    CallNext,
    with_body,
)


def is_messages(request: APIRequest) -> bool:
    url = request.url.split("?", 1)[0]
    return request.method.lower() == "post" and url.endswith("/v1/messages")


STATUS_ERRORS: dict[int, type[anthropic.APIStatusError]] = {
    400: anthropic.BadRequestError,
    401: anthropic.AuthenticationError,
    403: anthropic.PermissionDeniedError,
    404: anthropic.NotFoundError,
    409: anthropic.ConflictError,
    422: anthropic.UnprocessableEntityError,
    429: anthropic.RateLimitError,
}


def error_for(response: APIResponse[Any] | AsyncAPIResponse[Any]) -> anthropic.APIStatusError:
    """The SDK's error for an error response, with the message of its body when it has one."""
    raw = response.http_response
    body: Any = None
    message = f"HTTP {raw.status_code}"
    try:
        body = raw.json() if raw.is_stream_consumed or not raw.is_closed else None
        err = body.get("error") if isinstance(body, Mapping) else None
        if isinstance(err, Mapping) and isinstance(err.get("message"), str):
            message = err["message"]
    except Exception:  # an unreadable error body still is an error status
        body = None
    status = raw.status_code
    cls = STATUS_ERRORS.get(
        status, anthropic.InternalServerError if status >= 500 else anthropic.APIStatusError
    )
    return cls(message, response=raw, body=body)


def secrets_of(request: APIRequest) -> tuple[str | None, ...]:
    """The credentials this request carries, so an echo of them can be masked."""
    headers = request.headers
    found: list[str | None] = []
    if isinstance(headers, Mapping):
        for name in ("x-api-key", "authorization", "X-Api-Key", "Authorization"):
            value = headers.get(name)
            if isinstance(value, str):
                found.append(value)
                found.append(value.split()[-1] if value.split() else None)
    return tuple(found)


class ChainMessages:
    """`messages.create` over the rest of the middleware chain, for the classifier."""

    def __init__(self, request: APIRequest, call_next: CallNext) -> None:
        self._request = request
        self._call_next = call_next

    def create(self, **params: Any) -> Message:
        timeout = params.pop("timeout", None)
        response = self._call_next(side_request(self._request, params, timeout))
        if response.status_code >= 400:
            raise error_for(response)
        message: Message = response.parse()
        return message


class AsyncChainMessages:
    """The same over an async chain, from the worker thread decide() runs in."""

    def __init__(
        self, request: APIRequest, call_next: AsyncCallNext, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._request = request
        self._call_next = call_next
        self._loop = loop

    async def _create(self, params: dict[str, Any]) -> Message:
        timeout = params.pop("timeout", None)
        response = await self._call_next(side_request(self._request, params, timeout))
        if response.status_code >= 400:
            raise error_for(response)
        message: Message = await response.parse()
        return message

    def create(self, **params: Any) -> Message:
        return asyncio.run_coroutine_threadsafe(self._create(params), self._loop).result()


class ChainClient:
    def __init__(self, messages: ChainMessages | AsyncChainMessages) -> None:
        self.messages = messages


def side_request(request: APIRequest, body: dict[str, Any], timeout: float | None) -> APIRequest:
    """A non-streaming request for `body`, with its own idempotency key."""
    copied = with_body(request, body, timeout)
    copied.options.idempotency_key = f"{request.options.idempotency_key}-classify"
    return APIRequest(
        options=copied.options,
        cast_to=Message,
        stream=False,
        retries_taken=request.retries_taken,
    )
