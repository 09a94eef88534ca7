"""The runtime fault matrix: every broken or hostile upstream answer, in every way of calling.

Each fault is served by the fake server on the decided tier (haiku); the policy escalates
on `error` and `timeout`, so the request must climb to sonnet and succeed there, with the
failed attempt recorded and the record readable. At the top of a ladder the same fault
must raise EscalationError carrying the attempts. Clients are the SDK's defaults.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fake_anthropic import FakeAnthropic, Fault, Reply
from runtime_support import (
    HAIKU,
    SECRET_KEY,
    SONNET,
    default_async_client,
    default_client,
    user,
)

import policyroute
from policyroute.runtime import (
    AsyncRouter,
    Deadlines,
    EscalationError,
    Router,
    StreamInterruptedError,
)
from policyroute.runtime.records import DecisionRecord

MESSAGE_JSON = json.dumps(
    {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": HAIKU,
        "content": [{"type": "text", "text": "not a stream"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
).encode()

# (name, the failing reply, the trigger it must fire)
FAULTS: list[tuple[str, Reply, str]] = [
    ("invalid json", Reply(fault=Fault(body=b'{"id": "msg_')), "error"),
    ("empty body", Reply(fault=Fault(body=b"")), "error"),
    (
        "html",
        Reply(fault=Fault(body=b"<html><body>502</body></html>", content_type="text/html")),
        "error",
    ),
    ("json array", Reply(fault=Fault(body=b'[{"type": "message"}]')), "error"),
    ("json to a stream request", Reply(fault=Fault(body=MESSAGE_JSON)), "error"),
    ("missing usage", Reply(fault=Fault(patch={"usage": None})), "error"),
    ("string token count", Reply(fault=Fault(usage_patch={"input_tokens": "twelve"})), "error"),
    ("malformed sse", Reply(fault=Fault(sse="event: message_start\ndata: {not json\n\n")), "error"),
    ("sse of garbage", Reply(fault=Fault(sse="\x00\xff" * 50)), "error"),
    ("cut after message_start", Reply(fault=Fault(cut="start")), "error"),
    ("huge retry-after", Reply(status=429, retry_after=999999999), "error"),
    ("echoed key", Reply(status=500, text="bad", fault=Fault(echo_credentials=True)), "error"),
]
# Faults that end on a deadline: slow, so each runs in two of the four modes per test.
SLOW_FAULTS: list[tuple[str, Reply, str]] = [
    ("trickling bytes", Reply(fault=Fault(trickle=0.01)), "timeout"),
    ("slow answer", Reply(delay=3.5), "timeout"),
]
CASES = [(m, *f) for f in FAULTS for m in ("sync", "sync-stream", "async", "async-stream")]
CASES_TOP = list(CASES)
CASES += [(m, *f) for f in SLOW_FAULTS for m in ("sync-stream", "async")]
CASES_TOP += [(m, *f) for f in SLOW_FAULTS for m in ("sync", "async-stream")]


def _ids(cases: list[tuple[str, str, Reply, str]]) -> list[str]:
    return [f"{c[1]}-{c[0]}" for c in cases]


# The SDK serializes what it built from the broken answer and warns; the warning is its own.
pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")

# A policyroute setting, not an SDK one: a production service would set its own deadline.
# Loose enough for a loaded test machine (a fault answered at once must read as `error`, not
# `timeout`, even when the test shares two cores with other work): the fake takes milliseconds.
DEADLINES = Deadlines(attempt=2.5, request=30)


def _run(mode: str, fake: FakeAnthropic, policy: Any, records: Path, route: dict[str, Any]) -> Any:
    """One routed request in `mode`; returns the RoutedResult (or raises)."""
    kwargs: dict[str, Any] = {"messages": user("hi"), "route": route}
    if mode.startswith("sync"):
        router = Router(policy, default_client(fake.base_url), records=records, deadlines=DEADLINES)
        if mode == "sync":
            return router.create(**kwargs)
        with router.stream(**kwargs) as s:
            return s.get_result()

    async def main() -> Any:
        client = default_async_client(fake.base_url)
        router = AsyncRouter(policy, client, records=records, deadlines=DEADLINES)
        if mode == "async":
            return await router.create(**kwargs)
        s = await router.stream(**kwargs)
        async with s:
            return await s.get_result()

    return asyncio.run(main())


def _records(path: Path) -> list[DecisionRecord]:
    return [DecisionRecord.model_validate_json(line) for line in path.read_text().splitlines()]


def _no_secret(*texts: str | None) -> None:
    for text in texts:
        assert text is None or SECRET_KEY not in text
        assert text is None or "S3CR3T" not in text


@pytest.mark.parametrize(("mode", "name", "reply", "trigger"), CASES, ids=_ids(CASES))
def test_a_fault_escalates_and_is_recorded(
    fake: FakeAnthropic,
    policy: policyroute.Policy,
    tmp_path: Path,
    mode: str,
    name: str,
    reply: Reply,
    trigger: str,
) -> None:
    fake.script(HAIKU, [reply] * 3)  # a retryable fault is tried again (max_retries=2)
    fake.script(SONNET, [Reply(text="from sonnet")])
    started = time.perf_counter()
    result = _run(mode, fake, policy, tmp_path / "r.jsonl", {"task": "classify"})
    assert time.perf_counter() - started < 15  # no wait on a huge retry-after, no hang
    assert result.text == "from sonnet"
    first, second = result.attempts
    assert (first.tier, first.trigger, second.tier, second.trigger) == (
        "haiku",
        trigger,
        "sonnet",
        None,
    )
    assert first.error
    _no_secret(first.error)
    [record] = _records(tmp_path / "r.jsonl")
    assert record.outcome == "ok" and record.final_tier == "sonnet"
    assert record.triggers == [trigger]


@pytest.mark.parametrize(("mode", "name", "reply", "trigger"), CASES_TOP, ids=_ids(CASES_TOP))
def test_a_fault_at_the_top_raises_with_attempts(
    fake: FakeAnthropic,
    policy: policyroute.Policy,
    tmp_path: Path,
    mode: str,
    name: str,
    reply: Reply,
    trigger: str,
) -> None:
    fake.script(HAIKU, [reply] * 3)
    with pytest.raises(EscalationError) as info:
        _run(mode, fake, policy, tmp_path / "r.jsonl", {"task": "never"})  # escalate never
    e = info.value
    assert not isinstance(e, StreamInterruptedError)
    [attempt] = e.attempts
    assert attempt.tier == "haiku" and attempt.trigger == trigger
    assert e.last_error is not None
    _no_secret(str(e), attempt.error)
    [record] = _records(tmp_path / "r.jsonl")
    assert record.outcome == "failed" and record.final_tier is None
    assert record.error
    _no_secret(record.error, (tmp_path / "r.jsonl").read_text())


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_stream_cut_after_content_escalates_when_nothing_was_sent(
    fake: FakeAnthropic, policy: policyroute.Policy, tmp_path: Path, mode: str
) -> None:
    fake.script(HAIKU, [Reply(text="half an answer", chunks=3, fault=Fault(cut="content"))])
    fake.script(SONNET, [Reply(text="whole")])
    result = _run(mode, fake, policy, tmp_path / "r.jsonl", {"task": "classify"})
    assert result.text == "whole"
    assert [a.trigger for a in result.attempts] == ["error", None]
    assert "message_stop" in (result.attempts[0].error or "")


@pytest.mark.parametrize("mode", ["sync-stream", "async-stream"])
def test_a_stream_cut_after_content_is_interrupted(
    fake: FakeAnthropic, policy: policyroute.Policy, tmp_path: Path, mode: str
) -> None:
    fake.script(HAIKU, [Reply(text="half an answer", chunks=3, fault=Fault(cut="content"))])
    with pytest.raises(StreamInterruptedError) as info:
        _run(mode, fake, policy, tmp_path / "r.jsonl", {"task": "classify"})
    assert [a.tier for a in info.value.attempts] == ["haiku"]
    assert fake.models_called() == [HAIKU]  # never retried once content was sent
    [record] = _records(tmp_path / "r.jsonl")
    assert record.outcome == "interrupted" and "message_stop" in (record.error or "")


def test_the_request_deadline_bounds_the_whole_ladder(
    fake: FakeAnthropic, policy: policyroute.Policy
) -> None:
    fake.default_reply = Reply(fault=Fault(trickle=0.02))
    router = Router(
        policy, default_client(fake.base_url), deadlines=Deadlines(attempt=5, request=1.0)
    )
    started = time.perf_counter()
    with pytest.raises(EscalationError) as info:
        router.create(messages=user("hi"), route={"task": "classify"})
    assert time.perf_counter() - started < 3
    assert "deadline" in str(info.value)
    assert info.value.attempts[-1].trigger == "timeout"


def test_a_honoured_retry_after_is_retried_on_the_same_tier(
    fake: FakeAnthropic, policy: policyroute.Policy
) -> None:
    fake.script(HAIKU, [Reply(status=429, retry_after=0.05), Reply(text="second try")])
    result = Router(policy, default_client(fake.base_url)).create(
        messages=user("hi"), route={"task": "classify"}
    )
    assert result.text == "second try"
    [attempt] = result.attempts
    assert attempt.retries == 1 and attempt.trigger is None
    assert fake.models_called() == [HAIKU, HAIKU]


def test_a_raising_confidence_function_keeps_the_attempts(
    fake: FakeAnthropic, policy: policyroute.Policy
) -> None:
    def broken(message: Any) -> float:
        raise ZeroDivisionError("oops")

    with pytest.raises(EscalationError) as info:
        Router(policy, default_client(fake.base_url)).create(messages=user("hi"), confidence=broken)
    assert isinstance(info.value.last_error, ZeroDivisionError)
    assert len(info.value.attempts) == 1


def _fenced(n: int) -> str:
    return "```json\n" + "\n" * n + '{"answer": 1' + "\n" * n


@pytest.mark.parametrize(
    "answer",
    [_fenced(20_000), "```" + "\n" * 20_000, "{" * 50_000, "[" * 200_000, '"' + "x" * 10**6],
)
def test_json_extraction_is_fast_on_hostile_answers(answer: str) -> None:
    from policyroute.runtime.answers import extract_json

    started = time.perf_counter()
    with pytest.raises(ValueError):
        extract_json(answer)
    assert time.perf_counter() - started < 1.0


def test_key_redaction_covers_the_shapes_an_upstream_echoes() -> None:
    from policyroute.runtime.redact import redact

    text = redact(
        f'{{"x-api-key": "{SECRET_KEY}", "Authorization": "Bearer tok_abcdef123", '
        f"api_key={SECRET_KEY[:20]}}} and a raw sk-ant-admin01-zzzzzz"
    )
    assert "S3CR3T" not in text and "tok_abcdef123" not in text and "zzzzzz" not in text
    assert redact("nothing secret here") == "nothing secret here"


Check = Callable[[], None]


def test_a_callers_own_timeout_is_kept_and_bounded(
    fake: FakeAnthropic, policy: policyroute.Policy
) -> None:
    fake.script(HAIKU, [Reply(delay=1.0)] * 3)
    result = Router(policy, default_client(fake.base_url)).create(
        messages=user("hi"), route={"task": "classify"}, timeout=0.3
    )
    assert [a.trigger for a in result.attempts] == ["timeout", None]


# -- the middleware under the same faults ------------------------------------------------


def _mw_client(fake: FakeAnthropic, policy: Any, records: Path) -> Any:
    import anthropic

    from policyroute.runtime import RoutingMiddleware

    return anthropic.Anthropic(
        base_url=fake.base_url,
        api_key=SECRET_KEY,
        middleware=[RoutingMiddleware(policy, records=records)],
    )


@pytest.mark.parametrize(
    ("name", "reply"),
    [
        ("invalid json", Reply(fault=Fault(body=b'{"id": "msg_'))),
        ("html", Reply(fault=Fault(body=b"<html></html>", content_type="text/html"))),
        ("json array", Reply(fault=Fault(body=b"[1, 2]"))),
        ("missing usage", Reply(fault=Fault(patch={"usage": None}))),
        ("huge retry-after", Reply(status=429, retry_after=999999999)),
        ("echoed key", Reply(status=500, text="bad", fault=Fault(echo_credentials=True))),
    ],
)
def test_middleware_faults_escalate_and_fail_with_attempts(
    fake: FakeAnthropic, policy: policyroute.Policy, tmp_path: Path, name: str, reply: Reply
) -> None:
    client = _mw_client(fake, policy, tmp_path / "r.jsonl")
    route = {"route": {"task": "classify"}}
    fake.script(HAIKU, [reply] * 3)
    fake.script(SONNET, [Reply(text="from sonnet")])
    started = time.perf_counter()
    message = client.messages.create(
        model="auto", max_tokens=100, messages=user("hi"), extra_body=route
    )
    assert time.perf_counter() - started < 10
    assert message.model == SONNET
    fake.reset()
    fake.default_reply = reply
    with pytest.raises(EscalationError) as info:
        client.messages.create(
            model="auto",
            max_tokens=100,
            messages=user("hi"),
            extra_body={"route": {"task": "never"}},
        )
    assert info.value.attempts and info.value.attempts[-1].trigger == "error"
    _no_secret(str(info.value), *(a.error for a in info.value.attempts))
    records = _records(tmp_path / "r.jsonl")
    assert [r.outcome for r in records] == ["ok", "failed"]
    _no_secret((tmp_path / "r.jsonl").read_text())


def test_middleware_request_deadline_stops_retries_and_climbs(
    fake: FakeAnthropic, policy: policyroute.Policy, tmp_path: Path
) -> None:
    import anthropic

    from policyroute.runtime import RoutingMiddleware

    fake.default_reply = Reply(delay=1.5)  # every try is slower than what is left
    client = anthropic.Anthropic(
        base_url=fake.base_url,
        api_key=SECRET_KEY,
        middleware=[RoutingMiddleware(policy, request_deadline=0.8)],
    )
    started = time.perf_counter()
    with pytest.raises(EscalationError) as info:
        client.messages.create(
            model="auto",
            max_tokens=100,
            messages=user("hi"),
            extra_body={"route": {"task": "classify"}},
        )
    assert time.perf_counter() - started < 3  # without it: 3 tiers x 3 tries x 1.5 s + backoff
    assert "deadline" in (info.value.attempts[-1].error or "")


@pytest.mark.parametrize(
    "reply",
    [
        Reply(fault=Fault(body=b"<html></html>", content_type="text/html")),
        Reply(fault=Fault(patch={"usage": None})),
        Reply(status=429, retry_after=999999999),
        Reply(text="```json\n" + "\n" * 5000 + '{"label": "hard"'),
    ],
    ids=["html", "missing usage", "huge retry-after", "unclosed fence"],
)
def test_a_broken_classifier_reply_is_a_failed_classification(
    fake: FakeAnthropic, policy: policyroute.Policy, reply: Reply
) -> None:
    fake.script(HAIKU, [reply])  # the classifier's tier; the `cheap` rule then routes to haiku
    started = time.perf_counter()
    result = Router(policy, default_client(fake.base_url)).create(
        messages=user("hi"), route={"task": "judge"}
    )
    assert time.perf_counter() - started < 10
    classify, generate = result.attempts
    assert classify.kind == "classify" and classify.trigger in ("error", "invalid_json")
    assert result.decision.rule == "cheap" and generate.tier == "haiku"


# -- the same faults through `policyroute serve` ---------------------------------------------
#
# One table: every fault above (and the slow ones), sent through the proxy by the SDK, must
# leave the same attempts as the Router's: (haiku, its trigger), then (sonnet, None).

def _stream_only(reply: Reply) -> bool:
    f = reply.fault
    return f is not None and (f.sse is not None or f.cut is not None or f.body == MESSAGE_JSON)


SERVE_CASES = [
    (m, *f)
    for f in [*FAULTS, *SLOW_FAULTS]
    for m in ("serve", "serve-stream")
    # Stream faults are no faults of a JSON request: only the Router streams every call.
    if m == "serve-stream" or not _stream_only(f[1])
]


@pytest.fixture(scope="module")
def proxy(fake_server: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from server.serve_support import ServerThread

    from policyroute.server.app import ServeConfig

    records = tmp_path_factory.mktemp("serve") / "r.jsonl"
    config = ServeConfig(
        policy=policyroute.loads(POLICY),
        upstream=fake_server.base_url,
        records=records,
        upstream_timeout=DEADLINES.attempt or 2.5,
    )
    with ServerThread(config) as server:
        yield server


POLICY = (Path(__file__).parent / "runtime_support.py").read_text().split('POLICY_TEXT = f"""')[1]
POLICY = POLICY.split('"""')[0].replace("{HAIKU}", HAIKU).replace("{SONNET}", SONNET)
POLICY = POLICY.replace("{OPUS}", "claude-opus-4-7").replace("{{", "{").replace("}}", "}")


@pytest.mark.parametrize(("mode", "name", "reply", "trigger"), SERVE_CASES, ids=_ids(SERVE_CASES))
def test_serve_climbs_the_same_ladder(
    fake: FakeAnthropic, proxy: Any, mode: str, name: str, reply: Reply, trigger: str
) -> None:
    import anthropic
    from server.serve_support import read_records

    fake.script(HAIKU, [reply] * 3)
    fake.script(SONNET, [Reply(text="from sonnet")])
    client = anthropic.Anthropic(base_url=proxy.url, api_key=SECRET_KEY, max_retries=0)
    kwargs: dict[str, Any] = {
        "model": "auto",
        "max_tokens": 100,
        "messages": user("hi"),
        "extra_body": {"route": {"task": "classify"}},
    }
    started = time.perf_counter()
    if mode == "serve":
        message = client.messages.create(**kwargs)
    else:
        with client.messages.stream(**kwargs) as s:
            message = s.get_final_message()
    assert time.perf_counter() - started < 15
    assert message.model == SONNET and message.content[0].text == "from sonnet"  # type: ignore[union-attr]
    record = read_records(proxy)[-1]
    assert [(a["tier"], a.get("trigger")) for a in record["attempts"]] == [
        ("haiku", trigger),
        ("sonnet", None),
    ]
    assert record["outcome"] == "ok" and record["triggers"] == [trigger]
    _no_secret(Path(proxy.state.config.records).read_text())
    client.close()


def test_serve_a_caller_error_is_returned_as_is_and_fires_no_trigger(
    fake: FakeAnthropic, proxy: Any
) -> None:
    import httpx2
    from server.serve_support import read_records

    fake.script(HAIKU, [Reply(status=400, text="messages: bad shape")])
    body = {
        "model": "auto",
        "max_tokens": 10,
        "messages": user("hi"),
        "route": {"task": "classify"},
    }
    r = httpx2.post(
        proxy.url + "/v1/messages?beta=true", json=body, headers={"x-api-key": SECRET_KEY}
    )
    assert r.status_code == 400 and r.json()["error"]["message"] == "messages: bad shape"
    assert "x-policyroute-triggers" not in r.headers
    assert r.headers["x-policyroute-tier"] == "haiku" and r.headers["x-policyroute-rule"] == "quick"
    assert fake.models_called() == [HAIKU]  # never climbed
    record = read_records(proxy)[-1]
    assert record["outcome"] == "failed" and record["triggers"] == []


def test_serve_thinking_under_a_cap_is_a_valid_request(fake: FakeAnthropic, proxy: Any) -> None:
    import httpx2

    body = {
        "model": "auto",
        "max_tokens": 32000,
        "messages": user("hi"),
        "thinking": {"type": "enabled", "budget_tokens": 8000},
        "route": {"task": "classify"},
    }
    r = httpx2.post(proxy.url + "/v1/messages", json=body, headers={"x-api-key": SECRET_KEY})
    assert r.status_code == 200, r.text
    [seen] = fake.requests
    assert seen.body["max_tokens"] == 1024  # the rule's cap
    assert seen.body["thinking"] == {"type": "disabled"}  # no budget fits under 1,024
