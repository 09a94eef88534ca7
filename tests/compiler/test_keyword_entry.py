"""decide(**attributes), the generated keyword entry, against decide(Request(**attributes)).

The keyword entry runs the policy's code over its parameters without making a Request
(compiler/entry.py); these properties hold it to the full path on random policies and
random keyword arguments, valid or not: the same Decision (every field, `to_dict()`, the
explanation), or the same error; the same classifier calls; and the rule the reference
(top-to-bottom) reading names.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import Reference
from strategies import (
    DOMAINS,
    ODD_NUMBERS,
    TASKS,
    USER_TIERS,
    answers,
    interleaved_policies,
    policies,
    prompts,
)

import policyroute
from policyroute import Classification, Request, RequestError, StaticClassifier
from policyroute.compiler import codegen

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# A few wrong or unusual values of each kind: the keyword entry's guards let only the
# common valid form through, so these exercise its hand-over to the full path.
ODD_TEXT = [3, b"x", ["a"], True]
ODD_COUNT = [-1, 3.0, 2.5, True, "3", float("nan"), 10**400]
ODD_FLAG = [0, 1, None, "yes"]


def _maybe(valid: st.SearchStrategy[Any], odd: list[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(valid, valid, valid, st.sampled_from(odd))


@st.composite
def keywords(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword attributes as a caller gives them: any subset, mostly valid."""
    meta: dict[str, Any] = {}
    if draw(st.booleans()):
        meta["priority"] = draw(st.sampled_from(["high", "low", 3, True]))
    if draw(st.booleans()):
        meta["score"] = draw(
            st.one_of(st.integers(-2, 9), st.floats(0, 9), st.sampled_from(ODD_NUMBERS))
        )
    pool: dict[str, st.SearchStrategy[Any]] = {
        "prompt": _maybe(prompts(), ODD_TEXT),
        "system": _maybe(prompts(), ODD_TEXT),
        "text": _maybe(prompts(), ODD_TEXT),
        "task": _maybe(st.sampled_from(TASKS), ODD_TEXT),
        "domain": st.sampled_from(DOMAINS),
        "user_tier": st.sampled_from(USER_TIERS),
        "user_id": st.sampled_from(["u1", "u2"]),
        "files": _maybe(st.integers(0, 10), ODD_COUNT),
        "context_tokens": _maybe(st.integers(0, 100_000), ODD_COUNT),
        "output_tokens": st.integers(0, 5000),
        "turns": _maybe(st.integers(0, 6), ODD_COUNT),
        "metadata": st.one_of(st.just(meta), st.sampled_from([{}, None, [1], {"k": [1]}, {1: 2}])),
        "has_tools": _maybe(st.booleans(), ODD_FLAG),
        "has_images": st.booleans(),
        "classifiers": st.one_of(
            answers(), st.just({"kind": "hard"}), st.just({"kind": {"label": 3}})
        ),
        "spend": st.sampled_from([{}, {"spend.user.day": 2.5}, {"spend.user.day": -1}]),
    }
    names = draw(st.lists(st.sampled_from(sorted(pool)), unique=True, max_size=8))
    out = {name: draw(pool[name]) for name in names}
    if draw(st.integers(0, 20)) == 0:
        out["no_such_attribute"] = 1
    return out


def _full(policy: policyroute.Policy, kw: dict[str, Any], **call: Any) -> Any:
    """decide() on a Request made from the keywords: the full path, or the error it raises."""
    try:
        request = Request(**kw)
    except TypeError:  # an unknown name: decide() says so as a RequestError
        with pytest.raises(RequestError) as raised:
            policy.decide(**kw, **call)
        return raised.value
    except RequestError as e:
        return e
    return policy.decide(request, **call)


def _fast(policy: policyroute.Policy, kw: dict[str, Any], **call: Any) -> Any:
    try:
        return policy.decide(**kw, **call)
    except RequestError as e:
        return e


def _same(fast: Any, full: Any) -> None:
    if isinstance(full, Exception):
        assert isinstance(fast, type(full)) and str(fast) == str(full), (fast, full)
        return
    assert fast == full  # every field but the explanation
    assert fast.to_dict() == full.to_dict()
    assert fast.explanation == full.explanation


def _agree(text: str, cases: list[tuple[dict[str, Any], dict[str, Classification]]]) -> None:
    policy = policyroute.loads(text)
    ref = Reference(policy)
    for kw, given_answers in cases:
        classifier = StaticClassifier(given_answers)
        full = _full(policy, kw, classifier=classifier)
        fast = _fast(policy, kw, classifier=classifier)
        _same(fast, full)
        _same(_fast(policy, kw), _full(policy, kw))
        _same(_fast(policy, kw, explain=True), _full(policy, kw, explain=True))
        # The reference reads classifier answers from its argument alone, not the request.
        if not isinstance(full, Exception) and not kw.get("classifiers"):
            assert fast.rule == ref.decide(Request(**kw), given_answers), (text, kw)


@SETTINGS
@given(policies(), st.lists(st.tuples(keywords(), answers()), min_size=1, max_size=6))
def test_keywords_decide_as_the_request_does(text: str, cases: list) -> None:
    _agree(text, cases)


@SETTINGS
@given(interleaved_policies(), st.lists(st.tuples(keywords(), answers()), min_size=1, max_size=6))
def test_keywords_decide_as_the_request_does_on_interleaved_rules(text: str, cases: list) -> None:
    _agree(text, cases)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies(), st.lists(st.tuples(keywords(), answers()), min_size=1, max_size=4))
def test_keywords_agree_when_the_code_leaves_most_to_the_loop(text: str, cases: list) -> None:
    """With one attribute and one costly feature read inline, nearly every decision goes
    through the keyword entry's catch-up or its hand-over to the full path."""
    old = codegen.EAGER_MAX, codegen.LAZY_MAX
    codegen.EAGER_MAX, codegen.LAZY_MAX = 1, 1
    try:
        _agree(text, cases)
    finally:
        codegen.EAGER_MAX, codegen.LAZY_MAX = old


class Counting:
    def __init__(self, label: str) -> None:
        self.label = label
        self.calls: list[str] = []

    def classify(self, spec: Any, request: Request) -> Classification:
        self.calls.append(spec.name)
        return Classification(self.label, 0.9)


@SETTINGS
@given(
    st.one_of(policies(), interleaved_policies()),
    keywords(),
    st.sampled_from(["easy", "hard", "weird"]),
)
def test_keywords_ask_a_classifier_exactly_when_the_request_does(text, kw, label) -> None:
    policy = policyroute.loads(text)
    by_request, by_keywords = Counting(label), Counting(label)
    full = _full(policy, kw, classifier=by_request)
    fast = _fast(policy, kw, classifier=by_keywords)
    _same(fast, full)
    assert by_keywords.calls == by_request.calls


POLICY = """
tier haiku = "claude-haiku-4-5" { input 1 output 5 }
tier opus = "claude-opus-4-7" { input 5 output 25 }
rule long: length > 10 -> opus
default -> haiku
"""


def test_a_request_and_keywords_together_is_a_type_error() -> None:
    policy = policyroute.loads(POLICY)
    with pytest.raises(TypeError, match="not both"):
        policy.decide(Request("x"), task="format")
    with pytest.raises(TypeError, match="not both"):
        policy.decide({"prompt": "x"}, has_tools=True)


def test_an_unread_attribute_is_still_checked() -> None:
    """The policy reads only `length`; a wrong `task` is refused as Request refuses it."""
    policy = policyroute.loads(POLICY)
    with pytest.raises(RequestError, match="task: must be a string"):
        policy.decide(prompt="x", task=3)
    with pytest.raises(RequestError, match="files: must be 0 or more"):
        policy.decide(prompt="x", files=-1)
    with pytest.raises(RequestError, match="unknown attribute"):
        policy.decide(prompt="x", taks="format")


def test_an_integral_float_count_reads_as_the_request_reads_it() -> None:
    policy = policyroute.loads(POLICY.replace("length > 10", "files > 2"))
    assert policy.decide(prompt="x", files=3.0).rule == "long"
    assert policy.decide(prompt="x", files=2.0).rule == "default"
