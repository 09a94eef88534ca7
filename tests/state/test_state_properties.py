"""The in-process and the Redis state give the same decisions on any sequence of requests:
spend read lazily and counted, sticky floors read and remembered, in the same order."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis_server import RedisServer

import policyroute
from policyroute.request import Request
from policyroute.runtime.redis_state import RedisState
from policyroute.runtime.spend import SpendMeter
from policyroute.runtime.state import LocalState, State
from policyroute.runtime.sticky import Sticky

POLICY = """
policy "prop"
tier haiku  = "claude-haiku-4-5"  { input 1.00  output 5.00 }
tier sonnet = "claude-sonnet-4-6" { input 3.00  output 15.00 }
tier opus   = "claude-opus-4-7"   { input 5.00  output 25.00 }
rule hard:     prompt contains "deadlock"                          -> opus
rule broke:    spend.user.day > 0.05 and spend.user.hour <= 0.2    -> haiku
rule team:     spend.policy.month >= 0.25                          -> haiku
rule keyed:    spend.key.day > 0.03                                -> sonnet
default                                                            -> sonnet
sticky conversations 1 hour
"""

# Costs are multiples of 1/1024 USD, exact in binary: float sums and Redis's INCRBYFLOAT
# agree to the last bit, so a threshold is crossed on the same request by both.
steps = st.lists(
    st.tuples(
        st.sampled_from([None, "u1", "u2"]),  # user id
        st.sampled_from([None, "k1", "k2"]),  # key
        st.sampled_from(["c1", "c2", "c3"]),  # conversation
        st.sampled_from(["fix the deadlock", "hello", "format this"]),
        st.integers(0, 40).map(lambda k: k / 1024),  # the answer's cost
    ),
    max_size=30,
)


def run(state: State, policy: policyroute.Policy, seq: list[tuple]) -> list[tuple]:  # type: ignore[type-arg]
    sticky, meter = Sticky(state=state), SpendMeter(state)
    out = []
    for uid, key, conversation, prompt, cost in seq:
        owners = meter.owners(policy, uid, key)
        request = meter.attach(policy, Request(prompt, user_id=uid), owners)
        decision = policy.decide(request)
        decision, raised_from = sticky.apply(policy, decision, conversation)
        out.append((decision.tier, decision.rule, raised_from))
        sticky.remember(policy, conversation, decision.tier)
        meter.count(owners, cost)
        assert state.flush()
    return out


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seq=steps)
def test_local_and_redis_state_decide_alike(redis_server: RedisServer, seq: list[tuple]) -> None:  # type: ignore[type-arg]
    policy = policyroute.loads(POLICY)
    redis_server.flush()
    shared = RedisState(redis_server.url, timeout=1.0)
    try:
        assert run(LocalState(), policy, seq) == run(shared, policy, seq)
        assert shared.health.failures == 0
    finally:
        shared.close()
