"""Properties of the analysis: lints, witnesses, diff and counterfactuals."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policyroute
from policyroute import Request
from policyroute.analysis import counterfactual, diff, lint, witness
from policyroute.analysis.containment import contains_at_boundaries
from policyroute.analysis.witness import decide_json, regex_sample

from .strategies import HEADER, policies, requests

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _policy(body: str) -> policyroute.Policy:
    return policyroute.loads(HEADER + body)


# -- examples -------------------------------------------------------------------------------


def test_impossible_condition_is_w001() -> None:
    p = _policy("rule r: length < 100 and length > 500 -> opus\ndefault -> haiku\n")
    (d,) = lint(p)
    assert d.code == "W001" and "holds for no request" in d.message


def test_shadowed_rule_names_the_shadowing_rules() -> None:
    p = _policy(
        'rule a: task == "x" -> opus\nrule b: length < 10 -> opus\n'
        'rule c: task == "x" and length < 5 -> haiku\ndefault -> haiku\n'
    )
    (d,) = lint(p)
    assert d.code == "W001" and "'a'" in d.message and "'b'" not in d.message


# Policies and the lint codes they draw: (id, rules, codes).
LINT_CASES = [
    # whole numbers only: nothing lies strictly between 3 and 4
    (
        "integer_gap_is_empty",
        "rule r: files > 3 and files < 4 -> opus\ndefault -> haiku\n",
        ["W001"],
    ),
    (
        "contained_phrase_implies",
        'rule a: prompt contains "imports" -> opus\n'
        'rule b: prompt contains "sort imports" -> haiku\ndefault -> haiku\n',
        ["W001"],
    ),
    # the other way round both are reachable
    (
        "containing_phrase_first",
        'rule a: prompt contains "sort imports" -> opus\n'
        'rule b: prompt contains "imports" -> haiku\ndefault -> haiku\n',
        [],
    ),
    (
        "default_unreachable_is_w002",
        "rule a: has_tools -> opus\nrule b: not has_tools -> haiku\ndefault -> sonnet\n",
        ["W002"],
    ),
    # Both outcomes of a regex stay possible, so neither rule is reported...
    (
        "unknown_regex_is_both_ways",
        "rule a: prompt matches /(?i)z{3}q/ -> opus\n"
        "rule b: prompt matches /(?i)z{3}q/ and has_tools -> haiku\ndefault -> sonnet\n",
        ["W001"],
    ),
    # ...and a regex and its negation cover every request.
    (
        "regex_and_its_negation",
        "rule a: not (prompt matches /[a-z]+/) -> opus\n"
        "rule b: prompt matches /[a-z]+/ -> haiku\ndefault -> sonnet\n",
        ["W002"],
    ),
]


@pytest.mark.parametrize(
    ("rules", "codes"), [c[1:] for c in LINT_CASES], ids=[c[0] for c in LINT_CASES]
)
def test_lint_codes(rules: str, codes: list[str]) -> None:
    assert [d.code for d in lint(_policy(rules))] == codes


def test_containment_is_at_word_boundaries() -> None:
    assert contains_at_boundaries("sort imports", "imports")
    assert not contains_at_boundaries("reimports", "imports")


def test_classifier_witness() -> None:
    p = policyroute.loads(
        HEADER + 'classifier c using haiku labels ["easy", "hard"] prompt "?"\n'
        'rule r: c.label == "hard" and c.confidence > 0.5 -> opus\ndefault -> haiku\n'
    )
    w = witness(p, "r")
    assert w is not None and w["route"]["classifiers"]["c"]["label"] == "hard"
    assert decide_json(p, w) == ("opus", "r")


def test_regex_samples() -> None:
    for pattern, flags in [
        (r"\b(ORD|INV)-[0-9]{6,}\b", ""),
        (r"^\s+at \S+ \(\S+:\d+:\d+\)$", "m"),
        (r"\bselect\b.+\bjoin\b", "i"),
    ]:
        assert regex_sample(pattern, flags) is not None


def test_example_policies_have_witnesses() -> None:
    for path in (
        "policies/coding-assistant.route",
        "policies/saas-support.route",
        "policies/document-pipeline.route",
    ):
        p = policyroute.load(path)
        assert lint(p) == []
        for r in p.rules:
            w = witness(p, r.name)
            assert w is not None, r.name
            assert decide_json(p, w) == (r.tier, r.name)


def test_diff_equivalences() -> None:
    a = _policy(
        'keywords k = ["deadlock"]\nrule x: prompt contains any k -> opus\n'
        'rule y: task == "t" -> haiku\ndefault -> sonnet\n'
    )
    b = _policy(
        'keywords renamed = ["Deadlock"]\nrule x2:   prompt  contains any renamed -> opus\n'
        'rule y: task == "t" -> haiku\ndefault -> sonnet\n'
    )
    assert diff(a, b) == []
    # Reordering rules that do not overlap.
    r1 = _policy('rule y: task == "t" -> haiku\nrule z: task == "u" -> opus\ndefault -> sonnet\n')
    r2 = _policy('rule z: task == "u" -> opus\nrule y: task == "t" -> haiku\ndefault -> sonnet\n')
    assert diff(r1, r2) == []
    c = _policy(
        'keywords k = ["deadlock"]\nrule y: task == "t" -> haiku\n'
        "rule x: prompt contains any k -> opus\ndefault -> sonnet\n"
    )
    found = diff(a, c)
    assert [(d.old_rule, d.new_rule) for d in found] == [("x", "y")]
    assert found[0].witness is not None


def test_counterfactual_names_a_rule() -> None:
    p = _policy("rule huge: context_tokens > 60000 -> opus\ndefault -> haiku\n")
    req = Request("hi", context_tokens=10)
    lines = counterfactual(p, req, p.decide(req, explain=True))
    assert lines == ["would go to opus by rule huge if context_tokens > 60000"]


# -- properties -----------------------------------------------------------------------------


@SETTINGS
@given(policies(), st.lists(requests(), min_size=1, max_size=20))
def test_unreachable_rules_never_decide(text: str, reqs: list[Request]) -> None:
    p = policyroute.loads(text)
    dead = {d.message.split("'")[1] for d in lint(p) if d.code == "W001"}
    default_dead = any(d.code == "W002" for d in lint(p))
    for r in reqs:
        rule = p.decide(r).rule
        assert rule not in dead
        assert not (default_dead and rule == "default")


@SETTINGS
@given(policies())
def test_witnesses_are_decided_by_their_rule(text: str) -> None:
    p = policyroute.loads(text)
    dead = {d.message.split("'")[1] for d in lint(p) if d.code == "W001"}
    if any(d.code == "W002" for d in lint(p)):
        dead.add("default")
    for r in p.rules:
        w = witness(p, r.name)
        if r.name in dead:
            assert w is None
        else:
            assert w is not None, (r.name, text)
            assert decide_json(p, w) == (r.tier, r.name)


@SETTINGS
@given(policies(max_rules=4), policies(max_rules=4), st.lists(requests(), min_size=1, max_size=20))
def test_diff_is_sound_and_complete(old_text: str, new_text: str, reqs: list[Request]) -> None:
    old, new = policyroute.loads(old_text), policyroute.loads(new_text)
    found = diff(old, new)
    pairs = {(d.old_rule, d.new_rule) for d in found}
    for d in found:
        if d.witness is not None:
            assert decide_json(old, d.witness) == (d.old_tier, d.old_rule)
            assert decide_json(new, d.witness) == (d.new_tier, d.new_rule)
    for r in reqs:
        a, b = old.decide(r), new.decide(r)
        if a.tier != b.tier:
            assert (a.rule, b.rule) in pairs
    assert diff(old, policyroute.loads(old_text)) == []


@SETTINGS
@given(policies(), requests())
def test_counterfactual_changes_tier(text: str, req: Request) -> None:
    p = policyroute.loads(text)
    d = p.decide(req, explain=True)
    for line in counterfactual(p, req, d):
        assert line.startswith("would go to ") and not line.startswith(f"would go to {d.tier} ")
