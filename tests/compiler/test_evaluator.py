"""Example tests of the evaluator on hostile shapes and odd values (issue 15's reproductions)."""

from __future__ import annotations

import pytest

import policyroute
from policyroute import PolicyError, Request
from policyroute.compiler.features import REGEX_MAX_CHARS
from policyroute.compiler.regexes import required_literals

TIERS = 'tier a = "m" { input 1 output 1 }\ntier b = "n" { input 1 output 1 }\n'


# The language's limits (E008): 256 tests in a condition, 1,000 rules, 256-character phrases.


def test_an_and_of_256_metadata_tests_compiles_and_explains() -> None:
    cond = " and ".join(f'metadata.k{i} == "v"' for i in range(256))
    policy = policyroute.loads(TIERS + f"rule r: {cond} -> b\ndefault -> a\n")
    every = {f"k{i}": "v" for i in range(256)}
    assert policy.decide(metadata=every).rule == "r"
    assert policy.decide(metadata={**every, "k255": "w"}).rule == "default"
    assert policy.decide(metadata=every, explain=True).rule == "r"  # the diagram, no recursion


def test_an_or_of_256_tests_on_distinct_keys() -> None:
    cond = " or ".join(f"metadata.k{i} > {i}" for i in range(256))
    policy = policyroute.loads(TIERS + f"rule r: {cond} -> b\ndefault -> a\n")
    assert policy.decide(metadata={"k255": 5000}).rule == "r"
    assert policy.decide(metadata={"k255": 5}).rule == "default"


def test_many_rules_on_one_number() -> None:
    rules = "".join(f"rule r{i}: files > {1000 - i} -> {'ab'[i % 2]}\n" for i in range(1000))
    policy = policyroute.loads(TIERS + rules + "default -> a\n")
    assert policy.decide(files=999).rule == "r2"
    assert policy.decide(files=999, explain=True).rule == "r2"
    assert policy.decide(files=1).rule == "default"


def test_a_long_phrase_loads_decides_and_is_freed() -> None:
    """pyahocorasick crashed the process freeing an automaton holding such a word."""
    phrase = " ".join(["word"] * 51)  # 254 characters
    policy = policyroute.loads(TIERS + f'rule r: prompt contains "{phrase}" -> b\ndefault -> a\n')
    assert policy.decide(prompt=phrase + ".").rule == "r"
    assert policy.decide(prompt="word word").rule == "default"
    del policy
    policyroute.loads(TIERS + 'rule r: prompt contains "x" -> b\ndefault -> a\n')


@pytest.mark.parametrize("value", [float("nan")])
def test_nan_compares_false(value: float) -> None:
    policy = policyroute.loads(
        TIERS
        + "rule seats: metadata.seats < 50 -> b\n"
        + "rule seats_high: metadata.seats >= 50 -> b\n"
        + "rule other: metadata.seats != 50 -> b\n"
        + "default -> a\n"
    )
    assert policy.decide(metadata={"seats": value}).rule == "other"
    assert policy.decide(metadata={"seats": value}, explain=True).rule == "other"


def test_huge_numbers_compare_exactly() -> None:
    big = 999_999_999_999_999  # the largest literal E007 allows
    policy = policyroute.loads(TIERS + f"rule r: metadata.n > {big} -> b\ndefault -> a\n")
    assert policy.decide(metadata={"n": 10**400}).rule == "r"
    assert policy.decide(metadata={"n": big}).rule == "default"
    assert policy.decide(metadata={"n": -(10**400)}).rule == "default"
    assert policy.decide(metadata={"n": float("inf")}).rule == "r"
    assert policy.decide(metadata={"n": 10**400}, explain=True).rule == "r"


def test_a_lone_surrogate_reaches_no_exception() -> None:
    policy = policyroute.loads(TIERS + "rule r: prompt matches /x.y/ -> b\ndefault -> a\n")
    assert policy.decide(prompt="x\ud800y").rule == "r"
    assert policy.decide(prompt="\ud800 x").rule == "default"


def test_a_regex_reads_the_first_65536_characters() -> None:
    policy = policyroute.loads(TIERS + "rule r: prompt matches /needle/ -> b\ndefault -> a\n")
    assert policy.decide(prompt="x" * (REGEX_MAX_CHARS - 6) + "needle").rule == "r"
    assert policy.decide(prompt="x" * REGEX_MAX_CHARS + "needle").rule == "default"


def test_a_slow_regex_is_refused() -> None:
    for pattern in (r"(\w|\s|.){1,1000}Z", r"[ab]*a[ab]{999}c"):
        with pytest.raises(PolicyError) as e:
            policyroute.loads(TIERS + f"rule r: prompt matches /{pattern}/ -> b\ndefault -> a\n")
        assert e.value.diagnostics[0].code == "E304"


def test_required_literals() -> None:
    trace = r"Traceback \(most recent call last\)|\bat [\w.$]+\([\w$]+\.java:\d+\)|goroutine \d+ \[running\]"
    alts = required_literals(trace)
    assert alts is not None and "traceback" in {a.lower() for a in alts}
    assert required_literals(r"\b(ORD|INV)-[0-9]{6,}\b") == ("INV", "ORD")
    assert required_literals(r"[0-9]{3}") is None  # no literal
    assert required_literals(r"[[:alpha:]]+x") is None  # Python would misread the class
    assert required_literals(r"ab?c") is None  # too short to help


def test_a_regex_without_its_literal_is_not_run() -> None:
    policy = policyroute.loads(
        TIERS + r"rule r: prompt matches /Traceback \(most/ -> b" + "\ndefault -> a\n"
    )
    assert policy.decide(Request("no trace here")).rule == "default"
    assert policy.decide(Request("Traceback (most recent call last)")).rule == "r"
    assert policy.decide(Request("TRACEBACK (most")).rule == "default"  # case-sensitive regex


def test_a_phrase_of_many_words_spans_runs_of_white_space() -> None:
    words = [f"w{i}" for i in range(20)]
    policy = policyroute.loads(
        TIERS + f'rule r: prompt contains "{" ".join(words)}" -> b\ndefault -> a\n'
    )
    assert policy.decide(prompt="say " + "\n   ".join(words) + "!").rule == "r"
    assert policy.decide(prompt="say " + " ".join(words) + "x").rule == "default"
