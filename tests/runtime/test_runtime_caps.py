"""A rule's or tier's max_tokens is a ceiling on what leaves policyroute.

For generated policies (tier caps, rule caps, present or not) and generated caller values,
every request sent upstream (Router and middleware, every rung of the ladder) carries
`max_tokens <= cap`: `min(caller, cap)`, or the cap when the caller gives none. A
`max_tokens` climb happens only when the next rung may say more: its limit, else its cap,
above what the cut answer had; otherwise the cut answer is returned and the climb stops.
"""

from __future__ import annotations

import anthropic
from fake_anthropic import FakeAnthropic, Reply
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runtime_support import HAIKU, OPUS, SECRET_KEY, SONNET, user

import policyroute
from policyroute.runtime import EscalationError, Router, RoutingMiddleware
from policyroute.runtime.escalation import FALLBACK_MAX_TOKENS, cap_for, max_tokens_for, tiers_of

cap = st.one_of(st.none(), st.integers(1, 200_000))
caller = st.one_of(st.none(), st.integers(1, 300_000))


def policy_text(tier_caps: tuple[int | None, int | None, int | None], rule_cap: int | None) -> str:
    def tier(name: str, model: str, c: int | None) -> str:
        extra = f" max_tokens {c}" if c is not None else ""
        return f'tier {name} = "{model}" {{ input 1 output 5{extra} }}\n'

    rule_opt = f" max_tokens {rule_cap}" if rule_cap is not None else ""
    return (
        'policy "caps"\n'
        + tier("haiku", HAIKU, tier_caps[0])
        + tier("sonnet", SONNET, tier_caps[1])
        + tier("opus", OPUS, tier_caps[2])
        + f'rule pinned: task == "x" -> haiku{rule_opt}\n'
        + "default -> sonnet\n"
        + "escalate on max_tokens max 2\n"
    )


SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _expected(decision: policyroute.Decision, requested: int | None) -> list[int]:
    out: list[int] = []
    for i, tier in enumerate(tiers_of(decision)):
        c = cap_for(decision, i, tier)
        if requested is None:
            want = c or FALLBACK_MAX_TOKENS
        else:
            want = requested if c is None else min(requested, c)
        if out and want <= out[-1]:
            if c is None or c <= out[-1]:
                break  # no more room on this rung: the cut answer is returned
            want = c
        out.append(want)
    return out


@SETTINGS
@given(tier_caps=st.tuples(cap, cap, cap), rule_cap=cap, requested=caller)
def test_router_never_sends_more_than_the_cap(
    fake: FakeAnthropic,
    tier_caps: tuple[int | None, int | None, int | None],
    rule_cap: int | None,
    requested: int | None,
) -> None:
    fake.reset()
    fake.default_reply = Reply(stop_reason="max_tokens")  # climb every rung
    policy = policyroute.loads(policy_text(tier_caps, rule_cap))
    client = anthropic.Anthropic(base_url=fake.base_url, api_key=SECRET_KEY)
    kwargs = {} if requested is None else {"max_tokens": requested}
    decision = policy.decide(task="x")
    try:
        result = Router(policy, client).create(messages=user("hi"), route={"task": "x"}, **kwargs)
    except EscalationError:
        pass  # the top rung was cut too
    else:
        assert result.final_trigger == "max_tokens"  # a climb that could give no more room
        assert "max_tokens escalation skipped" in (result.attempts[-1].note or "")
    sent = [s.body["max_tokens"] for s in fake.requests]
    assert sent == _expected(decision, requested)
    for i, (tier, n) in enumerate(zip(tiers_of(decision), sent, strict=False)):
        c = cap_for(decision, i, tier)
        assert c is None or n <= c
        assert i == 0 or n > sent[i - 1]  # a climb always gives more room
    client.close()


@SETTINGS
@given(
    tier_caps=st.tuples(cap, cap, cap),
    rule_cap=cap,
    requested=st.one_of(st.integers(1, 20_000), st.integers(20_001, 300_000)),
)
def test_middleware_never_sends_more_than_the_cap(
    fake: FakeAnthropic,
    tier_caps: tuple[int | None, int | None, int | None],
    rule_cap: int | None,
    requested: int,
) -> None:
    fake.reset()
    fake.default_reply = Reply(stop_reason="max_tokens")
    policy = policyroute.loads(policy_text(tier_caps, rule_cap))
    client = anthropic.Anthropic(
        base_url=fake.base_url, api_key=SECRET_KEY, middleware=[RoutingMiddleware(policy)]
    )
    route = {"route": {"task": "x"}}
    if requested <= 20_000:  # the SDK's own limit for a non-streaming call by a default client
        # Not streamed: the middleware reads each answer and climbs on `max_tokens`.
        client.messages.create(
            model="auto", max_tokens=requested, messages=user("hi"), extra_body=route
        )
    else:  # a long output goes through `messages.stream`, routed (its body is not inspected)
        with client.messages.stream(
            model="auto", max_tokens=requested, messages=user("hi"), extra_body=route
        ) as s:
            s.get_final_message()
    decision = policy.decide(task="x")
    sent = [s.body["max_tokens"] for s in fake.requests]
    assert sent == _expected(decision, requested)[: len(sent)]
    client.close()


def test_max_tokens_for_examples() -> None:
    policy = policyroute.loads(policy_text((4096, 16384, 32768), 1024))
    d = policy.decide(task="x")
    assert [max_tokens_for(d, i, t, None) for i, t in enumerate(tiers_of(d))] == [
        1024,
        16384,
        32768,
    ]
    assert [max_tokens_for(d, i, t, 20_000) for i, t in enumerate(tiers_of(d))] == [
        1024,
        16384,
        20_000,
    ]
    assert [max_tokens_for(d, i, t, 500) for i, t in enumerate(tiers_of(d))] == [500, 500, 500]
