"""Forwarding a request upstream as it came, and its answer back as it comes: pass-through
requests (a model that is not routed, any other `/v1/...` path) and routed `count_tokens`."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request as HttpRequest
from starlette.responses import Response

from policyroute.decision import Decision
from policyroute.server.auth import redact
from policyroute.server.errors import error_body, error_response
from policyroute.server.intake import upstream_headers
from policyroute.server.routing import Services
from policyroute.server.stream import ProxyStream
from policyroute.server.upstream import UpstreamFailure, UpstreamResponse, response_headers


def upstream_headers_of(request: HttpRequest) -> list[tuple[str, str]]:
    pieces = request.app.state.policyroute
    return upstream_headers(request, pieces.auth, pieces.config.instance_id)


async def forward(
    services: Services,
    request: HttpRequest,
    raw: bytes | None,
    endpoint: str,
    decision: Decision | None = None,
) -> Response:
    """Send the request upstream as it came and stream the answer back as it comes
    (`decision`: a routed count_tokens, counted as routed)."""
    headers = upstream_headers_of(request)
    try:
        response = await services.upstream.open(
            request.method, request.url.path, headers, raw, request.url.query
        )
    except UpstreamFailure as f:
        services.metrics.forwarded(endpoint_label(endpoint), f.status, decision)
        return error_response(f.status, redact(f"upstream: {f.args[0]}", services.secrets))
    services.metrics.forwarded(endpoint_label(endpoint), response.status_code, decision)
    out_headers = {**response_headers(response.headers), "x-policyroute-routed": "false"}
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return ProxyStream(passthrough_stream(response), headers=out_headers)
    try:
        data = await services.upstream.read(response)
    except UpstreamFailure as f:
        return error_response(f.status, redact(f"upstream: {f.args[0]}", services.secrets))
    return Response(data, response.status_code, headers=out_headers)


async def passthrough_stream(response: UpstreamResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.chunks():
            yield chunk
    except UpstreamFailure:
        yield b"event: error\ndata: " + error_body(502, "upstream stream failed") + b"\n\n"
    finally:
        response.close()


def endpoint_label(path: str) -> str:
    # Bounded label values: the endpoint family, never an id from the path.
    if path in ("messages", "count_tokens"):
        return path
    parts = [p for p in path.split("/") if p]
    return "/".join(parts[:2]) if parts else "/"
