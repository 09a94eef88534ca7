"""Properties of the shadow machinery: the daily cap is never passed, whatever the order of
reservations and settlements; sampling picks each statement's share."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policyroute.runtime.shadow_budget import DailyBudget
from policyroute.runtime.shadowing import ShadowConfig, ThreadShadow


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


steps = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.floats(0, 2), st.floats(0, 1)),
        st.tuples(st.just("settle"), st.integers(0, 50), st.floats(0, 1)),
        st.tuples(st.just("day"), st.just(0), st.just(0.0)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(st.floats(0, 5), steps)
def test_the_cap_holds_for_any_sequence(cap: float, ops: list[tuple[str, Any, float]]) -> None:
    clock = Clock()
    budget = DailyBudget(cap, clock)
    open_: list[float] = []  # reservations not yet settled
    spent_today = 0.0
    for op, a, b in ops:
        if op == "reserve":
            if budget.reserve(a):
                open_.append(a)
        elif op == "settle" and open_:
            reserved = open_.pop(a % len(open_))
            actual = reserved * b  # a call never costs more than its worst case
            budget.settle(reserved, actual)
            spent_today += actual
        elif op == "day":
            clock.now += 86_400
            open_.clear()  # calls of yesterday settle against yesterday
            spent_today = 0.0
        assert budget.committed <= cap + 1e-9
        assert spent_today <= cap + 1e-9


def test_sampling_picks_each_share_on_its_own() -> None:
    import policyroute
    from policyroute.runtime.attempts import Attempt
    from policyroute.runtime.shadowing import Served

    policy = policyroute.loads(
        'tier haiku = "h" { input 1 output 5 }\ntier sonnet = "s" { input 3 output 15 }\n'
        'tier opus = "o" { input 5 output 25 }\ndefault -> opus\n'
        "shadow haiku sample 5%\nshadow sonnet sample 50%\n"
    )
    decision = policy.decide(prompt="x")
    served = Served(
        request_id="r",
        decision=decision,
        params={"messages": [{"role": "user", "content": "x"}]},
        max_tokens=100,
        route={},
        text="x",
        answer=Attempt(kind="generate", tier="opus", model="o", input_tokens=10),
        message=None,  # type: ignore[arg-type]
        finish=lambda extra: None,
    )
    runner = ThreadShadow(ShadowConfig(1e9, seed=7), log_prompts=False)
    n = 20_000
    counts = {"haiku": 0, "sonnet": 0}
    for _ in range(n):
        job = runner._sample(served, policy.shadows_for("opus"))
        for tier, _, reserved in runner._calls(job) if job is not None else ():
            counts[tier.name] += 1
            runner.budget.settle(reserved, 0.0)
    for name, p in (("haiku", 0.05), ("sonnet", 0.5)):
        sd = math.sqrt(n * p * (1 - p))
        assert abs(counts[name] - n * p) <= 4 * sd, (name, counts[name])
    assert runner.stats.as_dict()["sampled"] == sum(counts.values())


def test_config_rejects_nonsense() -> None:
    import pytest

    for bad in (
        {"daily_budget_usd": -1},
        {"daily_budget_usd": float("nan")},
        {"daily_budget_usd": 1, "max_concurrency": 0},
        {"daily_budget_usd": 1, "max_pending": 0},
    ):
        with pytest.raises(ValueError):
            ShadowConfig(**bad)  # type: ignore[arg-type]
