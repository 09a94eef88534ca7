"""The runtime fault matrix: every broken or hostile upstream answer, in every way of calling.

Each fault is served by the fake server on the decided tier (haiku); the policy escalates
on `error` and `timeout`, so the request must climb to sonnet and succeed there, with the
failed attempt recorded and the record readable. At the top of a ladder the same fault
must raise EscalationError carrying the attempts. Clients are the SDK's defaults.

One table of faults and expected attempts runs against every front end: the Router and
the AsyncRouter (create and stream), the SDK middleware (sync and async, create and
stream) and `policyroute serve` (JSON and stream).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
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


def _stream_only(reply: Reply) -> bool:
    """A fault only a stream can have: no fault of a JSON request (only the Router streams
    every call, so only the Router meets it in each of its modes)."""
    f = reply.fault
    return f is not None and (f.sse is not None or f.cut is not None or f.body == MESSAGE_JSON)


ROUTER_MODES = ("sync", "sync-stream", "async", "async-stream")
MW_MODES = ("mw", "mw-stream", "mw-async", "mw-async-stream")


def _applies(mode: str, reply: Reply) -> bool:
    return mode in ROUTER_MODES or mode.endswith("stream") or not _stream_only(reply)


CASES = [(m, *f) for f in FAULTS for m in (*ROUTER_MODES, *MW_MODES) if _applies(m, f[1])]
CASES_TOP = list(CASES)
CASES += [(m, *f) for f in SLOW_FAULTS for m in ("sync-stream", "async", "mw-stream", "mw-async")]
CASES_TOP += [
    (m, *f) for f in SLOW_FAULTS for m in ("sync", "async-stream", "mw", "mw-async-stream")
]


def _ids(cases: list[tuple[str, str, Reply, str]]) -> list[str]:
    return [f"{c[1]}-{c[0]}" for c in cases]


# The SDK serializes what it built from the broken answer and warns; the warning is its own.
pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")

# A policyroute setting, not an SDK one: a production service would set its own deadline.
# Loose enough for a loaded test machine (a fault answered at once must read as `error`, not
# `timeout`, even when the test shares two cores with other work): the fake takes milliseconds.
DEADLINES = Deadlines(attempt=2.5, request=30)


@dataclass
class MiddlewareResult:
    """What a middleware call left, in the RoutedResult's terms the table reads."""

    message: Any
    attempts: list[Any]

    @property
    def text(self) -> str:
        return "".join(getattr(b, "text", "") for b in self.message.content)


def _run_mw(
    mode: str, fake: FakeAnthropic, policy: Any, records: Path, route: dict[str, Any]
) -> MiddlewareResult:
    """One routed request through the SDK middleware, with the SDK's default retries."""
    import anthropic

    from policyroute.runtime import RoutingMiddleware

    seen: list[list[Any]] = []
    mw = RoutingMiddleware(
        policy,
        records=records,
        attempt_deadline=DEADLINES.attempt,
        request_deadline=DEADLINES.request,
        on_attempts=lambda _decision, attempts: seen.append(list(attempts)),
    )
    kwargs: dict[str, Any] = {
        "model": "auto",
        "max_tokens": 100,
        "messages": user("hi"),
        "extra_body": {"route": route},
    }
    if not mode.startswith("mw-async"):
        client = anthropic.Anthropic(base_url=fake.base_url, api_key=SECRET_KEY, middleware=[mw])
        if mode == "mw":
            message = client.messages.create(**kwargs)
        else:
            with client.messages.stream(**kwargs) as s:
                message = s.get_final_message()
        return MiddlewareResult(message, seen[-1])

    async def main() -> Any:
        client = anthropic.AsyncAnthropic(
            base_url=fake.base_url, api_key=SECRET_KEY, middleware=[mw]
        )
        if mode == "mw-async":
            return await client.messages.create(**kwargs)
        async with client.messages.stream(**kwargs) as s:
            return await s.get_final_message()

    message = asyncio.run(main())
    return MiddlewareResult(message, seen[-1])


def _run(mode: str, fake: FakeAnthropic, policy: Any, records: Path, route: dict[str, Any]) -> Any:
    """One routed request in `mode`; returns the RoutedResult (or raises)."""
    if mode.startswith("mw"):
        return _run_mw(mode, fake, policy, records, route)
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


@pytest.mark.parametrize("mode", ["mw-stream", "mw-async-stream"])
def test_a_middleware_stream_cut_after_content_is_an_error_event(
    fake: FakeAnthropic, policy: policyroute.Policy, tmp_path: Path, mode: str
) -> None:
    import anthropic

    fake.script(HAIKU, [Reply(text="half an answer", chunks=3, fault=Fault(cut="content"))])
    with pytest.raises(anthropic.APIStatusError) as info:  # the SDK's error for the event
        _run(mode, fake, policy, tmp_path / "r.jsonl", {"task": "classify"})
    assert "failed after content was sent" in str(info.value)
    assert fake.models_called() == [HAIKU]  # never retried once content was sent
    [record] = _records(tmp_path / "r.jsonl")
    assert record.outcome == "interrupted" and "message_stop" in (record.error or "")
    assert [(a.tier, a.trigger) for a in record.attempts] == [("haiku", "error")]


@pytest.mark.parametrize("mode", ["mw-stream", "mw-async-stream"])
def test_a_middleware_stream_is_held_until_content(
    fake: FakeAnthropic, policy: policyroute.Policy, tmp_path: Path, mode: str
) -> None:
    """An `error` event before content escalates unseen; the caller reads sonnet's stream."""
    overloaded = 'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", '
    overloaded += '"message": "busy"}}\n\n'
    fake.script(HAIKU, [Reply(fault=Fault(sse=overloaded))] * 3)
    fake.script(SONNET, [Reply(text="from sonnet", chunks=3)])
    result = _run(mode, fake, policy, tmp_path / "r.jsonl", {"task": "classify"})
    assert result.text == "from sonnet"
    assert [(a.tier, a.trigger) for a in result.attempts] == [("haiku", "error"), ("sonnet", None)]
    assert "overloaded_error" in (result.attempts[0].error or "")
    [record] = _records(tmp_path / "r.jsonl")
    assert record.outcome == "ok" and record.output_tokens > 0


THINKING_MODES = ["sync", "async", "mw", "mw-stream", "mw-async", "mw-async-stream"]


@pytest.mark.parametrize("mode", THINKING_MODES)
def test_thinking_under_a_cap_is_a_valid_request(
    fake: FakeAnthropic, policy: policyroute.Policy, tmp_path: Path, mode: str
) -> None:
    """The `quick` rule caps haiku at 1,024 tokens: no budget fits, so thinking is off for
    the rung (the API refuses a budget not below max_tokens); serve's case is below."""
    thinking = {"type": "enabled", "budget_tokens": 8000}
    if mode.startswith("mw"):
        import anthropic

        from policyroute.runtime import RoutingMiddleware

        mw = RoutingMiddleware(policy, records=tmp_path / "r.jsonl")
        client = anthropic.Anthropic(base_url=fake.base_url, api_key=SECRET_KEY, middleware=[mw])
        kwargs: dict[str, Any] = {
            "model": "auto",
            "max_tokens": 16000,  # the SDK refuses more without streaming
            "messages": user("hi"),
            "thinking": thinking,
            "extra_body": {"route": {"task": "classify"}},
        }
        if mode == "mw":
            client.messages.create(**kwargs)
        elif mode == "mw-stream":
            with client.messages.stream(**kwargs) as s:
                s.get_final_message()
        else:

            async def main() -> None:
                aclient = anthropic.AsyncAnthropic(
                    base_url=fake.base_url, api_key=SECRET_KEY, middleware=[mw]
                )
                if mode == "mw-async":
                    await aclient.messages.create(**kwargs)
                else:
                    async with aclient.messages.stream(**kwargs) as s:
                        await s.get_final_message()

            asyncio.run(main())
    else:
        router_kwargs: dict[str, Any] = {
            "messages": user("hi"),
            "route": {"task": "classify"},
            "max_tokens": 16000,  # the SDK refuses more without streaming
            "thinking": thinking,
        }
        if mode == "sync":
            Router(policy, default_client(fake.base_url)).create(**router_kwargs)
        else:
            client_a = default_async_client(fake.base_url)
            asyncio.run(AsyncRouter(policy, client_a).create(**router_kwargs))
    [seen] = fake.requests
    assert seen.model == HAIKU and seen.body["max_tokens"] == 1024  # the rule's cap
    assert seen.body["thinking"] == {"type": "disabled"}
    [record] = _records(tmp_path / "r.jsonl") if mode.startswith("mw") else [None]
    assert record is None or "thinking off" in (record.attempts[0].note or "")


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


# -- the middleware's own ------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_middleware_request_deadline_bounds_a_trickling_body(
    fake: FakeAnthropic, policy: policyroute.Policy, stream: bool
) -> None:
    """A body sent one byte at a time never trips a socket read timeout; the request's
    deadline still ends it (the watchdog), whatever the per-try bound."""
    import anthropic

    from policyroute.runtime import RoutingMiddleware

    fake.default_reply = Reply(fault=Fault(trickle=0.02))
    mw = RoutingMiddleware(policy, attempt_deadline=5, request_deadline=1.0)
    client = anthropic.Anthropic(base_url=fake.base_url, api_key=SECRET_KEY, middleware=[mw])
    kwargs: dict[str, Any] = {
        "model": "auto",
        "max_tokens": 100,
        "messages": user("hi"),
        "extra_body": {"route": {"task": "classify"}},
    }
    started = time.perf_counter()
    with pytest.raises(EscalationError) as info:
        if stream:
            with client.messages.stream(**kwargs) as s:
                s.get_final_message()
        else:
            client.messages.create(**kwargs)
    assert time.perf_counter() - started < 3
    assert "deadline" in str(info.value)
    assert info.value.attempts[-1].trigger == "timeout"


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

SERVE_CASES = [
    (m, *f)
    for f in [*FAULTS, *SLOW_FAULTS]
    for m in ("serve", "serve-stream")
    if _applies(m, f[1])
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
