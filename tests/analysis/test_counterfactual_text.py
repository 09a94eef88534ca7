"""The counterfactual names the phrases the request really holds, not a group's first member."""

from __future__ import annotations

from pathlib import Path

import policyroute
from policyroute.analysis import counterfactual

CODING = Path(__file__).resolve().parents[2] / "policies" / "coding-assistant.route"


def test_removing_a_phrase_names_the_phrase_found() -> None:
    policy = policyroute.load(CODING)
    request = policyroute.Request("Find the deadlock between these two worker pools")
    decision = policy.decide(request, explain=True)
    lines = counterfactual(policy, request, decision)
    assert 'would go to haiku by rule tiny if prompt did not contain "deadlock"' in lines
    assert not any("race condition" in line for line in lines)


def test_adding_a_phrase_names_the_group() -> None:
    policy = policyroute.load(CODING)
    request = policyroute.Request("Please rename this variable")
    lines = counterfactual(policy, request, policy.decide(request, explain=True))
    assert any(
        line.startswith("would go to opus by rule hard_words if prompt contained one of")
        for line in lines
    )


def test_a_lone_surrogate_in_the_prompt_is_explained_not_raised() -> None:
    # UTF-8 cannot carry a lone surrogate; the regex reads it as U+FFFD, as decide() does.
    policy = policyroute.load(CODING)
    request = policyroute.Request("Traceback (most recent call last) \ud800 in the worker")
    decision = policy.decide(request, explain=True)
    assert decision.rule == "stack_trace"
    lines = counterfactual(policy, request, decision)
    assert any("if prompt did not match /Traceback" in line for line in lines)
