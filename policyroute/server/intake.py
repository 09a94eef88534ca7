"""From an HTTP request to a routed call: the routing attributes (header and body), the
checks of the fields routing reads, the request mapping, and the headers that go upstream."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request as HttpRequest

from policyroute.request import RequestError
from policyroute.request.messages import from_messages_api
from policyroute.runtime.sticky import CONVERSATION_HEADER
from policyroute.runtime.sticky import conversation_key as _conversation_key
from policyroute.server.auth import Auth, Caller
from policyroute.server.errors import ApiError
from policyroute.server.loopguard import VIA_HEADER, via_value
from policyroute.server.routing import ServedCall, Services
from policyroute.server.upstream import request_headers

ROUTE_HEADER = "x-policyroute-route"
JSON = ("content-type", "application/json")


def routed(services: Services, body: dict[str, Any]) -> bool:
    model = body.get("model")
    return isinstance(model, str) and model in services.source.routed_names()


def route_attrs(body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
    """Routing attributes: the `x-policyroute-route` header, then the body's `route` object
    (which wins key by key). The body's `route` is removed: the upstream never sees it."""
    route: dict[str, Any] = {}
    raw = headers.get(ROUTE_HEADER)
    if raw is not None:
        try:
            parsed = json.loads(raw)
        except ValueError as e:
            raise ApiError(400, f"{ROUTE_HEADER}: not valid JSON ({e})") from None
        if not isinstance(parsed, dict):
            raise ApiError(400, f"{ROUTE_HEADER}: must be a JSON object of routing attributes")
        route.update(parsed)
    if "route" in body:
        inline = body.pop("route")
        if not isinstance(inline, dict):
            raise ApiError(400, "'route' must be an object of routing attributes")
        for key, value in inline.items():
            if isinstance(value, dict) and isinstance(route.get(key), dict):
                route[key] = {**route[key], **value}
            else:
                route[key] = value
    return route


def routed_call(
    services: Services,
    request: HttpRequest,
    caller: Caller,
    body: dict[str, Any],
    headers: list[tuple[str, str]],
) -> ServedCall:
    """The routed call of a request whose model is a routed name; ApiError 400 when the
    body or the routing attributes have a wrong type anywhere the mapping reads."""
    route = route_attrs(body, request.headers)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "'stream' must be true or false")
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
        raise ApiError(400, "'max_tokens' must be a whole number")
    try:
        mapped = from_messages_api(body, **route)
        explicit = request.headers.get(CONVERSATION_HEADER) or mapped.conversation
        conversation = _conversation_key(body, explicit, caller.scope)
    except RequestError as e:
        raise ApiError(400, str(e)) from None
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        # The mapping reports the shapes it knows; any other wrong type is still the
        # request's fault, not the server's.
        raise ApiError(400, f"the request body is not a valid Messages API request: {e}") from None
    return ServedCall(
        body=body,
        headers=[*[(k, v) for k, v in headers if k != "content-type"], JSON],
        request=mapped.request,
        route=route,
        caller=caller,
        conversation=conversation,
        continuation=mapped.continuation,
        stream=stream,
        max_tokens=max_tokens,
        # The raw query string, as `request.url.query` gives it, without parsing a URL.
        query=request.scope.get("query_string", b"").decode(),
    )


def upstream_headers(request: HttpRequest, auth: Auth, instance: str) -> list[tuple[str, str]]:
    """The client's headers as they go upstream: the credential that goes there, and this
    server appended to the hop header (so a request that comes back is recognised)."""
    headers = auth.upstream_auth(request_headers(request.headers.raw))
    return [*headers, (VIA_HEADER, via_value(request.headers.get(VIA_HEADER), instance))]
