"""Traces: a span per routed request and per attempt, by the GenAI semantic conventions plus
policy, rule, tier and trigger. `serve` (the real process) exports them over OTLP/HTTP as
the standard OTEL_* variables say, to a receiver here; the Router and the SDK middleware
emit the same spans into the SDK's in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from fake_anthropic import FakeAnthropic, Reply
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import policyroute
from policyroute.runtime import Router, RoutingMiddleware

from .otlp_receiver import Receiver
from .serve_process import Served
from .serve_support import HAIKU, POLICY_TEXT, SONNET

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
REQUEST_KEYS = {
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "policyroute.policy",
    "policyroute.revision",
    "policyroute.rule",
    "policyroute.tier",
    "policyroute.trigger",
    "policyroute.final_tier",
}
ATTEMPT_KEYS = {
    "gen_ai.operation.name",
    "gen_ai.request.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "policyroute.tier",
    "policyroute.attempt",
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _check_spans(spans: list[dict[str, Any]], requested: str) -> None:
    """One request span and its two attempts: haiku failed (529, trigger error), sonnet
    answered."""
    (request,) = [s for s in spans if s["name"] == f"chat {requested}"]
    attempts = sorted(
        (s for s in spans if s["parent"] == request["span_id"]),
        key=lambda s: s["attributes"]["policyroute.attempt"],
    )
    assert set(request["attributes"]) >= REQUEST_KEYS, set(request["attributes"])
    a = request["attributes"]
    assert a["gen_ai.request.model"] == requested and a["gen_ai.response.model"] == SONNET
    assert (a["policyroute.policy"], a["policyroute.rule"]) == ("serve-test", "quick")
    assert (a["policyroute.tier"], a["policyroute.final_tier"]) == ("haiku", "sonnet")
    assert a["policyroute.trigger"] == "error" and a["gen_ai.usage.output_tokens"] == 5
    assert [s["name"] for s in attempts] == [f"chat {HAIKU}", f"chat {SONNET}"]
    for s in attempts:
        assert set(s["attributes"]) >= ATTEMPT_KEYS
        assert request["start"] <= s["start"] <= s["end"] <= request["end"]
    failed, answered = (s["attributes"] for s in attempts)
    assert failed["policyroute.trigger"] == "error" and failed["http.response.status_code"] == 529
    assert failed["error.type"] == "529"
    assert answered["gen_ai.usage.input_tokens"] == 10
    assert answered["gen_ai.response.finish_reasons"] == ["end_turn"]


def test_serve_exports_spans_by_otlp_from_the_otel_variables(
    tmp_path: Path, fake: FakeAnthropic, receiver: Receiver
) -> None:
    policy = tmp_path / "serve.route"
    policy.write_text(POLICY_TEXT)
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_SERVICE_NAME": "proxy-under-test",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    fake.script(HAIKU, [Reply(status=529)])
    body = {"model": "auto", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    with Served(str(policy), "--upstream", fake.base_url, env=env) as s:
        headers = {"x-api-key": "sk-ant-x", "traceparent": TRACEPARENT}
        r = httpx2.post(s.url + "/v1/messages", json=body, headers=headers)
        assert r.status_code == 200 and r.headers["x-policyroute-tier"] == "sonnet"
    # SIGTERM flushed what was still queued.
    spans = receiver.spans()
    _check_spans(spans, "auto")
    assert {s["trace_id"] for s in spans} == {TRACE_ID}  # under the caller's trace
    assert {s["service"] for s in spans} == {"proxy-under-test"}


@pytest.fixture(scope="module")
def memory() -> Iterator[InMemorySpanExporter]:
    """The SDK's in-memory exporter behind the global provider (set once per process)."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def _memory_spans(exporter: InMemorySpanExporter) -> list[dict[str, Any]]:
    return [
        {
            "name": s.name,
            "span_id": format(s.context.span_id, "016x"),
            "parent": format(s.parent.span_id, "016x") if s.parent else "",
            "attributes": {
                k: list(v) if isinstance(v, tuple) else v for k, v in (s.attributes or {}).items()
            },
            "start": s.start_time,
            "end": s.end_time,
        }
        for s in exporter.get_finished_spans()
    ]


def test_the_router_and_the_middleware_emit_the_same_spans(
    fake: FakeAnthropic, memory: InMemorySpanExporter
) -> None:
    policy = policyroute.loads(POLICY_TEXT)
    messages = [{"role": "user", "content": "hi"}]
    client = anthropic.Anthropic(base_url=fake.base_url, api_key="sk-ant-x", max_retries=0)
    memory.clear()
    fake.script(HAIKU, [Reply(status=529)])
    Router(policy, client).create(model="auto", max_tokens=8, messages=messages)
    _check_spans(_memory_spans(memory), "auto")
    memory.clear()
    fake.script(HAIKU, [Reply(status=529)])
    routed = anthropic.Anthropic(
        base_url=fake.base_url,
        api_key="sk-ant-x",
        max_retries=0,
        middleware=[RoutingMiddleware(policy, max_retries=0)],
    )
    routed.messages.create(model="auto", max_tokens=8, messages=messages)  # type: ignore[arg-type]
    _check_spans(_memory_spans(memory), "auto")
