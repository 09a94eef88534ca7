"""Property tests: the compiled diagram against the reference reading of the rules."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import Reference, phrase_in
from strategies import (
    PHRASES,
    answers,
    policies,
    prompts,
    requests,
    same_attribute_policies,
    small_requests,
)

import policyroute
from policyroute import Classification, PolicyError, StaticClassifier
from policyroute.compiler import diagram
from policyroute.features import PhraseMatcher

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(policies(), st.lists(st.tuples(requests(), answers()), min_size=1, max_size=8))
def test_diagram_agrees_with_first_match_reading(text: str, cases: list) -> None:
    policy = policyroute.loads(text)
    ref = Reference(policy)
    tiers = {t.name for t in policy.tiers}
    for request, given_answers in cases:
        decision = policy.decide(request, classifier=StaticClassifier(given_answers))
        assert decision.tier in tiers
        assert decision.rule == ref.decide(request, given_answers), (text, request)


@SETTINGS
@given(policies(), st.lists(st.tuples(requests(), answers()), min_size=1, max_size=5))
def test_phrase_index_agrees_with_plain_chain(text: str, cases: list) -> None:
    """Every rule run indexed (or none) gives the same decisions."""
    indexed_everywhere = _compile_with_index_min(text, 1)
    never_indexed = _compile_with_index_min(text, 10**9)
    for request, given_answers in cases:
        c = StaticClassifier(given_answers)
        assert (
            indexed_everywhere.decide(request, classifier=c).rule
            == never_indexed.decide(request, classifier=c).rule
        )


def _compile_with_index_min(text: str, n: int) -> policyroute.Policy:
    old = diagram.INDEX_MIN_RUN
    diagram.INDEX_MIN_RUN = n
    try:
        return policyroute.loads(text)
    finally:
        diagram.INDEX_MIN_RUN = old


class CountingClassifier:
    def __init__(self, answer: Classification) -> None:
        self.answer = answer
        self.calls: list[str] = []

    def classify(self, spec, request):  # type: ignore[no-untyped-def]
        self.calls.append(spec.name)
        return self.answer


@SETTINGS
@given(policies(), requests(), st.sampled_from(["easy", "hard", "weird"]))
def test_classifier_is_asked_at_most_once_and_only_when_needed(text, request, label) -> None:
    policy = policyroute.loads(text)
    counting = CountingClassifier(Classification(label, 0.9))
    decision = policy.decide(request, classifier=counting)
    assert counting.calls in ([], ["kind"])
    # Asked only if the outcome depends on it: a failed classifier must then change nothing
    # when it was not asked.
    if not counting.calls:
        assert policy.decide(request).rule == decision.rule


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PHRASES), min_size=1, max_size=6), prompts())
def test_phrase_matcher_matches_the_contract(phrases: list[str], text: str) -> None:
    matcher = PhraseMatcher(phrases)
    found = {matcher.phrases[i] for i in matcher.find(text)}
    for p in phrases:
        assert (p.casefold() in found) == phrase_in(p, text), (p, text)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_gives_diagnostics_never_an_exception(text: str) -> None:
    try:
        policyroute.loads(text)
    except PolicyError as e:
        assert e.diagnostics
        for d in e.diagnostics:
            assert d.code[0] in "EW"
            d.render()
            d.to_json()


@settings(max_examples=300, deadline=None)
@given(policies(), st.data())
def test_mutated_policies_give_diagnostics_never_an_exception(
    text: str, data: st.DataObject
) -> None:
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    chars = list(text)
    for _ in range(data.draw(st.integers(1, 6))):
        op = rng.randrange(3)
        i = rng.randrange(len(chars))
        if op == 0:
            del chars[i]
        elif op == 1:
            chars.insert(i, rng.choice('"/#(){}[]:->=,.\\ \nx9_ék'))
        else:
            j = rng.randrange(len(chars))
            chars[i], chars[j] = chars[j], chars[i]
    try:
        policy = policyroute.loads("".join(chars))
    except PolicyError as e:
        assert all(d.code[0] in "EW" for d in e.diagnostics)
        for d in e.diagnostics:
            d.render()
    else:
        policy.decide(prompt="format the deadlock")


@pytest.mark.parametrize("depth", [65, 5000])
def test_deep_nesting_is_a_diagnostic(depth: int) -> None:
    text = 'tier a = "m" { input 1 output 1 }\nrule r: ' + "(" * depth + "has_tools" + ")" * depth
    text += " -> a\ndefault -> a\n"
    with pytest.raises(PolicyError) as e:
        policyroute.loads(text)
    assert e.value.diagnostics[0].code == "E006"


@SETTINGS
@given(same_attribute_policies(), st.lists(small_requests(), min_size=1, max_size=10))
def test_merged_splits_agree_with_first_match_reading(text: str, cases: list) -> None:
    policy = policyroute.loads(text)
    ref = Reference(policy)
    for request in cases:
        assert policy.decide(request).rule == ref.decide(request), (text, request)
