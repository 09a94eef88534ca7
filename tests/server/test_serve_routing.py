"""Escalation, stickiness, disconnects and load, through the proxy."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from fake_anthropic import FakeAnthropic, Reply

import policyroute
from policyroute.server.app import ServeConfig

from .serve_support import HAIKU, OPUS, SONNET, ServerThread, read_records

KEY = "sk-ant-api03-routing-test-0123456789"
H = {"x-api-key": KEY}


def _body(text: str, **kw: Any) -> dict[str, Any]:
    return {
        "model": "auto",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": text}],
        **kw,
    }


_records = read_records


# -- escalation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "trigger"),
    [
        (Reply(stop_reason="max_tokens"), "max_tokens"),
        (Reply(stop_reason="refusal", text=""), "refusal"),
        (Reply(status=529, text="Overloaded"), "error"),
        (Reply(status=500, text="boom"), "error"),
        (Reply(status=200, text="x", delay=1.0), "timeout"),
    ],
)
def test_json_escalation(
    fake: FakeAnthropic, policy: policyroute.Policy, tmp_path: Path, reply: Reply, trigger: str
) -> None:
    config = ServeConfig(
        policy=policy, upstream=fake.base_url, records=tmp_path / "r.jsonl", upstream_timeout=0.5
    )
    fake.script(HAIKU, [reply])
    with ServerThread(config) as proxy:
        r = httpx2.post(proxy.url + "/v1/messages", json=_body("hi"), headers=H, timeout=10)
        assert r.status_code == 200, r.text
        assert r.headers["x-policyroute-tier"] == "sonnet"
        assert r.headers["x-policyroute-attempts"] == "2"
        assert r.headers["x-policyroute-triggers"] == trigger
        assert r.json()["model"] == SONNET
        metrics = httpx2.get(proxy.url + "/metrics").text
    assert f'policyroute_escalations_total{{trigger="{trigger}"}} 1.0' in metrics
    (record,) = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert record["triggers"] == [trigger] and record["escalations"] == 1
    assert record["final_tier"] == "sonnet" and record["outcome"] == "ok"


def test_escalation_stops_at_the_top_and_returns_the_last_answer(
    proxy: ServerThread, fake: FakeAnthropic
) -> None:
    for model in (HAIKU, SONNET, OPUS):
        fake.script(model, [Reply(status=529, text="Overloaded")])
    r = httpx2.post(proxy.url + "/v1/messages", json=_body("hi"), headers=H)
    assert r.status_code == 529
    assert r.json()["error"]["type"] == "overloaded_error"
    assert r.headers["x-policyroute-attempts"] == "3"
    assert fake.models_called() == [HAIKU, SONNET, OPUS]
    assert _records(proxy)[-1]["outcome"] == "failed"


def test_escalate_never_rule(proxy: ServerThread, fake: FakeAnthropic) -> None:
    fake.script(HAIKU, [Reply(stop_reason="max_tokens")])
    r = httpx2.post(
        proxy.url + "/v1/messages", json=_body("hi", route={"task": "pinned"}), headers=H
    )
    assert r.status_code == 200 and r.json()["stop_reason"] == "max_tokens"
    assert fake.models_called() == [HAIKU]


@pytest.mark.parametrize("raw", [b"{not json", b'{"type": "message"}', b"[]"])
def test_malformed_upstream_answer_is_an_error(
    proxy: ServerThread, fake: FakeAnthropic, raw: bytes
) -> None:
    fake.script(HAIKU, [Reply(raw=raw)])
    r = httpx2.post(proxy.url + "/v1/messages", json=_body("hi"), headers=H)
    # `error` is a trigger of the policy: the next tier answers.
    assert r.status_code == 200 and r.json()["model"] == SONNET
    assert "malformed" in _records(proxy)[-1]["attempts"][0]["error"]
    for model in (HAIKU, SONNET, OPUS):
        fake.script(model, [Reply(raw=raw)])
    r = httpx2.post(proxy.url + "/v1/messages", json=_body("hi"), headers=H)
    assert r.status_code == 502 and r.json()["error"]["type"] == "api_error"
    assert "malformed" in r.json()["error"]["message"]


def test_stream_escalates_before_content(proxy: ServerThread, fake: FakeAnthropic) -> None:
    fake.script(HAIKU, [Reply(text="abc", stream_error_after=0)])  # error event, no content
    client = anthropic.Anthropic(base_url=proxy.url, api_key=KEY, max_retries=0)
    with client, client.messages.stream(**_body("hi")) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "hello" and final.model == SONNET
    assert fake.models_called() == [HAIKU, SONNET]


def test_stream_failure_after_content_is_reported_not_retried(
    proxy: ServerThread, fake: FakeAnthropic
) -> None:
    fake.script(HAIKU, [Reply(text="abcdef", chunks=3, stream_error_after=1)])
    client = anthropic.Anthropic(base_url=proxy.url, api_key=KEY, max_retries=0)
    with (
        client,
        pytest.raises(anthropic.APIStatusError) as info,
        client.messages.stream(**_body("hi")) as stream,
    ):
        for _ in stream:
            pass
    assert "Overloaded" in str(info.value)
    assert fake.models_called() == [HAIKU]
    record = _records(proxy)[-1]
    assert record["outcome"] == "interrupted"


def test_stream_max_tokens_after_content_is_recorded(
    proxy: ServerThread, fake: FakeAnthropic
) -> None:
    fake.script(HAIKU, [Reply(text="cut short", stop_reason="max_tokens")])
    client = anthropic.Anthropic(base_url=proxy.url, api_key=KEY, max_retries=0)
    with client, client.messages.stream(**_body("hi")) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "max_tokens" and final.model == HAIKU
    record = _records(proxy)[-1]
    assert record["attempts"][-1]["trigger"] == "max_tokens"
    assert record["outcome"] == "ok"


# -- stickiness -------------------------------------------------------------------------------


def _turns(first: str, *later: str) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = [{"role": "user", "content": first}]
    for text in later:
        msgs += [{"role": "assistant", "content": "ok"}, {"role": "user", "content": text}]
    return msgs


def _ask(proxy: ServerThread, messages: list[dict[str, Any]], **headers: str) -> httpx2.Response:
    body = {"model": "auto", "max_tokens": 50, "system": "You review code.", "messages": messages}
    r = httpx2.post(proxy.url + "/v1/messages", json=body, headers={**H, **headers})
    assert r.status_code == 200, r.text
    return r


def test_sticky_conversation_keeps_its_tier(proxy: ServerThread, fake: FakeAnthropic) -> None:
    first = "There is a deadlock in the worker pool; where?"
    r1 = _ask(proxy, _turns(first))
    assert r1.headers["x-policyroute-tier"] == "opus"
    # The follow-up alone would be `quick` (haiku): the conversation stays on opus.
    r2 = _ask(proxy, _turns(first, "thanks, and the other one?"))
    assert r2.headers["x-policyroute-tier"] == "opus"
    assert r2.headers["x-policyroute-rule"] == "quick"
    assert r2.headers["x-policyroute-sticky-from"] == "haiku"
    assert fake.requests[-1].model == OPUS
    # The rule's own max_tokens cap still applies on the raised tier.
    assert fake.requests[-1].body["max_tokens"] == 50
    # Another conversation is not affected; nor is the same words from another caller.
    assert _ask(proxy, _turns("hello")).headers["x-policyroute-tier"] == "haiku"
    other = _ask(proxy, _turns(first, "thanks"), **{"x-api-key": "sk-ant-someone-else-000"})
    assert other.headers["x-policyroute-tier"] == "haiku"
    assert "sticky" in httpx2.get(proxy.url + "/metrics").text


def test_sticky_remembers_the_escalated_tier(proxy: ServerThread, fake: FakeAnthropic) -> None:
    fake.script(HAIKU, [Reply(stop_reason="max_tokens")])
    assert _ask(proxy, _turns("short")).headers["x-policyroute-tier"] == "sonnet"
    r = _ask(proxy, _turns("short", "more"))
    assert r.headers["x-policyroute-tier"] == "sonnet"
    assert r.headers["x-policyroute-attempts"] == "1"


def test_sticky_explicit_header_and_cache_control(proxy: ServerThread, fake: FakeAnthropic) -> None:
    h = {"x-policyroute-conversation": "conv-42"}
    assert _ask(proxy, _turns("a deadlock?"), **h).headers["x-policyroute-tier"] == "opus"
    # Different opening words, same explicit conversation: still opus.
    assert _ask(proxy, _turns("unrelated"), **h).headers["x-policyroute-tier"] == "opus"
    # A cache_control marker moved onto the first message does not change the derived key.
    block = [{"type": "text", "text": "a deadlock?", "cache_control": {"type": "ephemeral"}}]
    msgs = [
        {"role": "user", "content": block},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "hm"},
    ]
    first_no_header = _ask(proxy, _turns("a deadlock?"))  # derived key: opus already
    assert first_no_header.headers["x-policyroute-tier"] == "opus"
    assert _ask(proxy, msgs).headers["x-policyroute-tier"] == "opus"


def test_no_sticky_without_the_statement(fake: FakeAnthropic, tmp_path: Path) -> None:
    text = (
        f'tier haiku = "{HAIKU}" {{ input 1 output 5 }}\ntier opus = "{OPUS}" {{ input 5 output 25 }}\n'
        'rule hard: prompt contains "deadlock" -> opus\ndefault -> haiku\n'
    )
    config = ServeConfig(policy=policyroute.loads(text), upstream=fake.base_url)
    with ServerThread(config) as proxy:
        assert _ask(proxy, _turns("a deadlock")).headers["x-policyroute-tier"] == "opus"
        r = _ask(proxy, _turns("a deadlock", "thanks"))
        assert r.headers["x-policyroute-tier"] == "haiku"
        assert "x-policyroute-sticky-from" not in r.headers


# -- disconnects and load ---------------------------------------------------------------------


def test_client_disconnect_closes_the_upstream_stream(
    proxy: ServerThread, fake: FakeAnthropic
) -> None:
    fake.script(HAIKU, [Reply(text="x" * 200, chunks=100, chunk_delay=0.05)])
    body = json.dumps(_body("hi", stream=True)).encode()
    with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        head = (
            f"POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: {KEY}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        ).encode()
        sock.sendall(head + body)
        got = b""
        while b"content_block_delta" not in got:
            got += sock.recv(4096)
    # The proxy notices at once and hangs up on the upstream, which stops writing.
    deadline = time.monotonic() + 5
    while fake.streams_aborted == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.streams_aborted == 1
    while not proxy.state.config.records or not _records(proxy):
        time.sleep(0.05)
        if time.monotonic() > deadline:
            break
    record = _records(proxy)[-1]
    assert record["outcome"] == "interrupted"
    assert "client went away" in record["error"]


def test_bounded_load(proxy: ServerThread, fake: FakeAnthropic) -> None:
    fake.record_requests = False
    n, concurrency = 400, 20

    async def go() -> list[int]:
        limits = httpx2.Limits(max_connections=concurrency)
        async with httpx2.AsyncClient(base_url=proxy.url, limits=limits, timeout=30) as client:
            sem = asyncio.Semaphore(concurrency)

            async def one(i: int) -> int:
                async with sem:
                    body = _body(f"question {i}", stream=i % 2 == 0)
                    r = await client.post("/v1/messages", json=body, headers=H)
                    await r.aread()
                    return r.status_code

            return await asyncio.gather(*(one(i) for i in range(n)))

    start = time.monotonic()
    statuses = asyncio.run(asyncio.wait_for(go(), 120))
    assert statuses == [200] * n
    assert time.monotonic() - start < 120
    fake.record_requests = True
    # A stream's record and metrics are written as it closes, just after its last byte; the
    # probes (/metrics itself) are not counted, so nothing is in flight once all have finished.
    deadline = time.monotonic() + 5
    while True:
        metrics = httpx2.get(proxy.url + "/metrics").text
        settled = "policyroute_in_flight_requests 0.0" in metrics and len(_records(proxy)) == n
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    line = f'policyroute_requests_total{{outcome="ok",rule="quick",tier="haiku"}} {float(n)}'
    assert line in metrics, [m for m in metrics.splitlines() if "requests_total{" in m]
    assert "policyroute_in_flight_requests 0.0" in metrics
    assert len(_records(proxy)) == n
