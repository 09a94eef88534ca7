"""The proxy speaks the Messages API: the real SDK (sync, async, streaming) and raw HTTP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import anthropic
import httpx2
from fake_anthropic import FakeAnthropic, Reply

from .serve_support import HAIKU, OPUS, SONNET, ServerThread, read_records

KEY = "sk-ant-api03-test-key-0123456789"


def _client(proxy: ServerThread, **kw: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.url, api_key=KEY, max_retries=0, **kw)


_records = read_records


def test_sync_sdk_routes_auto(proxy: ServerThread, fake: FakeAnthropic) -> None:
    with _client(proxy) as client:
        raw = client.messages.with_raw_response.create(
            model="auto", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        )
    message = raw.parse()
    assert message.content[0].text == "hello"
    assert message.model == HAIKU
    assert raw.headers["x-policyroute-routed"] == "true"
    assert raw.headers["x-policyroute-tier"] == "haiku"
    assert raw.headers["x-policyroute-rule"] == "quick"
    assert raw.headers["x-policyroute-attempts"] == "1"
    assert raw.headers["x-policyroute-revision"] == proxy.state.services.source.policy.revision
    assert raw.headers["request-id"].startswith("req_")  # the upstream's headers come back
    seen = fake.requests[-1]
    assert seen.model == HAIKU
    # The caller's max_tokens is kept under the rule's cap of 1024.
    assert seen.body["max_tokens"] == 100
    # Pass-through: the caller's credential goes upstream as it was sent.
    assert KEY in (seen.headers.get("x-api-key"), seen.headers.get("authorization", "")[7:])
    (record,) = _records(proxy)
    assert record["tier"] == "haiku" and record["final_tier"] == "haiku"
    assert record["outcome"] == "ok" and record["attempts"][0]["model"] == HAIKU
    assert KEY not in Path(proxy.state.config.records).read_text(encoding="utf-8")


def test_policy_name_is_a_routed_name(proxy: ServerThread, fake: FakeAnthropic) -> None:
    with _client(proxy) as client:
        message = client.messages.create(
            model="serve-test",
            max_tokens=50,
            messages=[{"role": "user", "content": "is there a race condition here?"}],
        )
    assert message.model == OPUS


def test_async_sdk_create_and_stream(proxy: ServerThread, fake: FakeAnthropic) -> None:
    async def go() -> tuple[str, list[str], str]:
        client = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=KEY, max_retries=0)
        try:
            made = await client.messages.create(
                model="auto", max_tokens=64, messages=[{"role": "user", "content": "hello"}]
            )
            texts: list[str] = []
            async with client.messages.stream(
                model="auto",
                max_tokens=64,
                messages=[{"role": "user", "content": "find the deadlock in my pool"}],
            ) as stream:
                async for text in stream.text_stream:
                    texts.append(text)
                final = await stream.get_final_message()
            return made.model, texts, final.model
        finally:
            await client.close()

    made_model, texts, streamed_model = asyncio.run(go())
    assert made_model == HAIKU
    assert "".join(texts) == "hello"
    assert streamed_model == OPUS


def test_sync_stream_passes_events_through(proxy: ServerThread, fake: FakeAnthropic) -> None:
    fake.script(OPUS, [Reply(text="one two three four", chunks=4, output_tokens=7)])
    with (
        _client(proxy) as client,
        client.messages.stream(
            model="auto",
            max_tokens=64,
            messages=[{"role": "user", "content": "a deadlock again"}],
        ) as stream,
    ):
        events = [e.type for e in stream]
        final = stream.get_final_message()
    assert events.count("content_block_delta") == 4
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert final.usage.output_tokens == 7
    assert final.content[0].text == "one two three four"
    (record,) = _records(proxy)
    assert record["outcome"] == "ok" and record["output_tokens"] == 7


def test_raw_http_stream_headers(proxy: ServerThread, fake: FakeAnthropic) -> None:
    body = {
        "model": "auto",
        "max_tokens": 32,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with httpx2.stream(
        "POST", proxy.url + "/v1/messages", json=body, headers={"x-api-key": KEY}
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-policyroute-tier"] == "haiku"
        text = r.read().decode()
    assert text.startswith("event: message_start")
    assert "event: message_stop" in text


def test_other_models_pass_through_untouched(proxy: ServerThread, fake: FakeAnthropic) -> None:
    body = {
        "model": SONNET,
        "max_tokens": 99_999,
        "messages": [{"role": "user", "content": "find the deadlock"}],
        "metadata": {"user_id": "u1"},
        "some_future_field": {"kept": True},
    }
    raw = json.dumps(body).encode()
    r = httpx2.post(
        proxy.url + "/v1/messages",
        content=raw,
        headers={
            "x-api-key": KEY,
            "anthropic-beta": "future-2026",
            "content-type": "application/json",
        },
    )
    assert r.status_code == 200
    assert r.headers["x-policyroute-routed"] == "false"
    assert "x-policyroute-tier" not in r.headers
    seen = fake.requests[-1]
    assert seen.body == body  # nothing added, nothing capped
    assert seen.headers["anthropic-beta"] == "future-2026"
    assert not Path(proxy.state.config.records).read_text(encoding="utf-8")  # no decision


def test_count_tokens_and_models(proxy: ServerThread, fake: FakeAnthropic) -> None:
    with _client(proxy) as client:
        counted = client.messages.count_tokens(
            model=SONNET, messages=[{"role": "user", "content": "hello there"}]
        )
        assert counted.input_tokens > 0
        routed = client.messages.with_raw_response.count_tokens(
            model="auto", messages=[{"role": "user", "content": "a deadlock"}]
        )
        assert routed.parse().input_tokens > 0
        assert routed.headers["x-policyroute-tier"] == "opus"
        assert fake.requests[-1].model == OPUS
        models = client.models.list()
        assert [m.id for m in models.data] == [HAIKU, SONNET, OPUS]
        assert client.models.retrieve(OPUS).id == OPUS
    r = httpx2.get(proxy.url + "/v1/models/nope", headers={"x-api-key": KEY})
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


def claude_code_request(model: str = "auto", turns: int = 3) -> dict[str, Any]:
    """A request shaped like Claude Code's: system blocks with cache_control, tools, a tool
    round trip, an image, thinking blocks, cache_control on the newest message."""
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    messages: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<system-reminder>context</system-reminder>"},
                {"type": "text", "text": "Why does this test fail?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": png},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Let me read the file.", "signature": "sig"},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "Read",
                    "input": {"file_path": "a.py"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "def f(): ..."},
                {"type": "text", "text": "go on", "cache_control": {"type": "ephemeral"}},
            ],
        },
    ][:turns]
    return {
        "model": model,
        "max_tokens": 32000,
        "system": [
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
            {
                "type": "text",
                "text": "Long instructions about tools and style.",
                "cache_control": {"type": "ephemeral"},
            },
        ],
        "tools": [
            {
                "name": "Read",
                "description": "Read a file",
                "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}},
            }
        ],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "metadata": {"user_id": "user_abc_account_x_session_y"},
        "messages": messages,
        "stream": True,
    }


def test_claude_code_shaped_request(proxy: ServerThread, fake: FakeAnthropic) -> None:
    body = claude_code_request()
    with httpx2.stream(
        "POST",
        proxy.url + "/v1/messages",
        json=body,
        headers={
            "x-api-key": KEY,
            "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
        },
    ) as r:
        assert r.status_code == 200
        r.read()
    # Tools and more than two turns: the rule `tools` decides.
    assert r.headers["x-policyroute-rule"] == "tools"
    seen = fake.requests[-1]
    assert seen.model == SONNET
    # Everything but the model and the capped max_tokens goes upstream as sent.
    expected = {**body, "model": SONNET, "max_tokens": 16384}
    assert seen.body == expected
    assert seen.headers["anthropic-beta"].startswith("claude-code-20250219")
    (record,) = _records(proxy)
    assert record["route"] == {}
    assert record["rule"] == "tools"


def test_metadata_user_id_and_route_header(proxy: ServerThread, fake: FakeAnthropic) -> None:
    messages = [{"role": "user", "content": "x" * 300}]
    with _client(proxy) as client:
        raw = client.messages.with_raw_response.create(
            model="auto",
            max_tokens=10,
            messages=messages,
            extra_headers={"x-policyroute-route": json.dumps({"user": {"tier": "free"}})},
        )
        assert raw.headers["x-policyroute-rule"] == "free"
        raw = client.messages.with_raw_response.create(
            model="auto",
            max_tokens=10,
            messages=messages,
            extra_body={"route": {"task": "review"}},
        )
        assert raw.headers["x-policyroute-rule"] == "review"
        assert "route" not in fake.requests[-1].body  # never sent upstream
        assert "x-policyroute-route" not in fake.requests[-2].headers
    record = _records(proxy)[-1]
    assert record["route"] == {"task": "review"}
