"""The one place that knows which Anthropic SDK versions policyroute runs on.

Everything the runtime takes from the SDK beyond `anthropic.Anthropic` and its errors comes
through here, so an SDK too old (or too new) fails once, with a message that says what to
install, instead of as an ImportError deep in a module. The middleware types are public
from `anthropic` 0.108 on; the HTTP library is `httpx` up to 0.x and `httpx2` from 1.0, and
is found through the SDK's own public default client class rather than guessed.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Mapping
from types import ModuleType
from typing import Any

# The range the test suite runs against (CI tests both ends): keep in step with pyproject.
MIN_VERSION = (0, 108, 0)
BELOW_VERSION = (3, 0, 0)
SUPPORTED = "anthropic>=0.108,<3"


class SDKVersionError(ImportError):
    """The installed Anthropic SDK is missing or outside the supported range."""


def _version(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in re.findall(r"\d+", text)[:3]]
    parts += [0] * (3 - len(parts))
    return (parts[0], parts[1], parts[2])


try:
    import anthropic
except ImportError as e:  # pragma: no cover - the package depends on it
    raise SDKVersionError(
        f"policyroute's runtime needs the Anthropic SDK: pip install '{SUPPORTED}'"
    ) from e

VERSION = _version(anthropic.__version__)
if not MIN_VERSION <= VERSION < BELOW_VERSION:
    raise SDKVersionError(
        f"policyroute's runtime needs {SUPPORTED}; anthropic {anthropic.__version__} is "
        f"installed. Run: pip install '{SUPPORTED}'"
    )

from anthropic import (  # noqa: E402  (after the version check, on purpose)
    APIRequest,
    APIResponse,
    AsyncAPIResponse,
    AsyncCallNext,
    CallNext,
    Middleware,
)


def request_body(request: APIRequest) -> Any:
    """A request's JSON body as it will be sent, `extra_body` included.

    From 1.x the SDK merges `extra_body` into the body before the middleware runs; before,
    it merges it later, so a middleware sees it apart.
    """
    body = request.json
    extra = getattr(request.options, "extra_json", None)
    if isinstance(extra, Mapping) and extra:
        return {**body, **extra} if isinstance(body, Mapping) else dict(extra)
    return body


def with_body(request: APIRequest, body: Mapping[str, Any], timeout: Any = None) -> APIRequest:
    """A copy of `request` sending exactly `body` (any `extra_body` already merged into it)."""
    copied = (
        request.copy(body=dict(body))
        if timeout is None
        else request.copy(body=dict(body), timeout=timeout)
    )
    if getattr(copied.options, "extra_json", None) is not None:
        copied.options.extra_json = None
    return copied


def _http_library() -> ModuleType:
    """The HTTP library the SDK is built on (`httpx` or `httpx2`)."""
    for cls in anthropic.DefaultHttpxClient.__mro__[1:]:
        module = inspect.getmodule(cls)
        if module is not None and module.__name__.split(".")[0] in ("httpx", "httpx2"):
            return importlib.import_module(module.__name__.split(".")[0])
    raise SDKVersionError(  # pragma: no cover - every supported SDK has one of the two
        f"cannot find the HTTP library of anthropic {anthropic.__version__}; "
        f"policyroute supports {SUPPORTED}"
    )


http = _http_library()

# Errors raised while a response body is read: the SDK wraps failures of the request
# itself, but a body read mid-stream raises the HTTP library's own exceptions.
TransportError: type[Exception] = http.TransportError
HTTPTimeout: type[Exception] = http.TimeoutException
Timeout = http.Timeout

__all__ = [
    "BELOW_VERSION",
    "MIN_VERSION",
    "SUPPORTED",
    "VERSION",
    "APIRequest",
    "APIResponse",
    "AsyncAPIResponse",
    "AsyncCallNext",
    "CallNext",
    "HTTPTimeout",
    "Middleware",
    "SDKVersionError",
    "Timeout",
    "TransportError",
    "http",
    "request_body",
    "with_body",
]
