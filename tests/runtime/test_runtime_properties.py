"""Escalation under generated failure scripts, through the real SDK and the fake server.

Whatever each tier answers: attempts follow the ladder in order, never repeat a tier, never
take more than `max` steps, end at a success or the top (or at a failure no tier would fix),
and the total cost is the sum of the attempts' costs.
"""

from __future__ import annotations

import anthropic
import pytest
from fake_anthropic import FakeAnthropic, Reply
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from runtime_support import HAIKU, OPUS, SONNET, user

import policyroute
from policyroute.runtime import EscalationError, Router
from policyroute.runtime.escalation import tiers_of

MODELS = {"haiku": HAIKU, "sonnet": SONNET, "opus": OPUS}


class Answer(BaseModel):
    answer: str
    confidence: float


OUTCOMES = {
    "ok": lambda: Reply.json({"answer": "a", "confidence": 0.9}),
    "500": lambda: Reply(status=500),
    "529": lambda: Reply(status=529),
    "429": lambda: Reply(status=429),
    "400": lambda: Reply(status=400),
    "max_tokens": lambda: Reply.json({"answer": "a", "confidence": 0.9}, stop_reason="max_tokens"),
    "refusal": lambda: Reply(text="", stop_reason="refusal"),
    "bad_json": lambda: Reply(text="no json here"),
    "low_confidence": lambda: Reply.json({"answer": "a", "confidence": 0.1}),
}
# The trigger each outcome fires (if the policy lists it); HTTP errors fail even when unlisted.
TRIGGER = {
    "ok": None,
    "500": "error",
    "529": "error",
    "429": "error",
    "400": None,  # a bad request: no tier would fare better
    "max_tokens": "max_tokens",
    "refusal": "refusal",
    "bad_json": "invalid_json",
    "low_confidence": "confidence",
}
HTTP_ERRORS = {"500", "529", "429", "400"}

outcome = st.sampled_from(sorted(OUTCOMES))
usage = st.tuples(*(st.integers(0, 5000) for _ in range(4)))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    task=st.sampled_from(["classify", "once", "never", None]),
    script=st.fixed_dictionaries({t: st.tuples(outcome, usage) for t in MODELS}),
)
def test_escalation_follows_the_ladder(
    fake: FakeAnthropic,
    client: anthropic.Anthropic,
    policy: policyroute.Policy,
    task: str | None,
    script: dict[str, tuple[str, tuple[int, int, int, int]]],
) -> None:
    fake.reset()
    for tier, (name, (i, o, cw, cr)) in script.items():
        reply = OUTCOMES[name]()
        reply.input_tokens, reply.output_tokens = i, o
        reply.cache_creation_input_tokens, reply.cache_read_input_tokens = cw, cr
        fake.script(MODELS[tier], [reply])
    route = {"task": task} if task else {}
    decision = policy.decide(policyroute.Request("x", task=task))
    allowed = [t.name for t in tiers_of(decision)]
    try:
        result = Router(policy, client).create(
            messages=user("x"), route=route, response_model=Answer
        )
        attempts, succeeded = result.attempts, True
        assert result.cost_usd == pytest.approx(sum(a.cost_usd for a in attempts))
    except EscalationError as e:
        attempts, succeeded = e.attempts, False
        assert e.cost_usd == pytest.approx(sum(a.cost_usd for a in attempts))

    climbed = [a.tier for a in attempts]
    assert climbed == allowed[: len(climbed)]  # in ladder order, one tier at a time
    assert len(set(climbed)) == len(climbed)  # never repeats a tier
    max_steps = decision.escalation.max_steps
    assert len(climbed) - 1 <= (max_steps if max_steps is not None else len(allowed))
    assert fake.models_called() == [MODELS[t] for t in climbed]

    triggers = decision.escalation.triggers
    outcomes = [script[t][0] for t in climbed]
    assert all(TRIGGER[o] in triggers for o in outcomes[:-1])  # climbed only when one fired
    last = outcomes[-1]
    fired = TRIGGER[last] in triggers
    at_top = len(climbed) == len(allowed)
    if succeeded:
        assert not fired and last not in HTTP_ERRORS
        assert attempts[-1].trigger is None
        if last == "ok":
            assert result.parsed == Answer(answer="a", confidence=0.9)
    else:
        # It stopped at the top, or on a failure it may not (or no tier would) escalate.
        assert (fired and at_top) or (last in HTTP_ERRORS and (at_top or not fired))
    for a in attempts:
        i, o, cw, cr = script[a.tier][1]
        tier = next(t for t in policy.tiers if t.name == a.tier)
        expected = tier.cost(i, o, cw, cr) if a.status == 200 else 0.0
        assert a.cost_usd == pytest.approx(expected)
