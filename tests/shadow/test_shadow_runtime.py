"""Shadow traffic in Router, AsyncRouter and RoutingMiddleware: the caller is never delayed or
changed, the spend cap holds, sampling holds its rate, failures are counted and never raised."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import anthropic
import pytest
from fake_anthropic import FakeAnthropic, Reply
from shadow_support import HAIKU, OPUS, SONNET, lines, policy_text, user

import policyroute
from policyroute.runtime import AsyncRouter, Router, RoutingMiddleware
from policyroute.runtime.shadowing import ShadowConfig

SLOW = 1.0  # seconds a slow shadow answer takes


@pytest.fixture
def policy() -> policyroute.Policy:
    return policyroute.loads(policy_text())


def client(fake: FakeAnthropic, **kw: object) -> anthropic.Anthropic:
    # A user's client: the SDK's default retries and timeouts.
    return anthropic.Anthropic(base_url=fake.base_url, api_key="test", **kw)  # type: ignore[arg-type]


def test_caller_gets_its_answer_before_a_slow_shadow_ends(
    fake: FakeAnthropic, policy: policyroute.Policy, tmp_path: Path
) -> None:
    fake.script(SONNET, [Reply(text="the real answer", output_tokens=7)])
    fake.script(HAIKU, [Reply(text="the cheap answer", delay=SLOW, output_tokens=3)])
    pairs, records = tmp_path / "pairs.jsonl", tmp_path / "records.jsonl"
    router = Router(
        policy,
        client(fake),
        records=records,
        log_prompts=True,
        shadow=ShadowConfig(daily_budget_usd=1.0, pairs=pairs),
    )
    start = time.perf_counter()
    result = router.create(messages=user("Explain monads"), route={"task": "explain"})
    elapsed = time.perf_counter() - start
    assert result.text == "the real answer" and result.tier == "sonnet"
    assert elapsed < SLOW, f"the caller waited {elapsed:.3f}s"
    assert [a.kind for a in result.attempts] == ["generate"]  # the caller's view is unchanged
    assert lines(pairs) == []  # the shadow is still running
    router.close()
    (pair,) = lines(pairs)
    assert pair["routed"]["text"] == "the real answer" and pair["routed"]["tier"] == "sonnet"
    assert pair["shadow"]["text"] == "the cheap answer" and pair["shadow"]["tier"] == "haiku"
    assert pair["shadow"]["usage"]["output_tokens"] == 3
    assert pair["shadow"]["cost_usd"] == pytest.approx(10e-6 + 3 * 5e-6)
    assert pair["shadow"]["latency_ms"] >= SLOW * 1000 * 0.9
    assert pair["decision"] == {"tier": "sonnet", "model": SONNET, "rule": "default"}
    assert pair["revision"] == policy.revision and pair["id"] == result.request_id
    assert pair["request"] == {
        "messages": [{"role": "user", "content": "Explain monads"}],
        "route": {"task": "explain"},
        "id": result.request_id,
    }
    # The request the shadow sent is the caller's, on the shadow tier's model.
    shadow_body = next(s.body for s in fake.requests if s.model == HAIKU)
    assert shadow_body["messages"] == [{"role": "user", "content": "Explain monads"}]
    (record,) = lines(records)
    assert [a["kind"] for a in record["attempts"]] == ["generate", "shadow"]
    assert record["attempts"][1]["cost_usd"] == pytest.approx(pair["shadow"]["cost_usd"])
    assert record["shadow_cost_usd"] == pytest.approx(pair["shadow"]["cost_usd"])
    assert record["cost_usd"] == pytest.approx(result.cost_usd)  # the request's own cost
    assert record["latency_ms"] < SLOW * 1000 / 2  # the caller's latency, not the shadow's


def test_prompts_and_answers_only_on_opt_in(
    fake: FakeAnthropic, policy: policyroute.Policy, tmp_path: Path
) -> None:
    pairs = tmp_path / "pairs.jsonl"
    router = Router(policy, client(fake), shadow=ShadowConfig(1.0, pairs=pairs))
    router.create(messages=user("secret question"))
    router.close()
    (pair,) = lines(pairs)
    assert "request" not in pair and "text" not in pair["routed"] and "text" not in pair["shadow"]
    assert pair["prompt"]["length"] == len("secret question")
    assert "secret" not in (tmp_path / "pairs.jsonl").read_text()
    assert pair["routed"]["chars"] == len("hello")


def test_only_requests_routed_above_the_shadow_tier(
    fake: FakeAnthropic, policy: policyroute.Policy, tmp_path: Path
) -> None:
    pairs = tmp_path / "pairs.jsonl"
    router = Router(policy, client(fake), shadow=ShadowConfig(1.0, pairs=pairs))
    router.create(messages=user("a"), route={"task": "quick"})  # haiku: nothing cheaper
    router.create(messages=user("b"), route={"task": "big"}, max_tokens=500)  # opus: shadowed
    router.close()
    assert [p["decision"]["tier"] for p in lines(pairs)] == ["opus"]
    assert fake.models_called().count(HAIKU) == 2


def test_shadow_failures_are_counted_never_raised(
    fake: FakeAnthropic,
    policy: policyroute.Policy,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.script(HAIKU, [Reply(status=400, text="bad shadow")])
    pairs, records = tmp_path / "pairs.jsonl", tmp_path / "records.jsonl"
    router = Router(policy, client(fake), records=records, shadow=ShadowConfig(1.0, pairs=pairs))
    result = router.create(messages=user("hi"))
    assert result.text == "hello"
    router.close()
    stats = router.shadowing.stats.as_dict()  # type: ignore[union-attr]
    assert stats["failed"] == 1 and stats["succeeded"] == 0 and stats["spent_usd"] == 0
    assert lines(pairs) == []
    (record,) = lines(records)
    assert record["outcome"] == "ok"
    assert record["attempts"][1]["kind"] == "shadow" and "400" in record["attempts"][1]["error"]
    assert any("shadow call to haiku" in r.message for r in caplog.records)


def test_caller_errors_are_its_own_and_not_shadowed(
    fake: FakeAnthropic, policy: policyroute.Policy, tmp_path: Path
) -> None:
    fake.script(SONNET, [Reply(status=400, text="bad request")])
    pairs = tmp_path / "pairs.jsonl"
    router = Router(policy, client(fake), shadow=ShadowConfig(1.0, pairs=pairs))
    with pytest.raises(policyroute.runtime.EscalationError) as e:
        router.create(messages=user("hi"))
    assert "400" in str(e.value)
    router.close()
    assert HAIKU not in fake.models_called() and lines(pairs) == []


def test_spend_cap_holds(fake: FakeAnthropic, policy: policyroute.Policy, tmp_path: Path) -> None:
    # Each shadow answer uses all of its max_tokens, so it costs about what was reserved.
    fake.default_reply = Reply(text="x", output_tokens=1000)
    one = 10 * 1e-6 + 1000 * 5e-6  # a haiku answer of 10 input and 1000 output tokens
    budget = 5.5 * one
    router = Router(policy, client(fake), shadow=ShadowConfig(budget, pairs=tmp_path / "p.jsonl"))
    assert router.shadowing is not None
    for i in range(10):
        router.create(messages=user(f"question {i}"), max_tokens=1000)
        router.shadowing.drain()
        assert router.shadowing.budget.committed <= budget + 1e-12
    router.close()
    stats = router.shadowing.stats.as_dict()
    assert stats["spent_usd"] <= budget
    assert stats["succeeded"] == 5 and stats["skipped_budget"] == 5
    assert len(lines(tmp_path / "p.jsonl")) == 5


def test_spend_cap_holds_with_calls_in_flight(
    fake: FakeAnthropic, policy: policyroute.Policy, tmp_path: Path
) -> None:
    fake.script(HAIKU, [Reply(text="slow", delay=0.3, output_tokens=500) for _ in range(20)])
    one = 10 * 1e-6 + 500 * 5e-6
    budget = 3.5 * one
    config = ShadowConfig(budget, pairs=tmp_path / "p.jsonl", max_concurrency=8)
    router = Router(policy, client(fake), shadow=config)
    for i in range(12):
        router.create(messages=user(f"q{i}"), max_tokens=500)  # all reserved while in flight
    router.close()
    stats = router.shadowing.stats.as_dict()  # type: ignore[union-attr]
    assert stats["spent_usd"] <= budget
    assert stats["succeeded"] == 3 and stats["skipped_budget"] == 9


def test_a_full_queue_skips_the_shadow_and_records_at_once(
    fake: FakeAnthropic, policy: policyroute.Policy, tmp_path: Path
) -> None:
    fake.script(HAIKU, [Reply(text="slow", delay=0.5) for _ in range(5)])
    records = tmp_path / "r.jsonl"
    config = ShadowConfig(1.0, pairs=tmp_path / "p.jsonl", max_concurrency=1, max_pending=1)
    router = Router(policy, client(fake), records=records, shadow=config)
    for i in range(4):
        router.create(messages=user(f"q{i}"))
    # One running, one waiting: the other two were recorded at once, without a shadow.
    assert len(lines(records)) == 2
    router.close()
    stats = router.shadowing.stats.as_dict()  # type: ignore[union-attr]
    assert stats["skipped_full"] == 2 and stats["succeeded"] == 2
    assert sorted(len(r["attempts"]) for r in lines(records)) == [1, 1, 2, 2]


def test_sampling_rate_within_tolerance(fake: FakeAnthropic, tmp_path: Path) -> None:
    policy = policyroute.loads(policy_text("30%"))
    fake.record_requests = False
    n, p = 400, 0.30
    router = Router(policy, client(fake), shadow=ShadowConfig(10.0, pairs=tmp_path / "p.jsonl"))
    for i in range(n):
        router.create(messages=user(f"q{i}"))
    router.close()
    fake.record_requests = True
    sampled = router.shadowing.stats.as_dict()["sampled"]  # type: ignore[union-attr]
    sd = math.sqrt(n * p * (1 - p))
    assert abs(sampled - n * p) <= 4 * sd, (sampled, n * p, sd)
    assert len(lines(tmp_path / "p.jsonl")) == sampled


def test_stream_is_shadowed_after_it_ends(
    fake: FakeAnthropic, policy: policyroute.Policy, tmp_path: Path
) -> None:
    fake.script(SONNET, [Reply(text="streamed answer", chunks=3)])
    fake.script(HAIKU, [Reply(text="cheap", delay=SLOW)])
    pairs = tmp_path / "p.jsonl"
    router = Router(policy, client(fake), log_prompts=True, shadow=ShadowConfig(1.0, pairs=pairs))
    start = time.perf_counter()
    with router.stream(messages=user("hi")) as s:
        text = "".join(s.text_stream)
    assert text == "streamed answer" and time.perf_counter() - start < SLOW
    assert lines(pairs) == []
    router.close()
    (pair,) = lines(pairs)
    assert pair["routed"]["text"] == "streamed answer" and pair["shadow"]["text"] == "cheap"


def test_without_a_config_nothing_is_shadowed(
    fake: FakeAnthropic, policy: policyroute.Policy
) -> None:
    router = Router(policy, client(fake))
    router.create(messages=user("hi"))
    assert fake.models_called() == [SONNET]


def test_async_router_never_waits_for_the_shadow(
    fake: FakeAnthropic, policy: policyroute.Policy, tmp_path: Path
) -> None:
    fake.script(OPUS, [Reply(text="top answer")])
    fake.script(HAIKU, [Reply(text="cheap", delay=SLOW)])
    pairs, records = tmp_path / "p.jsonl", tmp_path / "r.jsonl"

    async def main() -> float:
        c = anthropic.AsyncAnthropic(base_url=fake.base_url, api_key="test")
        router = AsyncRouter(
            policy, c, records=records, log_prompts=True, shadow=ShadowConfig(1.0, pairs=pairs)
        )
        start = time.perf_counter()
        result = await router.create(messages=user("hard"), route={"task": "big"}, max_tokens=500)
        elapsed = time.perf_counter() - start
        assert result.text == "top answer"
        assert lines(pairs) == []
        await router.aclose()
        await c.close()
        return elapsed

    elapsed = asyncio.run(main())
    assert elapsed < SLOW
    (pair,) = lines(pairs)
    assert (pair["routed"]["tier"], pair["shadow"]["tier"]) == ("opus", "haiku")
    assert [a["kind"] for a in lines(records)[0]["attempts"]] == ["generate", "shadow"]


def test_middleware_sync_shadows_through_the_client(
    fake: FakeAnthropic, policy: policyroute.Policy, tmp_path: Path
) -> None:
    fake.script(SONNET, [Reply(text="real")])
    fake.script(HAIKU, [Reply(text="cheap", delay=SLOW)])
    pairs, records = tmp_path / "p.jsonl", tmp_path / "r.jsonl"
    mw = RoutingMiddleware(
        policy, records=records, log_prompts=True, shadow=ShadowConfig(1.0, pairs=pairs)
    )
    c = client(fake, middleware=[mw])
    start = time.perf_counter()
    message = c.messages.create(model="auto", max_tokens=100, messages=user("hi"))
    assert time.perf_counter() - start < SLOW and lines(pairs) == []
    assert message.model == SONNET and message.content[0].text == "real"  # type: ignore[union-attr]
    mw.close()
    (pair,) = lines(pairs)
    assert pair["shadow"]["text"] == "cheap" and pair["request"]["max_tokens"] == 100
    assert [a["kind"] for a in lines(records)[0]["attempts"]] == ["generate", "shadow"]
    assert mw.shadow_stats["succeeded"] == 1


def test_middleware_async_shadows_through_the_client(
    fake: FakeAnthropic, policy: policyroute.Policy, tmp_path: Path
) -> None:
    fake.script(HAIKU, [Reply(text="cheap", delay=SLOW)])
    pairs = tmp_path / "p.jsonl"
    mw = RoutingMiddleware(policy, log_prompts=True, shadow=ShadowConfig(1.0, pairs=pairs))

    async def main() -> float:
        c = anthropic.AsyncAnthropic(base_url=fake.base_url, api_key="test", middleware=[mw])
        start = time.perf_counter()
        message = await c.messages.create(model="auto", max_tokens=50, messages=user("hi"))
        elapsed = time.perf_counter() - start
        assert message.model == SONNET and lines(pairs) == []
        await mw.aclose()
        await c.close()
        return elapsed

    assert asyncio.run(main()) < SLOW
    (pair,) = lines(pairs)
    assert pair["shadow"]["text"] == "cheap"
