"""The ASGI app: routes, request reading and the pieces' lifetimes.

`create_app(config)` builds a Starlette app. Routes:

- `POST /v1/messages`: routed when `model` is a routed name (`auto` or the policy's name),
  passed through untouched otherwise.
- `POST /v1/messages/count_tokens`: a routed name is replaced by the decided tier's model;
  anything else passes through.
- any other `/v1/...` request: passed through (`GET /v1/models` and the rest).
- `GET /livez`, `/readyz`, `/healthz` (server/health.py); `GET /metrics`: Prometheus text.
  When client tokens are required these four want one too, unless `public_metrics`.

Every error policyroute itself answers has the API's error shape and status; an upstream's
error answer reaches the client with every key masked (`auth.scrub`).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from policyroute import tracing
from policyroute.runtime.calls import PolicySource
from policyroute.runtime.deadlines import Deadlines
from policyroute.runtime.records import RecordSink, sink_for
from policyroute.runtime.shadowing import AsyncShadow, ShadowConfig
from policyroute.runtime.spend import SpendMeter
from policyroute.runtime.state import DEFAULT_TIMEOUT as DEFAULT_STATE_TIMEOUT
from policyroute.runtime.state import open_state
from policyroute.runtime.sticky import DEFAULT_MAX_CONVERSATIONS, Sticky
from policyroute.server.auth import Auth, AuthError, Caller, redact, scrubbed
from policyroute.server.body import DEFAULT_BODY_TIMEOUT_S, ClientGone, json_object, read_body
from policyroute.server.deferred import DeferredSink
from policyroute.server.errors import ApiError, error_response
from policyroute.server.forward import forward, upstream_headers_of
from policyroute.server.health import Health, watch_for_drain
from policyroute.server.intake import routed, routed_call
from policyroute.server.loopguard import VIA_HEADER, loop_reason, new_instance_id
from policyroute.server.metrics import Metrics
from policyroute.server.routing import Services, answer, decide, routing_headers
from policyroute.server.state_metrics import register_state_metrics
from policyroute.server.upstream import (
    DEFAULT_TIMEOUT_S,
    DEFAULT_UPSTREAM,
    Upstream,
)

log = logging.getLogger("policyroute.server")

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
    # Where sticky floors and spend live: None in this process, "redis://HOST:PORT/DB" shared.
    state: str | None = None
    state_timeout: float = DEFAULT_STATE_TIMEOUT
    # Refuse a reload whose inline tests fail (the store's `check_tests`, where it has it).
    check_tests: bool = True
    # The policy's `shadow` statements are acted on only with a budget and a pairs file.
    shadow: ShadowConfig | None = None
    # Seconds a client has to send its whole body.
    body_timeout: float = DEFAULT_BODY_TIMEOUT_S
    # Requests served at once before new ones get 529 and /readyz says not ready (0: no limit).
    max_concurrency: int = 0
    # Serve /metrics and the health endpoints without a client token.
    public_metrics: bool = False
    # This server's id in the hop header (one per `serve`, shared by its workers).
    instance_id: str = field(default_factory=new_instance_id)


class AppPieces:
    """The app's live pieces (config, auth, metrics, health, the policy store, and the
    routed requests' `Services`, which exist between startup and shutdown)."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.auth = Auth(config.api_key, config.client_tokens)
        self.metrics = Metrics()
        self.health = Health(config.max_concurrency)
        self.store: Any = None
        self.services: Services | None = None

    def on_reload(self, policy: Any) -> None:
        self.health.loaded(policy)
        self.metrics.reloads.labels("ok").inc()

    def on_error(self, error: Exception) -> None:
        self.health.rejected(error)
        self.metrics.reloads.labels("rejected").inc()


def _open_store(state: AppPieces) -> tuple[Any, bool]:
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
    state = AppPieces(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store, owned = _open_store(state)
        if owned:
            store.start()
            await store.wait_ready()
        state.store = store
        state.health.loaded(PolicySource(store).policy)
        watch_for_drain()
        tracing.configure_from_env()
        upstream = Upstream(config.upstream, config.upstream_timeout)
        records = sink_for(config.records)
        if records is not None and records is not config.records:
            # A file of our own: written after each answer has gone out (a sink the caller
            # passed in is called in place, as before).
            records = DeferredSink(records)
        shared = open_state(config.state, config.state_timeout, config.sticky_max_conversations)
        register_state_metrics(state.metrics.registry, shared)
        state.services = Services(
            source=PolicySource(store),
            upstream=upstream,
            metrics=state.metrics,
            sticky=Sticky(config.sticky_max_conversations, shared),
            records=records,
            log_prompts=config.log_prompts,
            secrets=state.auth.secrets(),
            spend=SpendMeter(shared),
            deadlines=Deadlines(attempt=config.upstream_timeout),
            shadow=AsyncShadow(config.shadow, config.log_prompts, shared)
            if config.shadow
            else None,
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
            await asyncio.to_thread(shared.close)
            if owned:
                await store.aclose()
            close = getattr(records, "close", None)
            if close is not None and records is not config.records:
                close()
            state.metrics.close()
            tracing.shutdown()

    async def messages(request: HttpRequest) -> Response:
        return await _guarded(state, request, _messages)

    async def count_tokens(request: HttpRequest) -> Response:
        return await _guarded(state, request, _count_tokens)

    async def passthrough(request: HttpRequest) -> Response:
        return await _guarded(state, request, _passthrough)

    def _policy() -> Any:
        return state.services.source.policy if state.services is not None else None

    async def livez(request: HttpRequest) -> Response:
        return _operator(state, request) or JSONResponse({"status": "alive"})

    async def readyz(request: HttpRequest) -> Response:
        denied = _operator(state, request)
        if denied is not None:
            return denied
        ready, reasons = state.health.readiness(_policy())
        body = {"status": "ready" if ready else "not ready", "reasons": reasons}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def healthz(request: HttpRequest) -> Response:
        services = state.services
        sticky = services.sticky.size() if services else 0
        return _operator(state, request) or JSONResponse(state.health.detail(_policy(), sticky))

    async def metrics(request: HttpRequest) -> Response:
        return _operator(state, request) or Response(
            state.metrics.render(), media_type=state.metrics.content_type
        )

    async def not_found(request: HttpRequest, exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            status = exc.status_code
            text = "not found" if status == 404 else str(exc.detail)
            return error_response(status, f"{request.method} {request.url.path}: {text}")
        return _internal(state, exc)

    routes = [
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        Route("/livez", livez, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route(
            "/v1/{rest:path}",
            passthrough,
            methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        ),
    ]
    app = _App(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: not_found, Exception: not_found},
        middleware=[Middleware(_InFlight, state=state)],
    )
    app.state.policyroute = state
    app.messages = _Messages(state)
    return app


class _App(Starlette):
    """Starlette, with `POST /v1/messages` (nearly every request a proxy sees) sent straight
    to its handler: the error middleware, exception middleware, router and endpoint wrapper
    cost a frame, and a wrapped `send` per chunk, on every request; the answers they would
    give are the same ones `_Messages` gives."""

    messages: _Messages | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.messages is not None
            and scope["type"] == "http"
            and scope["path"] == "/v1/messages"
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            scope["app"] = self
            await self.messages(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


_PROBES = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})


def _operator(state: AppPieces, request: HttpRequest) -> Response | None:
    """None when the caller may read metrics and health, else the 401 to answer."""
    if state.config.public_metrics or not state.auth.requires_token:
        return None
    try:
        state.auth.check(request.headers)
    except AuthError as e:
        state.metrics.errors.labels("401").inc()
        return error_response(401, str(e))
    return None


class _InFlight:
    """Counts requests from arrival to the last byte sent (streams included); past the
    concurrency limit, an API request is answered 529 (overloaded) at once."""

    def __init__(self, app: ASGIApp, state: AppPieces) -> None:
        self.app = app
        self.state = state
        self.gauge = state.metrics.in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _PROBES:
            await self.app(scope, receive, send)
            return
        await self.counted(scope, receive, send)

    async def counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        health = self.state.health
        if health.over_limit():
            self.state.metrics.errors.labels("529").inc()
            limit = health.max_concurrency
            response = error_response(529, f"policyroute is serving its limit of {limit} requests")
            await response(scope, receive, send)
            return
        health.in_flight += 1
        self.gauge.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.gauge.dec()
            health.in_flight -= 1


class _Messages(_InFlight):
    """`POST /v1/messages` as an ASGI app of its own: counted in flight, guarded as every
    API route is, and an error past the handler answered 500 as Starlette's error
    middleware answers it (then raised, for the server's log)."""

    def __init__(self, state: AppPieces) -> None:
        super().__init__(self._serve, state)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def sent(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            request = HttpRequest(scope, receive, send)
            response = await _guarded(self.state, request, _messages)
            await response(scope, receive, sent)
        except Exception as e:
            if not started:
                await _internal(self.state, e)(scope, receive, send)
            raise

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.counted(scope, receive, send)


def _internal(state: AppPieces, exc: BaseException) -> Response:
    # Logged without the traceback's locals and with keys redacted; the caller gets no trace.
    log.error("internal error: %s", redact(f"{type(exc).__name__}: {exc}", state.auth.secrets()))
    state.metrics.errors.labels("500").inc()
    return error_response(500, "internal error in policyroute; see the server log")


async def _guarded(state: AppPieces, request: HttpRequest, handler: Any) -> Response:
    services = state.services
    if services is None:
        return error_response(503, "policyroute is starting")
    try:
        looped = loop_reason(request.headers.get(VIA_HEADER), state.config.instance_id)
        if looped is not None:
            services.metrics.errors.labels("508").inc()
            log.error("%s %s: %s", request.method, request.url.path, looped)
            return error_response(508, looped)
        try:
            caller = state.auth.check(request.headers)
        except AuthError as e:
            services.metrics.errors.labels("401").inc()
            return error_response(401, str(e))
        response: Response = await handler(state, services, request, caller)
        return scrubbed(response, (*services.secrets, *caller.secrets))
    except ApiError as e:
        services.metrics.errors.labels(str(e.status)).inc()
        # Answered without reaching the ladder (a body routing cannot read): still one line.
        log.info("%s %s -> %d %s", request.method, request.url.path, e.status, e.message)
        return e.response()
    except ClientGone:
        # Nobody is left to answer; not an error of ours, and not counted as one.
        services.metrics.client_disconnects.labels("body").inc()
        return Response(status_code=400)
    except Exception as e:  # never a traceback to the caller
        return _internal(state, e)


async def _read_body(request: HttpRequest, config: ServeConfig) -> bytes:
    return await read_body(request, config.max_body_bytes, config.body_timeout)


def _json_body(raw: bytes) -> dict[str, Any]:
    return json_object(raw)


async def _messages(
    state: AppPieces, services: Services, request: HttpRequest, caller: Caller
) -> Response:
    raw = await _read_body(request, state.config)
    body = _json_body(raw)
    if not routed(services, body):
        return await forward(services, request, raw, "messages")
    call = routed_call(services, request, caller, body, upstream_headers_of(request))
    await decide(services, call)
    return await answer(services, call)


async def _count_tokens(
    state: AppPieces, services: Services, request: HttpRequest, caller: Caller
) -> Response:
    raw = await _read_body(request, state.config)
    body = _json_body(raw)
    if not routed(services, body):
        return await forward(services, request, raw, "count_tokens")
    call = routed_call(services, request, caller, body, upstream_headers_of(request))
    # Counting is free and approximate across tiers: no classifier is asked for it.
    decision = await decide(services, call, classify=False)
    body["model"] = decision.model
    data = json.dumps(body).encode()
    response = await forward(services, request, data, "count_tokens", decision)
    response.headers.update(routing_headers(call, decision.tier))
    return response


async def _passthrough(
    state: AppPieces, services: Services, request: HttpRequest, caller: Caller
) -> Response:
    raw = await _read_body(request, state.config)
    return await forward(services, request, raw or None, request.url.path)
