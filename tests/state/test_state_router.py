"""Spend rules through the Router and AsyncRouter: each answer's cost fills its owners'
counters, and the next request's decision reads them; in process or through Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import anthropic
import pytest
from fake_anthropic import FakeAnthropic
from redis_server import RedisServer

import policyroute
from policyroute.runtime import AsyncRouter, Router
from policyroute.runtime.redis_state import RedisState
from policyroute.runtime.state import LocalState, State

HAIKU, SONNET = "claude-haiku-4-5", "claude-sonnet-4-6"
# One default answer (10 input, 5 output tokens) on sonnet costs $0.000105.
POLICY = f"""
policy "budget"
tier haiku  = "{HAIKU}"  {{ input 1.00  output 5.00 }}
tier sonnet = "{SONNET}" {{ input 3.00  output 15.00 }}
rule free:     user.tier == "free"           -> haiku
rule spent:    spend.user.day > 0.0001       -> haiku
rule team:     spend.policy.day > 0.001      -> haiku
default                                      -> sonnet
"""


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(params=["local", "redis"])
def state(request: pytest.FixtureRequest) -> Iterator[State]:
    if request.param == "local":
        yield LocalState()
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    s = RedisState(server.url)
    yield s
    s.close()


@pytest.fixture
def client(fake: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    c = anthropic.Anthropic(base_url=fake.base_url, api_key="test", max_retries=0)
    yield c
    c.close()


def test_a_users_spend_routes_their_next_request(
    fake: FakeAnthropic, client: anthropic.Anthropic, state: State
) -> None:
    router = Router(policyroute.loads(POLICY), client, state=state)
    first = router.create(messages=user("hi"), max_tokens=100, route={"user": {"id": "u1"}})
    assert (first.decision.tier, first.decision.rule) == ("sonnet", "default")
    state.flush()
    second = router.create(messages=user("hi"), max_tokens=100, route={"user": {"id": "u1"}})
    assert (second.decision.tier, second.decision.rule) == ("haiku", "spent")
    other = router.create(messages=user("hi"), max_tokens=100, route={"user": {"id": "u2"}})
    assert other.decision.rule == "default"
    # no user id: spend.user.day is missing, so the rule does not hold
    anonymous = router.create(messages=user("hi"), max_tokens=100)
    assert anonymous.decision.rule == "default"
    state.flush()
    got = state.read_spend(
        [policyroute.runtime.state.SpendRead("spend.policy.day", "policy", "budget", "day")]
    )
    assert got is not None
    assert got["spend.policy.day"] == pytest.approx(3 * 0.000105 + 0.000035)
    router.close()


def test_a_rule_before_any_spend_condition_reads_no_state(
    fake: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    class Counting(LocalState):
        reads = 0

        def read_spend(self, reads, at=None):  # type: ignore[no-untyped-def]
            Counting.reads += 1
            return super().read_spend(reads, at)

    state = Counting()
    router = Router(policyroute.loads(POLICY), client, state=state)
    free = {"user": {"id": "u1", "tier": "free"}}
    assert router.create(messages=user("hi"), max_tokens=10, route=free).decision.rule == "free"
    assert Counting.reads == 0
    router.create(messages=user("hi"), max_tokens=10, route={"user": {"id": "u1"}})
    assert Counting.reads == 1  # both spend conditions, one read


def test_a_callers_own_spend_is_not_believed_at_run_time(
    fake: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    router = Router(policyroute.loads(POLICY), client)
    route = {"user": {"id": "u1"}, "spend": {"user": {"day": 5.0}}}
    assert router.create(messages=user("hi"), max_tokens=10, route=route).decision.rule == (
        "default"
    )


def test_async_router_with_redis(fake: FakeAnthropic, redis_server: RedisServer) -> None:
    async def run() -> list[str]:
        client = anthropic.AsyncAnthropic(base_url=fake.base_url, api_key="k", max_retries=0)
        router = AsyncRouter(policyroute.loads(POLICY), client, state=redis_server.url)
        rules = []
        for _ in range(2):
            r = await router.create(
                messages=user("hi"), max_tokens=10, route={"user": {"id": "a1"}}
            )
            rules.append(r.decision.rule)
            await asyncio.to_thread(router.state.flush)
        await router.aclose()
        return rules

    assert asyncio.run(run()) == ["default", "spent"]


def test_redis_down_every_request_is_still_answered(
    fake: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    from redis_server import free_port

    router = Router(policyroute.loads(POLICY), client, state=f"redis://127.0.0.1:{free_port()}/0")
    for _ in range(3):
        r = router.create(messages=user("hi"), max_tokens=10, route={"user": {"id": "u1"}})
        assert r.decision.rule == "default"  # spend missing: the spend rules do not hold
    assert router.state.health.failures >= 1
    router.close()


def test_sdk_middleware_counts_and_reads_spend_through_redis(
    fake: FakeAnthropic, redis_server: RedisServer
) -> None:
    from policyroute.runtime.middleware import RoutingMiddleware

    mw = RoutingMiddleware(policyroute.loads(POLICY), max_retries=0, state=redis_server.url)
    client = anthropic.Anthropic(
        base_url=fake.base_url, api_key="test", max_retries=0, middleware=[mw]
    )
    models = []
    for _ in range(2):
        r = client.messages.create(
            model="auto", max_tokens=10, messages=user("hi"), metadata={"user_id": "m1"}
        )
        models.append(r.model)
        mw.state.flush()
    assert models == [SONNET, HAIKU]
    client.close()
    mw.state.close()
