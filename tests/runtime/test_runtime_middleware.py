"""RoutingMiddleware inside the SDK's own middleware chain: `Anthropic(middleware=[...])`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import anthropic
import pytest
from fake_anthropic import FakeAnthropic, Reply
from runtime_support import HAIKU, OPUS, SONNET, TIMEOUT, user

import policyroute
from policyroute.runtime import EscalationError, RoutingMiddleware
from policyroute.runtime.records import DecisionRecord


def routed_client(
    fake: FakeAnthropic, mw: RoutingMiddleware, retries: int = 0
) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=fake.base_url,
        api_key="test",
        max_retries=retries,
        timeout=TIMEOUT,
        middleware=[mw],
    )


def test_auto_is_routed_and_escalated(
    fake: FakeAnthropic, policy: policyroute.Policy, tmp_path: Path
) -> None:
    mw = RoutingMiddleware(policy, max_retries=0, records=tmp_path / "r.jsonl")
    client = routed_client(fake, mw)
    fake.script(HAIKU, [Reply(status=529)])
    fake.script(SONNET, [Reply(text="routed")])
    message = client.messages.create(
        model="auto", max_tokens=100, messages=user("x"), extra_body={"route": {"task": "classify"}}
    )
    assert message.content[0].text == "routed"  # type: ignore[union-attr]
    assert fake.models_called() == [HAIKU, SONNET]
    assert all("route" not in s.body for s in fake.requests)
    record = DecisionRecord.model_validate_json((tmp_path / "r.jsonl").read_text())
    assert record.rule == "quick" and record.final_tier == "sonnet" and record.triggers == ["error"]


def test_policy_name_is_routed_other_models_pass_through(
    fake: FakeAnthropic, policy: policyroute.Policy
) -> None:
    client = routed_client(fake, RoutingMiddleware(policy, max_retries=0))
    client.messages.create(model="runtime-test", max_tokens=10, messages=user("x"))
    assert fake.models_called() == [SONNET]
    fake.reset()
    fake.script(OPUS, [Reply(status=500)])
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(model=OPUS, max_tokens=10, messages=user("x"))
    assert fake.models_called() == [OPUS]  # untouched: no routing, no escalation


def test_answer_triggers_climb(fake: FakeAnthropic, policy: policyroute.Policy) -> None:
    client = routed_client(fake, RoutingMiddleware(policy, max_retries=0))
    fake.script(HAIKU, [Reply(stop_reason="max_tokens")])
    fake.script(SONNET, [Reply(text="", stop_reason="refusal")])
    fake.script(OPUS, [Reply(text="top")])
    message = client.messages.create(
        model="auto", max_tokens=10, messages=user("x"), extra_body={"route": {"task": "classify"}}
    )
    assert message.model == OPUS
    assert fake.models_called() == [HAIKU, SONNET, OPUS]


def test_sdk_retries_run_before_escalation(fake: FakeAnthropic, policy: policyroute.Policy) -> None:
    attempts: list[list[tuple[str | None, int]]] = []
    mw = RoutingMiddleware(
        policy,
        max_retries=1,
        on_attempts=lambda d, a: attempts.append([(x.trigger, x.retries) for x in a]),
    )
    client = routed_client(fake, mw, retries=1)
    fake.script(HAIKU, [Reply(status=500, retry_after=0.01), Reply(status=500, retry_after=0.01)])
    client.messages.create(
        model="auto", max_tokens=10, messages=user("x"), extra_body={"route": {"task": "classify"}}
    )
    assert fake.models_called() == [HAIKU, HAIKU, SONNET]
    # One attempt per rung, as the Router records it: the SDK's retry counts in `retries`.
    assert attempts == [[("error", 1), (None, 0)]]


def test_every_tier_failing_raises_escalation_error_with_the_sdk_error(
    fake: FakeAnthropic, policy: policyroute.Policy
) -> None:
    client = routed_client(fake, RoutingMiddleware(policy, max_retries=0))
    fake.default_reply = Reply(status=529)
    with pytest.raises(EscalationError) as info:
        client.messages.create(
            model="auto", max_tokens=10, messages=user("x"), extra_body={"route": {"task": "once"}}
        )
    assert isinstance(info.value.last_error, anthropic.APIStatusError)
    assert info.value.last_error.status_code == 529
    assert [a.tier for a in info.value.attempts] == ["haiku", "sonnet"]
    assert fake.models_called() == [HAIKU, SONNET]


def test_streaming_is_routed(fake: FakeAnthropic, policy: policyroute.Policy) -> None:
    client = routed_client(fake, RoutingMiddleware(policy, max_retries=0))
    fake.script(HAIKU, [Reply(status=529)])
    fake.script(SONNET, [Reply(text="streamed", chunks=2)])
    with client.messages.stream(
        model="auto", max_tokens=10, messages=user("x"), extra_body={"route": {"task": "classify"}}
    ) as s:
        text = "".join(s.text_stream)
    assert text == "streamed"
    assert fake.models_called() == [HAIKU, SONNET]


def test_classifier_goes_through_the_chain(fake: FakeAnthropic, policy: policyroute.Policy) -> None:
    client = routed_client(fake, RoutingMiddleware(policy, max_retries=0))
    fake.script(HAIKU, [Reply.json({"label": "hard", "confidence": 1})])
    message = client.messages.create(
        model="auto", max_tokens=10, messages=user("x"), extra_body={"route": {"task": "judge"}}
    )
    assert message.model == OPUS
    assert fake.models_called() == [HAIKU, OPUS]
    assert "stream" not in fake.requests[0].body


def test_async_middleware(fake: FakeAnthropic, policy: policyroute.Policy) -> None:
    client = anthropic.AsyncAnthropic(
        base_url=fake.base_url,
        api_key="test",
        max_retries=0,
        timeout=TIMEOUT,
        middleware=[RoutingMiddleware(policy, max_retries=0)],
    )
    fake.script(HAIKU, [Reply.json({"label": "hard", "confidence": 1})])
    fake.script(OPUS, [Reply(delay=1.0)])

    async def main() -> anthropic.types.Message:
        return await client.messages.create(
            model="auto", max_tokens=10, messages=user("x"), extra_body={"route": {"task": "judge"}}
        )

    # judged -> opus, which times out at the top: the SDK's own timeout error is the last.
    with pytest.raises(EscalationError) as info:
        asyncio.run(main())
    assert isinstance(info.value.last_error, anthropic.APITimeoutError)
    assert [a.kind for a in info.value.attempts] == ["classify", "generate"]
    fake.reset()
    fake.script(HAIKU, [Reply(status=500)])
    message = asyncio.run(
        client.messages.create(
            model="auto",
            max_tokens=10,
            messages=user("x"),
            extra_body={"route": {"task": "classify"}},
        )
    )
    assert message.model == SONNET
