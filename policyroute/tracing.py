"""OpenTelemetry traces of routed requests (the `policyroute[otel]` extra).

Every front end (Router, AsyncRouter, the SDK middleware, `serve`) calls `record_call` once
a routed request has ended, with its decision and attempts; that emits one span for the
request and one child span per attempt (classification, each rung of the ladder, shadow
copies), named and attributed by the OpenTelemetry GenAI semantic conventions
(`gen_ai.operation.name`, `gen_ai.request.model`, `gen_ai.usage.input_tokens`, ...) plus
what routing adds: `policyroute.policy`, `.revision`, `.rule`, `.tier`, `.trigger`.

The spans are written when the request ends, from what the ladder measured: the ladder is
pure and does not timestamp attempts, so each attempt span has its measured duration and
is placed back to back, ending with the request; offsets within the request are off by
the local work between attempts (well under a millisecond). A request span's parent is the
caller's `traceparent`, when the front end passes its headers.

Without the extra, or without a tracer provider, this costs one check per request. A
library never installs a provider (the application does); `serve` installs one from the
standard `OTEL_*` variables (`configure_from_env`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

try:
    from opentelemetry import trace as _trace
except ImportError:  # the extra is not installed
    _trace = None  # type: ignore[assignment]

TRACER = "policyroute"


def available() -> bool:
    return _trace is not None


def configure_from_env() -> bool:
    """Install an SDK tracer provider exporting by OTLP, as the standard `OTEL_*` variables
    say (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `..._HEADERS`,
    `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_EXPORTER=otlp|console|none`,
    `OTEL_SDK_DISABLED`). Only when a variable asks for traces, and only once: a provider the
    application installed itself is left alone. True when one was installed."""
    if _trace is None or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    asked = exporter_name or any(
        os.environ.get(v)
        for v in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )
    if not asked or exporter_name == "none":
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    if not isinstance(_trace.get_tracer_provider(), _trace.ProxyTracerProvider):
        return False
    resource = Resource.create(
        {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "policyroute"}
    )
    provider = TracerProvider(resource=resource)
    exporter: Any
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    elif os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").startswith("grpc"):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        exporter = HttpExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _trace.set_tracer_provider(provider)
    return True


def shutdown() -> None:
    """Flush spans still queued (a server that is stopping)."""
    if _trace is None:
        return
    flush = getattr(_trace.get_tracer_provider(), "shutdown", None)
    if flush is not None:
        flush()


def _parent(headers: Iterable[tuple[str, str]] | None) -> Any:
    if not headers:
        return None
    carrier = {k.lower(): v for k, v in headers if k.lower() in ("traceparent", "tracestate")}
    if not carrier:
        return None
    from opentelemetry.propagate import extract

    return extract(carrier)


def record_call(
    *,
    front_end: str,
    decision: Any,
    attempts: Sequence[Any],
    start: float,
    outcome: str,
    request_model: str | None = None,
    max_tokens: int | None = None,
    request_id: str | None = None,
    error: str | None = None,
    sticky_from: str | None = None,
    headers: Iterable[tuple[str, str]] | None = None,
) -> None:
    """The spans of one routed request that has ended (`start` is its `perf_counter()`)."""
    if _trace is None:
        return
    if isinstance(_trace.get_tracer_provider(), _trace.ProxyTracerProvider):
        return  # nobody installed a provider: nothing would be recorded
    tracer = _trace.get_tracer(TRACER)
    now_ns = time.time_ns()
    start_ns = now_ns - int((time.perf_counter() - start) * 1e9)
    generations = [a for a in attempts if a.kind == "generate"]
    final = generations[-1] if generations else None
    triggers = [a.trigger for a in generations if a.trigger]
    requested = request_model or "auto"
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "anthropic",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": requested,
        "gen_ai.usage.input_tokens": sum(a.input_tokens for a in generations),
        "gen_ai.usage.output_tokens": sum(a.output_tokens for a in generations),
        "policyroute.front_end": front_end,
        "policyroute.policy": getattr(decision, "policy", None) or "",
        "policyroute.revision": decision.revision,
        "policyroute.rule": decision.rule,
        "policyroute.tier": decision.tier,
        "policyroute.outcome": outcome,
        "policyroute.attempts": len(generations),
        "policyroute.cost_usd": sum(a.cost_usd for a in attempts if a.kind != "shadow"),
    }
    if max_tokens is not None:
        attrs["gen_ai.request.max_tokens"] = max_tokens
    if final is not None:
        attrs["gen_ai.response.model"] = final.model
        attrs["policyroute.final_tier"] = final.tier
        if final.stop_reason:
            attrs["gen_ai.response.finish_reasons"] = [final.stop_reason]
    if triggers:
        attrs["policyroute.trigger"] = triggers[-1]
        attrs["policyroute.triggers"] = triggers
    if request_id:
        attrs["policyroute.request_id"] = request_id
    if sticky_from:
        attrs["policyroute.sticky_from"] = sticky_from
    kind = _trace.SpanKind.SERVER if front_end == "serve" else _trace.SpanKind.INTERNAL
    span = tracer.start_span(
        f"chat {requested}",
        context=_parent(headers),
        kind=kind,
        attributes=attrs,
        start_time=start_ns,
    )
    if outcome != "ok":
        span.set_attribute("error.type", _error_type(final, outcome))
        span.set_status(_trace.Status(_trace.StatusCode.ERROR, error or outcome))
    context = _trace.set_span_in_context(span)
    cursor = now_ns
    placed = []
    for a in reversed(attempts):
        begin = max(start_ns, cursor - int(a.latency_ms * 1e6))
        placed.append((a, begin, cursor))
        cursor = begin
    for index, (a, begin, end) in enumerate(reversed(placed)):
        _attempt_span(tracer, context, a, index, begin, end)
    span.end(end_time=now_ns)


def _error_type(attempt: Any, outcome: str) -> str:
    if attempt is not None and attempt.status and attempt.status >= 400:
        return str(attempt.status)
    if attempt is not None and attempt.trigger:
        return str(attempt.trigger)
    return outcome


def _attempt_span(tracer: Any, context: Any, a: Any, index: int, begin: int, end: int) -> None:
    operation = "chat" if a.kind != "classify" else "classify"
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.system": "anthropic",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": a.model,
        "gen_ai.response.model": a.model,
        "gen_ai.usage.input_tokens": a.input_tokens,
        "gen_ai.usage.output_tokens": a.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": a.cache_read_tokens,
        "gen_ai.usage.cache_creation.input_tokens": a.cache_creation_tokens,
        "policyroute.attempt": index,
        "policyroute.kind": a.kind,
        "policyroute.tier": a.tier,
        "policyroute.cost_usd": a.cost_usd,
    }
    if a.stop_reason:
        attrs["gen_ai.response.finish_reasons"] = [a.stop_reason]
    if a.trigger:
        attrs["policyroute.trigger"] = a.trigger
    if a.status is not None:
        attrs["http.response.status_code"] = a.status
    if a.upstream_request_id:
        attrs["policyroute.upstream_request_id"] = a.upstream_request_id
    if a.classifier:
        attrs["policyroute.classifier"] = a.classifier
    span = tracer.start_span(
        f"{operation} {a.model}",
        context=context,
        kind=_trace.SpanKind.CLIENT,
        attributes=attrs,
        start_time=begin,
    )
    if a.error or (a.status is not None and a.status >= 400):
        span.set_attribute("error.type", str(a.status) if a.status else (a.trigger or "error"))
        span.set_status(_trace.Status(_trace.StatusCode.ERROR, a.error or ""))
    span.end(end_time=end)
