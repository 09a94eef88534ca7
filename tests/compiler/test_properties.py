"""Property tests: the compiled diagram against the reference reading of the rules."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import Reference, phrase_in
from strategies import (
    ODD_WORDS,
    PHRASES,
    REGEXES,
    answers,
    interleaved_policies,
    policies,
    prompts,
    requests,
    same_attribute_policies,
    small_requests,
)

import policyroute
from policyroute import Classification, PolicyError, StaticClassifier
from policyroute.compiler import codegen, diagram, evaluator
from policyroute.compiler import phrases as phrases_mod
from policyroute.compiler.features import PhraseMatcher, compile_regex, regex_search
from policyroute.compiler.regexes import required_literals

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(policies(), st.lists(st.tuples(requests(), answers()), min_size=1, max_size=8))
def test_diagram_agrees_with_first_match_reading(text: str, cases: list) -> None:
    _agree(text, cases)


@SETTINGS
@given(interleaved_policies(), st.lists(st.tuples(requests(), answers()), min_size=1, max_size=8))
def test_interleaved_rule_kinds_agree_with_first_match_reading(text: str, cases: list) -> None:
    _agree(text, cases)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies(), st.lists(st.tuples(requests(), answers()), min_size=1, max_size=5))
def test_rules_evaluated_whole_agree_too(text: str, cases: list) -> None:
    """With the clause cap at 1, every rule with an `or` is walked as its own diagram, and
    with CHAIN_MIN at 2 every `and`/`or` is built group by group; with EAGER_MAX at 1 the
    evaluator's loop reads the attributes the generated code would."""
    old = evaluator.MAX_CLAUSES, diagram.CHAIN_MIN, codegen.EAGER_MAX
    evaluator.MAX_CLAUSES, diagram.CHAIN_MIN, codegen.EAGER_MAX = 1, 2, 1
    try:
        _agree(text, cases)
    finally:
        evaluator.MAX_CLAUSES, diagram.CHAIN_MIN, codegen.EAGER_MAX = old


def _agree(text: str, cases: list) -> None:
    """decide() (the bit-vector evaluator), decide(explain=True) (the diagram walk) and the
    reference interpreter name the same rule."""
    policy = policyroute.loads(text)
    ref = Reference(policy)
    tiers = {t.name for t in policy.tiers}
    for request, given_answers in cases:
        decision = policy.decide(request, classifier=StaticClassifier(given_answers))
        assert decision.tier in tiers
        expected = ref.decide(request, given_answers)
        assert decision.rule == expected, (text, request)
        explained = policy.decide(request, classifier=StaticClassifier(given_answers), explain=True)
        assert explained.rule == expected, (text, request)


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
@given(
    st.one_of(policies(), interleaved_policies()),
    requests(),
    st.sampled_from(["easy", "hard", "weird"]),
)
def test_classifier_is_asked_at_most_once_and_only_when_needed(text, request, label) -> None:
    policy = policyroute.loads(text)
    counting = CountingClassifier(Classification(label, 0.9))
    decision = policy.decide(request, classifier=counting)
    assert counting.calls in ([], ["kind"])
    # Asked only if the outcome depends on it: a failed classifier must then change nothing
    # when it was not asked.
    if not counting.calls:
        assert policy.decide(request).rule == decision.rule
    # ...and exactly when the diagram walk, which tests each rule's cheaper conditions
    # first, asks it.
    walking = CountingClassifier(Classification(label, 0.9))
    policy.decide(request, classifier=walking, explain=True)
    assert walking.calls == counting.calls, text


PHRASE_POOL = [*PHRASES, *ODD_WORDS, "a", "a a", "format x", "x x", "e", "-x", "ss", "日本 語"]


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.sampled_from(PHRASE_POOL), min_size=1, max_size=8),
    st.one_of(prompts(), st.text(alphabet="aAxX_ -\n日本ßsSﬁé\u0301\ud800", max_size=40)),
)
def test_phrase_matcher_matches_the_contract(phrases: list[str], text: str) -> None:
    """Overlapping, adjacent and Unicode phrases, found in one pass exactly as the slow
    reading of the contract finds them one by one."""
    for anchor_words in (phrases_mod.ANCHOR_WORDS, 1):  # anchors, and collapsing instead
        old = phrases_mod.ANCHOR_WORDS
        phrases_mod.ANCHOR_WORDS = anchor_words
        try:
            matcher = PhraseMatcher([p for p in phrases if p.strip()])
        finally:
            phrases_mod.ANCHOR_WORDS = old
        found = {matcher.phrases[i] for i in matcher.find(text)}
        for p in phrases:
            if p.strip():
                norm = " ".join(p.casefold().split())
                assert (norm in found) == phrase_in(p, text), (p, text, anchor_words)


_WHITE = [chr(c) for c in range(0x110000) if chr(c).isspace()]


@settings(max_examples=1000, deadline=None)
@given(
    st.text(
        st.one_of(
            st.characters(),  # any code point, lone surrogates too
            st.sampled_from(["ß", "ẞ", "İ", "Σ", "ς", "ﬁ", "K", "Ω", "ŉ", "ǰ", "Ꭰ", "ꭰ"]),
            st.sampled_from(_WHITE),
        )
    ),
    st.booleans(),
)
def test_fold_is_casefold_with_white_space_as_spaces(text: str, spaces: bool) -> None:
    """The automaton's input is str.casefold()'s UTF-8, with every white-space character a
    space when the policy has a phrase of several words."""
    expected = text.casefold()
    if spaces:
        expected = "".join(" " if c.isspace() else c for c in expected)
    assert phrases_mod.fold(text, spaces) == expected.encode("utf-8", "surrogatepass")


REGEX_ALPHABET = [
    "ab",
    "c",
    "x",
    "(",
    ")",
    "|",
    "*",
    "+",
    "?",
    ".",
    "[a-c]",
    "\\d",
    " ",
    "AB",
    "{2}",
]


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.sampled_from([r[1 : r.rindex("/")] for r in REGEXES]),
        st.lists(st.sampled_from(REGEX_ALPHABET), max_size=8).map("".join),
    ),
    st.booleans(),
    st.text(alphabet="abcxABX(| 0123\n", max_size=30),
)
def test_a_regex_is_skipped_only_when_it_cannot_match(pattern: str, icase: bool, text: str) -> None:
    """The prefilter's promise: when none of a regex's required literals is in the text
    (ignoring case), the regex does not match it."""
    try:
        regex = compile_regex(pattern, "i" if icase else "")
    except ValueError:
        return
    alts = required_literals(pattern)
    if alts is None:
        return
    matcher = PhraseMatcher([], alts)
    if not matcher.scan(text)[1]:
        assert not regex_search(regex, text), (pattern, alts, text)


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
