"""Streaming: escalate before the first content event, report (never retry) after it."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import pytest
from fake_anthropic import FakeAnthropic, Reply
from runtime_support import HAIKU, SONNET, user

import policyroute
from policyroute.runtime import AsyncRouter, EscalationError, Router, StreamInterruptedError


def test_stream_yields_events_and_a_result(
    fake: FakeAnthropic, client: anthropic.Anthropic, policy: policyroute.Policy
) -> None:
    fake.script(SONNET, [Reply(text="hello there world", chunks=3, output_tokens=7)])
    with Router(policy, client).stream(messages=user("hi")) as s:
        kinds = [e.type for e in s]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert kinds.count("content_block_delta") == 3
    assert s.result is not None
    assert s.result.text == "hello there world"
    assert s.result.attempts[0].output_tokens == 7
    assert s.result.cost_usd == pytest.approx(s.result.attempts[0].cost_usd)
    assert fake.requests[0].body["stream"] is True


def test_text_stream(
    fake: FakeAnthropic, client: anthropic.Anthropic, policy: policyroute.Policy
) -> None:
    fake.script(SONNET, [Reply(text="abcdef", chunks=3)])
    s = Router(policy, client).stream(messages=user("hi"))
    assert "".join(s.text_stream) == "abcdef"


@pytest.mark.parametrize(
    ("failure", "trigger"),
    [
        (Reply(status=529), "error"),
        (Reply(status=500), "error"),
        (Reply(delay=1.0), "timeout"),
        (Reply(text="", stop_reason="refusal"), "refusal"),
    ],
)
def test_failure_before_content_climbs(
    fake: FakeAnthropic,
    client: anthropic.Anthropic,
    policy: policyroute.Policy,
    failure: Reply,
    trigger: str,
) -> None:
    fake.script(HAIKU, [failure])
    fake.script(SONNET, [Reply(text="from sonnet")])
    s = Router(policy, client).stream(messages=user("x"), route={"task": "classify"})
    text = "".join(s.text_stream)
    assert text == "from sonnet"
    assert s.result is not None
    assert [(a.tier, a.trigger) for a in s.result.attempts] == [
        ("haiku", trigger),
        ("sonnet", None),
    ]


def test_failure_after_content_is_reported_not_retried(
    fake: FakeAnthropic, client: anthropic.Anthropic, policy: policyroute.Policy
) -> None:
    fake.script(HAIKU, [Reply(text="partial answer", chunks=2, stream_error_after=1)])
    seen: list[str] = []
    with pytest.raises(StreamInterruptedError) as info:
        for text in (
            Router(policy, client)
            .stream(messages=user("x"), route={"task": "classify"})
            .text_stream
        ):
            seen.append(text)
    assert seen == ["partial"]
    assert fake.models_called() == [HAIKU]  # never silently retried
    assert [a.trigger for a in info.value.attempts] == ["error"]


def test_trigger_on_a_sent_answer_is_reported(
    fake: FakeAnthropic, client: anthropic.Anthropic, policy: policyroute.Policy
) -> None:
    fake.script(HAIKU, [Reply(text="cut off", stop_reason="max_tokens")])
    s = Router(policy, client).stream(messages=user("x"), route={"task": "classify"})
    result = s.get_result()
    assert result.final_trigger == "max_tokens"
    assert fake.models_called() == [HAIKU]


def test_every_tier_failing_raises(
    fake: FakeAnthropic, client: anthropic.Anthropic, policy: policyroute.Policy
) -> None:
    fake.default_reply = Reply(status=500)
    with pytest.raises(EscalationError) as info:
        Router(policy, client).stream(messages=user("x"), route={"task": "once"}).get_result()
    assert [a.tier for a in info.value.attempts] == ["haiku", "sonnet"]
    assert not isinstance(info.value, StreamInterruptedError)


def test_async_stream(
    fake: FakeAnthropic, async_client: anthropic.AsyncAnthropic, policy: policyroute.Policy
) -> None:
    fake.script(HAIKU, [Reply(status=529)])
    fake.script(SONNET, [Reply(text="async answer", chunks=2)])

    async def main() -> Any:
        s = await AsyncRouter(policy, async_client).stream(
            messages=user("x"), route={"task": "classify"}
        )
        texts = [e.text async for e in s if e.type == "text"]
        return texts, s.result

    texts, result = asyncio.run(main())
    assert "".join(texts) == "async answer"
    assert [a.trigger for a in result.attempts] == ["error", None]
