"""The ASGI app: routes, request reading and the pieces' lifetimes.

`create_app(config)` builds a Starlette app. Routes:

- `POST /v1/messages`: routed when `model` is a routed name (`auto` or the policy's name),
  passed through untouched otherwise.
- `POST /v1/messages/count_tokens`: a routed name is replaced by the decided tier's model;
  anything else passes through.
- any other `/v1/...` request: passed through (`GET /v1/models` and the rest).
- `GET /healthz`: policy, revision, last reload; `GET /metrics`: Prometheus text.

Every error policyroute itself answers has the API's error shape and status.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from policyroute.request import RequestError
from policyroute.request.messages import from_messages_api
from policyroute.runtime.calls import PolicySource
from policyroute.runtime.deadlines import Deadlines
from policyroute.runtime.records import RecordSink, sink_for
from policyroute.runtime.shadowing import AsyncShadow, ShadowConfig
from policyroute.runtime.sticky import CONVERSATION_HEADER, DEFAULT_MAX_CONVERSATIONS, Sticky
from policyroute.runtime.sticky import conversation_key as _conversation_key
from policyroute.server.auth import Auth, AuthError, Caller, redact
from policyroute.server.errors import ApiError, error_body, error_response
from policyroute.server.metrics import Metrics
from policyroute.server.routing import ServedCall, Services, answer, decide, routing_headers
from policyroute.server.stream import ProxyStream
from policyroute.server.upstream import (
    DEFAULT_TIMEOUT_S,
    DEFAULT_UPSTREAM,
    Upstream,
    UpstreamFailure,
    UpstreamResponse,
    request_headers,
    response_headers,
)

log = logging.getLogger("policyroute.server")

ROUTE_HEADER = "x-policyroute-route"
# The Messages API's own request size limit.
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


@dataclass(slots=True)
class ServeConfig:
    """Everything the server is told. `policy` is a path (watched and hot-reloaded), a
    `Policy` or a store."""

    policy: Any
    upstream: str = DEFAULT_UPSTREAM
    records: str | os.PathLike[str] | RecordSink | None = None
    log_prompts: bool = False
    api_key: str | None = None
    client_tokens: tuple[str, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    upstream_timeout: float = DEFAULT_TIMEOUT_S
    sticky_max_conversations: int = DEFAULT_MAX_CONVERSATIONS
    poll: bool = False
    # Refuse a reload whose inline tests fail (the store's `check_tests`, where it has it).
    check_tests: bool = True
    # The policy's `shadow` statements are acted on only with a budget and a pairs file.
    shadow: ShadowConfig | None = None


class _State:
    """The app's live pieces; `services` exists between startup and shutdown."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.auth = Auth(config.api_key, config.client_tokens)
        self.metrics = Metrics()
        self.store: Any = None
        self.services: Services | None = None
        self.loaded_at = time.time()
        self.last_reload_error: str | None = None

    def on_reload(self, policy: Any) -> None:
        self.loaded_at = time.time()
        self.last_reload_error = None
        self.metrics.reloads.labels("ok").inc()
        log.info("policy reloaded: revision %s", policy.revision)

    def on_error(self, error: Exception) -> None:
        self.last_reload_error = str(error).splitlines()[0] if str(error) else "rejected"
        self.metrics.reloads.labels("rejected").inc()


def _open_store(state: _State) -> tuple[Any, bool]:
    """The policy source: a path becomes a hot-reloading store (started by the caller)."""
    policy = state.config.policy
    if isinstance(policy, str | os.PathLike):
        import inspect

        from policyroute.store import AsyncPolicyStore

        options: dict[str, Any] = {"force_polling": state.config.poll}
        if "check_tests" in inspect.signature(AsyncPolicyStore.__init__).parameters:
            options["check_tests"] = state.config.check_tests
        return AsyncPolicyStore(policy, state.on_reload, state.on_error, **options), True
    return policy, False


def create_app(config: ServeConfig) -> Starlette:
    state = _State(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store, owned = _open_store(state)
        if owned:
            store.start()
            await store.wait_ready()
        state.store = store
        upstream = Upstream(config.upstream, config.upstream_timeout)
        records = sink_for(config.records)
        state.services = Services(
            source=PolicySource(store),
            upstream=upstream,
            metrics=state.metrics,
            sticky=Sticky(config.sticky_max_conversations),
            records=records,
            log_prompts=config.log_prompts,
            secrets=state.auth.secrets(),
            deadlines=Deadlines(attempt=config.upstream_timeout),
            shadow=AsyncShadow(config.shadow, config.log_prompts) if config.shadow else None,
        )
        # The SDK, pydantic models and the policy are hundreds of thousands of long-lived
        # objects; left to the collector, every full collection walks them all on the
        # request path (millisecond pauses in the tail). They are never garbage: freeze them.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if state.services.shadow is not None:
                await state.services.shadow.drain()  # their records and pairs get written
            await upstream.aclose()
            if owned:
                await store.aclose()
            close = getattr(records, "close", None)
            if close is not None and records is not config.records:
                close()

    async def messages(request: HttpRequest) -> Response:
        return await _guarded(state, request, _messages)

    async def count_tokens(request: HttpRequest) -> Response:
        return await _guarded(state, request, _count_tokens)

    async def passthrough(request: HttpRequest) -> Response:
        return await _guarded(state, request, _passthrough)

    async def healthz(request: HttpRequest) -> Response:
        services = state.services
        policy = services.source.policy if services is not None else None
        return JSONResponse(
            {
                "status": "ok" if policy is not None else "starting",
                "policy": getattr(policy, "name", None),
                "revision": getattr(policy, "revision", None),
                "loaded_at": datetime.fromtimestamp(state.loaded_at, UTC)
                .isoformat(timespec="seconds")
                .replace("+00:00", "Z"),
                "last_reload_error": state.last_reload_error,
                "sticky_conversations": len(services.sticky.table) if services else 0,
            }
        )

    async def metrics(request: HttpRequest) -> Response:
        return Response(state.metrics.render(), media_type=state.metrics.content_type)

    async def not_found(request: HttpRequest, exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            status = exc.status_code
            text = "not found" if status == 404 else str(exc.detail)
            return error_response(status, f"{request.method} {request.url.path}: {text}")
        return _internal(state, exc)

    routes = [
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route(
            "/v1/{rest:path}",
            passthrough,
            methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        ),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: not_found, Exception: not_found},
        middleware=[Middleware(_InFlight, gauge=state.metrics.in_flight)],
    )
    app.state.policyroute = state
    return app


class _InFlight:
    """Counts requests from arrival to the last byte sent (streams included)."""

    def __init__(self, app: ASGIApp, gauge: Any) -> None:
        self.app = app
        self.gauge = gauge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.gauge.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.gauge.dec()


def _internal(state: _State, exc: BaseException) -> Response:
    # Logged without the traceback's locals and with keys redacted; the caller gets no trace.
    log.error("internal error: %s", redact(f"{type(exc).__name__}: {exc}", state.auth.secrets()))
    state.metrics.errors.labels("500").inc()
    return error_response(500, "internal error in policyroute; see the server log")


async def _guarded(state: _State, request: HttpRequest, handler: Any) -> Response:
    services = state.services
    if services is None:
        return error_response(503, "policyroute is starting")
    try:
        try:
            caller = state.auth.check(request.headers)
        except AuthError as e:
            services.metrics.errors.labels("401").inc()
            return error_response(401, str(e))
        response: Response = await handler(state, services, request, caller)
        return response
    except ApiError as e:
        services.metrics.errors.labels(str(e.status)).inc()
        # Answered without reaching the ladder (a body routing cannot read): still one line.
        log.info("%s %s -> %d %s", request.method, request.url.path, e.status, e.message)
        return e.response()
    except Exception as e:  # never a traceback to the caller
        return _internal(state, e)


async def _read_body(request: HttpRequest, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, "content-length is not a number") from None
        if size > limit:
            raise ApiError(413, f"request body is {size} bytes; the limit is {limit}")
    parts: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise ApiError(413, f"request body exceeds the limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _json_body(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise ApiError(400, "the request body is empty; expected a JSON object")
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "the request body is not UTF-8 JSON") from None
    except json.JSONDecodeError as e:
        raise ApiError(
            400, f"the request body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    if not isinstance(body, dict):
        raise ApiError(400, f"the request body must be a JSON object, not {type(body).__name__}")
    return body


def _route_attrs(body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
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


def _routed_call(
    services: Services, request: HttpRequest, caller: Caller, body: dict[str, Any]
) -> ServedCall:
    route = _route_attrs(body, request.headers)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "'stream' must be true or false")
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
        raise ApiError(400, "'max_tokens' must be a whole number")
    try:
        mapped = from_messages_api(body, **route)
    except RequestError as e:
        raise ApiError(400, str(e)) from None
    headers = services_headers(request)
    explicit = request.headers.get(CONVERSATION_HEADER) or mapped.conversation
    return ServedCall(
        body=body,
        headers=headers,
        request=mapped.request,
        route=route,
        caller=caller,
        conversation=_conversation_key(body, explicit, caller.scope),
        continuation=mapped.continuation,
        stream=stream,
        max_tokens=max_tokens,
        query=request.url.query,
    )


def services_headers(request: HttpRequest) -> list[tuple[str, str]]:
    state: _State = request.app.state.policyroute
    headers = [
        (k, v)
        for k, v in state.auth.upstream_auth(request_headers(request.headers.raw))
        if k != "content-type"
    ]
    return [*headers, ("content-type", "application/json")]


async def _messages(
    state: _State, services: Services, request: HttpRequest, caller: Caller
) -> Response:
    raw = await _read_body(request, state.config.max_body_bytes)
    body = _json_body(raw)
    if body.get("model") not in services.source.routed_names():
        return await _forward(state, services, request, raw, "messages")
    call = _routed_call(services, request, caller, body)
    await decide(services, call)
    return await answer(services, call)


async def _count_tokens(
    state: _State, services: Services, request: HttpRequest, caller: Caller
) -> Response:
    raw = await _read_body(request, state.config.max_body_bytes)
    body = _json_body(raw)
    if body.get("model") not in services.source.routed_names():
        return await _forward(state, services, request, raw, "count_tokens")
    call = _routed_call(services, request, caller, body)
    # Counting is free and approximate across tiers: no classifier is asked for it.
    decision = await decide(services, call, classify=False)
    body["model"] = decision.model
    response = await _forward(state, services, request, json.dumps(body).encode(), "count_tokens")
    response.headers.update(routing_headers(call, decision.tier))
    return response


async def _passthrough(
    state: _State, services: Services, request: HttpRequest, caller: Caller
) -> Response:
    raw = await _read_body(request, state.config.max_body_bytes)
    return await _forward(state, services, request, raw or None, request.url.path)


async def _forward(
    state: _State, services: Services, request: HttpRequest, raw: bytes | None, endpoint: str
) -> Response:
    """Send the request upstream as it came and stream the answer back as it comes."""
    headers = state.auth.upstream_auth(request_headers(request.headers.raw))
    try:
        response = await services.upstream.open(
            request.method, request.url.path, headers, raw, request.url.query
        )
    except UpstreamFailure as f:
        services.metrics.passthrough.labels(_endpoint_label(endpoint), str(f.status)).inc()
        return error_response(f.status, redact(f"upstream: {f.args[0]}", services.secrets))
    services.metrics.passthrough.labels(_endpoint_label(endpoint), str(response.status_code)).inc()
    out_headers = {**response_headers(response.headers), "x-policyroute-routed": "false"}
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return ProxyStream(_passthrough_stream(response), headers=out_headers)
    try:
        data = await services.upstream.read(response)
    except UpstreamFailure as f:
        return error_response(f.status, redact(f"upstream: {f.args[0]}", services.secrets))
    return Response(data, response.status_code, headers=out_headers)


async def _passthrough_stream(response: UpstreamResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.chunks():
            yield chunk
    except UpstreamFailure:
        yield b"event: error\ndata: " + error_body(502, "upstream stream failed") + b"\n\n"
    finally:
        response.close()


def _endpoint_label(path: str) -> str:
    # Bounded label values: the endpoint family, never an id from the path.
    if path in ("messages", "count_tokens"):
        return path
    parts = [p for p in path.split("/") if p]
    return "/".join(parts[:2]) if parts else "/"
