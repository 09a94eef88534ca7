"""The `shadow TIER sample N%` statement: parsed, checked, formatted and exposed by Policy."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import policyroute
from policyroute.syntax import ast
from policyroute.syntax.formatter import format_source
from policyroute.syntax.parser import parse
from policyroute.syntax.source import Source

TIERS = ("haiku", "sonnet", "opus")
HEADER = """policy "p"
tier haiku  = "claude-haiku-4-5"  { input 1.00  output 5.00 }
tier sonnet = "claude-sonnet-4-6" { input 3.00  output 15.00 }
tier opus   = "claude-opus-4-7"   { input 5.00  output 25.00 }
"""


def _codes(text: str) -> list[str]:
    try:
        policyroute.loads(text)
    except policyroute.PolicyError as e:
        return sorted(d.code for d in e.diagnostics if d.is_error)
    return []


def test_parses_to_a_node_with_spans() -> None:
    text = HEADER + "default -> opus\nshadow haiku sample 5%\n"
    module, diags = parse(Source(text))
    assert not diags
    node = module.statements[-1]
    assert isinstance(node, ast.ShadowDecl)
    assert node.tier.name == "haiku" and node.percent.value == 5
    assert text[node.tier.span.start : node.tier.span.end] == "haiku"
    assert text[node.percent.span.start : node.percent.span.end] == "5"


def test_policy_exposes_shadows_by_routed_tier() -> None:
    policy = policyroute.loads(
        HEADER
        + "rule quick: length < 10 -> haiku\nrule mid: length < 100 -> sonnet\ndefault -> opus\n"
        + "shadow sonnet sample 2.5%\nshadow haiku sample 5%\n"
    )
    assert [(s.tier.name, s.share) for s in policy.shadows] == [("haiku", 0.05), ("sonnet", 0.025)]
    assert policy.shadows_for("haiku") == ()
    assert [s.tier.name for s in policy.shadows_for("sonnet")] == ["haiku"]
    assert [s.tier.name for s in policy.shadows_for("opus")] == ["haiku", "sonnet"]
    assert policyroute.loads(HEADER + "default -> opus\n").shadows == ()


@pytest.mark.parametrize(
    ("statements", "codes"),
    [
        ("shadow haiku sample 5%", []),
        ("shadow haiku sample 100%", []),
        ("shadow haiku sample 0.01%", []),
        ("shadow haiku sample 0%", ["E204"]),
        ("shadow haiku sample 101%", ["E204"]),
        ("shadow haiku sample -1%", ["E204"]),
        ("shadow haiku sample 5%\nshadow haiku sample 6%", ["E118"]),
        ("shadow opus sample 5%", ["E119"]),
        ("shadow nope sample 5%", ["E102"]),
    ],
)
def test_checked(statements: str, codes: list[str]) -> None:
    assert _codes(HEADER + "rule q: length < 10 -> haiku\ndefault -> opus\n" + statements) == codes


def test_shadow_needs_a_tier_below_the_routed_ones() -> None:
    # Everything goes to sonnet: shadowing sonnet itself or opus can never happen.
    base = HEADER + "default -> sonnet\n"
    assert _codes(base + "shadow haiku sample 1%") == []
    assert _codes(base + "shadow sonnet sample 1%") == ["E119"]
    assert _codes(base + "shadow opus sample 1%") == ["E119"]


def test_shadow_counts_as_using_its_tier() -> None:
    policy = policyroute.loads(HEADER + "default -> opus\nshadow haiku sample 1%\n")
    assert not [w for w in policy.warnings if w.code == "W003" and "haiku" in w.message]


def test_a_file_with_a_shadow_is_not_an_import_library() -> None:
    assert "E107" in _codes(HEADER + "shadow haiku sample 1%\n")


def test_sample_and_shadow_are_keywords() -> None:
    for word in ("sample", "shadow"):
        text = HEADER + f'keywords {word} = ["x"]\nrule r: prompt contains any {word} -> haiku\n'
        assert "E117" in _codes(text + "default -> opus\n")


def test_format_is_canonical_and_keeps_comments() -> None:
    text = HEADER + "default -> opus\n\n# sample cheaply\nshadow   haiku\n  sample 5 %  # five\n"
    once = format_source(text)
    assert once.endswith("# sample cheaply\nshadow haiku sample 5%  # five\n")
    assert format_source(once) == once


percents = st.sampled_from(["5", "0.5", "100", "12.25", "1_0", "33"])
spaces = st.sampled_from([" ", "  ", "\n", " \n  "])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(TIERS), percents, spaces, spaces), max_size=3),
    st.sampled_from(TIERS),
    st.booleans(),
)
def test_round_trip_and_check_agree_with_a_reference(
    shadows: list[tuple[str, str, str, str]], default: str, comment: bool
) -> None:
    text = HEADER + "rule q: length < 10 -> haiku\n" + f"default -> {default}\n"
    for tier, pct, sp1, sp2 in shadows:
        text += f"shadow{sp1}{tier} sample{sp2}{pct}%" + ("  # why\n" if comment else "\n")
    once = format_source(text)
    assert parse(Source(once))[0] == parse(Source(text))[0]
    assert format_source(once) == once
    # The reference: one statement per tier, each below the highest routed tier.
    routed = max(TIERS.index("haiku"), TIERS.index(default))
    tiers = [t for t, *_ in shadows]
    expected = set()
    if len(set(tiers)) != len(tiers):
        expected.add("E118")
    if any(TIERS.index(t) >= routed for t in tiers):
        expected.add("E119")
    assert set(_codes(text)) == expected
    if not expected:
        policy = policyroute.loads(text)
        assert {s.tier.name for s in policy.shadows} == set(tiers)


@pytest.mark.timeout(20)
def test_a_broken_statement_with_long_white_space_is_located_promptly() -> None:
    # Regression: the end of a statement cut short was once found by a regex that backtracked
    # exponentially on long runs of white space (the hostile-input fuzz found it).
    text = HEADER + "default -> opus\nshadow haiku sample 5" + " \t" * 20_000 + "#c\n" * 3
    text += "rule x: length < 1 -> haiku\n"
    _, diags = parse(Source(text))
    assert [d.code for d in diags] == ["E001"]
    line, _ = diags[0].source.line_col(diags[0].span.start)
    assert line == text[: text.index("shadow")].count("\n") + 1  # the shadow line, not the end
