"""The sync and async routers, end to end through the real SDK against the fake server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import anthropic
import pytest
from fake_anthropic import FakeAnthropic, Reply
from pydantic import BaseModel
from runtime_support import HAIKU, OPUS, SONNET, user

import policyroute
from policyroute.runtime import AsyncRouter, EscalationError, Router
from policyroute.runtime.records import DecisionRecord


class Answer(BaseModel):
    answer: str
    confidence: float = 1.0


def tiers(result_or_error: Any) -> list[str]:
    return [a.tier for a in result_or_error.attempts if a.kind == "generate"]


def test_routes_to_decided_tier_with_rule_max_tokens(
    fake: FakeAnthropic, client: anthropic.Anthropic, policy: policyroute.Policy
) -> None:
    fake.script(HAIKU, [Reply(text="positive", input_tokens=100, output_tokens=20)])
    result = Router(policy, client).create(messages=user("I love it"), route={"task": "classify"})
    assert result.decision.rule == "quick"
    assert result.text == "positive"
    assert fake.requests[0].body["max_tokens"] == 1024  # the rule's max_tokens
    assert fake.requests[0].body["model"] == HAIKU
    [attempt] = result.attempts
    assert (attempt.kind, attempt.tier, attempt.status, attempt.trigger) == (
        "generate",
        "haiku",
        200,
        None,
    )
    assert attempt.cost_usd == pytest.approx(100 * 1e-6 + 20 * 5e-6)
    assert result.cost_usd == attempt.cost_usd
    assert attempt.upstream_request_id and attempt.upstream_request_id.startswith("req_")


def test_caller_max_tokens_and_auto_model(
    fake: FakeAnthropic, client: anthropic.Anthropic, policy: policyroute.Policy
) -> None:
    Router(policy, client).create(model="auto", max_tokens=77, messages=user("hi"))
    assert fake.requests[0].body["max_tokens"] == 77
    assert fake.requests[0].body["model"] == SONNET


def test_a_concrete_model_is_refused(
    client: anthropic.Anthropic, policy: policyroute.Policy
) -> None:
    with pytest.raises(ValueError, match="picks the model"):
        Router(policy, client).create(model=OPUS, messages=user("hi"))


@pytest.mark.parametrize(
    ("failure", "trigger", "status"),
    [
        (Reply(status=500), "error", 500),
        (Reply(status=529), "error", 529),
        (Reply(status=429, retry_after=0.01), "error", 429),
        (Reply(stop_reason="max_tokens"), "max_tokens", 200),
        (Reply(text="", stop_reason="refusal"), "refusal", 200),
        (Reply.json({"answer": "maybe", "confidence": 0.3}), "confidence", 200),
    ],
)
def test_each_trigger_climbs_one_tier(
    fake: FakeAnthropic,
    client: anthropic.Anthropic,
    policy: policyroute.Policy,
    failure: Reply,
    trigger: str,
    status: int,
) -> None:
    fake.script(HAIKU, [failure])
    fake.script(SONNET, [Reply(text="fine")])
    result = Router(policy, client).create(messages=user("x"), route={"task": "classify"})
    assert tiers(result) == ["haiku", "sonnet"]
    first, second = result.attempts
    assert (first.trigger, first.status) == (trigger, status)
    assert second.trigger is None
    assert result.text == "fine"
    # A tier above gets its own max_tokens, not the rule's, so max_tokens escalation helps.
    assert fake.requests[1].body["max_tokens"] == 16384
    assert result.cost_usd == pytest.approx(sum(a.cost_usd for a in result.attempts))


def test_timeout_climbs(
    fake: FakeAnthropic, client: anthropic.Anthropic, policy: policyroute.Policy
) -> None:
    fake.script(HAIKU, [Reply(delay=1.0)])
    result = Router(policy, client).create(messages=user("x"), route={"task": "classify"})
    assert [a.trigger for a in result.attempts] == ["timeout", None]
    assert result.attempts[0].status is None
    assert "APITimeoutError" in (result.attempts[0].error or "")


def test_sdk_retries_run_before_error_fires(
    fake: FakeAnthropic, policy: policyroute.Policy
) -> None:
    client = anthropic.Anthropic(base_url=fake.base_url, api_key="t", max_retries=1, timeout=1)
    fake.script(HAIKU, [Reply(status=429, retry_after=0.01), Reply(text="second try")])
    result = Router(policy, client).create(messages=user("x"), route={"task": "classify"})
    assert tiers(result) == ["haiku"]
    assert fake.models_called() == [HAIKU, HAIKU]
    fake.reset()
    fake.script(HAIKU, [Reply(status=500, retry_after=0.01)] * 2)
    result = Router(policy, client).create(messages=user("x"), route={"task": "classify"})
    assert tiers(result) == ["haiku", "sonnet"]
    assert fake.models_called() == [HAIKU, HAIKU, SONNET]


def test_invalid_json_with_response_model(
    fake: FakeAnthropic, client: anthropic.Anthropic, policy: policyroute.Policy
) -> None:
    fake.script(HAIKU, [Reply(text="Sure! the answer is 4")])
    fake.script(SONNET, [Reply(text='```json\n{"answer": "4", "confidence": 0.95}\n```')])
    result = Router(policy, client).create(
        messages=user("2+2?"), route={"task": "classify"}, response_model=Answer
    )
    assert [a.trigger for a in result.attempts] == ["invalid_json", None]
    assert result.parsed == Answer(answer="4", confidence=0.95)


def test_invalid_json_with_schema(
    fake: FakeAnthropic, client: anthropic.Anthropic, policy: policyroute.Policy
) -> None:
    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
    fake.script(HAIKU, [Reply.json({"n": "four"})])
    fake.script(SONNET, [Reply.json({"n": 4})])
    result = Router(policy, client).create(
        messages=user("2+2?"), route={"task": "classify"}, json_schema=schema
    )
    assert [a.trigger for a in result.attempts] == ["invalid_json", None]
    assert result.parsed == {"n": 4}


def test_confidence_from_the_callers_extractor(
    fake: FakeAnthropic, client: anthropic.Anthropic, policy: policyroute.Policy
) -> None:
    fake.script(HAIKU, [Reply(text="low")])
    fake.script(SONNET, [Reply(text="high")])
    scores = {"low": 0.2, "high": 0.9}
    result = Router(policy, client).create(
        messages=user("x"),
        route={"task": "classify"},
        confidence=lambda m: scores[m.content[0].text],  # type: ignore[union-attr, unused-ignore]
    )
    assert [a.trigger for a in result.attempts] == ["confidence", None]


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ("classify", ["haiku", "sonnet", "opus"]),
        ("once", ["haiku", "sonnet"]),
        ("never", ["haiku"]),
    ],
)
def test_every_tier_failing_raises_with_all_attempts(
    fake: FakeAnthropic,
    client: anthropic.Anthropic,
    policy: policyroute.Policy,
    task: str,
    expected: list[str],
) -> None:
    fake.default_reply = Reply(status=529)
    with pytest.raises(EscalationError) as info:
        Router(policy, client).create(messages=user("x"), route={"task": task})
    err = info.value
    assert tiers(err) == expected
    assert isinstance(err.last_error, anthropic.APIStatusError)
    assert err.last_error.status_code == 529
    assert fake.models_called() == [
        {"haiku": HAIKU, "sonnet": SONNET, "opus": OPUS}[t] for t in expected
    ]


def test_trigger_at_the_top_raises_with_the_last_answer(
    fake: FakeAnthropic, client: anthropic.Anthropic, policy: policyroute.Policy
) -> None:
    fake.default_reply = Reply(text="", stop_reason="refusal")
    with pytest.raises(EscalationError) as info:
        Router(policy, client).create(messages=user("x"), route={"task": "classify"})
    assert info.value.last_error is None
    assert info.value.last_message is not None
    assert info.value.last_message.stop_reason == "refusal"
    assert [a.trigger for a in info.value.attempts] == ["refusal"] * 3


def test_a_bad_request_does_not_climb(
    fake: FakeAnthropic, client: anthropic.Anthropic, policy: policyroute.Policy
) -> None:
    fake.script(HAIKU, [Reply(status=400, text="messages: bad")])
    with pytest.raises(EscalationError) as info:
        Router(policy, client).create(messages=user("x"), route={"task": "classify"})
    assert tiers(info.value) == ["haiku"]
    assert isinstance(info.value.last_error, anthropic.BadRequestError)
    assert "messages: bad" in (info.value.attempts[0].error or "")


def test_cache_tokens_are_priced(
    fake: FakeAnthropic, client: anthropic.Anthropic, policy: policyroute.Policy
) -> None:
    fake.script(
        SONNET,
        [
            Reply(
                input_tokens=1000,
                output_tokens=100,
                cache_creation_input_tokens=2000,
                cache_read_input_tokens=10_000,
            )
        ],
    )
    result = Router(policy, client).create(messages=user("x"))
    a = result.attempts[0]
    assert (a.cache_creation_tokens, a.cache_read_tokens) == (2000, 10_000)
    expected = (1000 * 3 + 2000 * 3 * 1.25 + 10_000 * 3 * 0.1 + 100 * 15) / 1e6
    assert a.cost_usd == pytest.approx(expected)


def test_classifier_is_asked_lazily_and_recorded(
    fake: FakeAnthropic, client: anthropic.Anthropic, policy: policyroute.Policy
) -> None:
    fake.script(HAIKU, [Reply.json({"label": "hard", "confidence": 0.9}, input_tokens=50)])
    result = Router(policy, client).create(
        messages=user("design a kernel"), route={"task": "judge"}
    )
    assert result.decision.rule == "judged"
    classify, generate = result.attempts
    assert (classify.kind, classify.tier, classify.classifier) == (
        "classify",
        "haiku",
        "difficulty",
    )
    assert classify.cost_usd > 0
    assert generate.tier == "opus"
    assert result.cost_usd == pytest.approx(classify.cost_usd + generate.cost_usd)
    body = fake.requests[0].body
    assert "How hard is this request?" in body["system"]
    assert body["messages"][0]["content"] == "design a kernel"
    # A rule that never needs the classifier never asks it.
    fake.reset()
    Router(policy, client).create(messages=user("x"), route={"task": "classify"})
    assert fake.models_called() == [HAIKU]


@pytest.mark.parametrize(
    "reply",
    [
        Reply(status=500),
        Reply(text="hard, surely"),
        Reply.json({"label": "impossible", "confidence": 1}),
        Reply.json({"label": "hard", "confidence": "very"}),
    ],
)
def test_a_failed_classifier_is_no_label(
    fake: FakeAnthropic, client: anthropic.Anthropic, policy: policyroute.Policy, reply: Reply
) -> None:
    fake.script(HAIKU, [reply])
    fake.script(HAIKU, [Reply(text="cheap answer")])
    result = Router(policy, client).create(messages=user("x"), route={"task": "judge"})
    assert result.decision.rule == "cheap"
    assert result.attempts[0].kind == "classify"
    assert result.attempts[0].trigger is not None


def test_records_one_line_per_request(
    fake: FakeAnthropic, client: anthropic.Anthropic, policy: policyroute.Policy, tmp_path: Path
) -> None:
    path = tmp_path / "records.jsonl"
    router = Router(policy, client, records=path)
    fake.script(HAIKU, [Reply(status=500)])
    router.create(
        messages=user("secret prompt"), route={"task": "classify", "user": {"tier": "pro"}}
    )
    fake.default_reply = Reply(status=500)
    with pytest.raises(EscalationError):
        router.create(messages=user("x"), route={"task": "never"})
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    first = DecisionRecord.model_validate_json(lines[0])
    assert (first.policy, first.rule, first.tier, first.final_tier) == (
        "runtime-test",
        "quick",
        "haiku",
        "sonnet",
    )
    assert first.revision == policy.revision
    assert first.triggers == ["error"] and first.escalations == 1
    assert [a.status for a in first.attempts] == [500, 200]
    assert first.route == {"task": "classify", "user": {"tier": "pro"}}
    assert first.prompt is not None and first.prompt.length == len("secret prompt")
    assert "secret prompt" not in lines[0]
    assert first.cost_usd == pytest.approx(sum(a.cost_usd for a in first.attempts))
    second = json.loads(lines[1])
    assert second["outcome"] == "failed" and "final_tier" not in second


def test_records_prompts_on_request(
    fake: FakeAnthropic, client: anthropic.Anthropic, policy: policyroute.Policy, tmp_path: Path
) -> None:
    path = tmp_path / "r.jsonl"
    Router(policy, client, records=path, log_prompts=True).create(messages=user("keep me"))
    record = DecisionRecord.model_validate_json(path.read_text())
    assert record.prompt is not None and record.prompt.text == "keep me"


def test_a_store_is_read_on_every_request(
    fake: FakeAnthropic, client: anthropic.Anthropic, policy: policyroute.Policy
) -> None:
    class Store:
        def __init__(self, p: policyroute.Policy) -> None:
            self.policy = p

        def decide(self, request: Any = None, /, **kw: Any) -> policyroute.Decision:
            return self.policy.decide(request, **kw)

    store = Store(policy)
    router = Router(store, client)
    assert router.create(messages=user("x")).tier == "sonnet"
    store.policy = policyroute.loads(
        'tier only = "claude-haiku-4-5" { input 1 output 1 }\ndefault -> only'
    )
    assert router.create(messages=user("x")).tier == "only"


def test_not_a_policy() -> None:
    with pytest.raises(TypeError, match="Policy or a policy store"):
        Router(object(), anthropic.Anthropic(api_key="x"))


def test_async_router_escalates_and_classifies(
    fake: FakeAnthropic, async_client: anthropic.AsyncAnthropic, policy: policyroute.Policy
) -> None:
    fake.script(HAIKU, [Reply.json({"label": "hard", "confidence": 0.9})])
    fake.script(OPUS, [Reply(status=529)])

    async def main() -> Any:
        router = AsyncRouter(policy, async_client)
        judged = await router.create(messages=user("x"), route={"task": "judge"})
        plain = await router.create(messages=user("y"), route={"task": "classify"})
        return judged, plain

    with pytest.raises(EscalationError) as info:
        asyncio.run(main())
    assert [(a.kind, a.tier) for a in info.value.attempts] == [
        ("classify", "haiku"),
        ("generate", "opus"),
    ]

    fake.reset()
    fake.script(HAIKU, [Reply(stop_reason="max_tokens")])

    async def again() -> Any:
        return await AsyncRouter(policy, async_client).create(
            messages=user("y"), route={"task": "classify"}
        )

    result = asyncio.run(again())
    assert tiers(result) == ["haiku", "sonnet"]
    assert result.cost_usd == pytest.approx(sum(a.cost_usd for a in result.attempts))


def test_request_ids_have_one_form_across_front_ends(
    fake: FakeAnthropic, client: anthropic.Anthropic, policy: policyroute.Policy, tmp_path: Path
) -> None:
    """Router, AsyncRouter and serve name a request alike (`pr_` and 24 hex digits): a record
    is found by the id serve answers in `x-policyroute-request-id` whichever front end wrote
    it (issue 25: the Router wrote bare hex)."""
    import re

    from policyroute.runtime.records import new_request_id

    records = tmp_path / "r.jsonl"
    result = Router(policy, client, records=records).create(messages=user("hi"))
    form = re.compile(r"pr_[0-9a-f]{24}")
    assert form.fullmatch(result.request_id)
    assert form.fullmatch(DecisionRecord.model_validate_json(records.read_text()).request_id)
    assert form.fullmatch(new_request_id()) and new_request_id() != new_request_id()
