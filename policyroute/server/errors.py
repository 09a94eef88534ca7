"""Errors in the Messages API's own shape: `{"type": "error", "error": {"type", "message"}}`."""

from __future__ import annotations

import json

from starlette.responses import Response

# Status -> the API's error type, as the Anthropic API names them.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
    # A forwarding loop: the deployment's fault, not the request's.
    508: "api_error",
    529: "overloaded_error",
}


def error_body(status: int, message: str) -> bytes:
    kind = ERROR_TYPES.get(status, "api_error")
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        error_body(status, message),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


class ApiError(Exception):
    """Raised inside a handler; answered as an error of the API's shape."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self, headers: dict[str, str] | None = None) -> Response:
        return error_response(self.status, self.message, headers)
