"""Witnesses of long texts and long conversations are described, never materialised."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyroute import loads
from policyroute.analysis import diff, witness
from policyroute.cli import main

HEADER = 'tier haiku = "h" { input 1 output 5 }\ntier opus = "o" { input 5 output 25 }\n'
HUGE = 100_000_000_000_000


def _policy(body: str) -> str:
    return HEADER + 'keywords hard = ["deadlock"]\n' + body


def test_explain_describes_a_text_of_a_huge_bound(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "p.route"
    path.write_text(
        _policy(
            f"rule h: prompt contains any hard -> opus\nrule tiny: length < {HUGE} -> haiku\ndefault -> opus\n"
        )
    )
    assert main(["explain", str(path), "--rule", "default"]) == 0
    out, err = capsys.readouterr()
    assert len(out) < 2000
    text = json.loads(out)["messages"][-1]["content"]["$text"]
    assert text["length"] == HUGE and text["excludes"] == ["deadlock"]
    assert "100,000,000,000,000 characters" in err


def test_explain_of_a_hundred_million_prints_no_hundred_megabytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "p.route"
    path.write_text(_policy("rule tiny: length < 100000000 -> haiku\ndefault -> opus\n"))
    assert main(["explain", str(path), "--rule", "default", "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert len(out) < 2000
    assert json.loads(out)["request"]["messages"][0]["content"]["$text"]["length"] == 100_000_000


def test_diff_against_a_doubled_bound_describes_its_witness(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = tmp_path / "old.route", tmp_path / "new.route"
    old.write_text(_policy(f"rule tiny: length < {HUGE} -> haiku\ndefault -> opus\n"))
    new.write_text(_policy(f"rule tiny: length < {2 * HUGE} -> haiku\ndefault -> opus\n"))
    assert main(["diff", str(old), str(new), "--format", "json"]) == 1
    (region,) = json.loads(capsys.readouterr().out)
    assert region["witness"]["messages"][0]["content"]["$text"]["length"] == HUGE


def test_many_turns_and_a_long_prompt_with_phrases_and_a_regex() -> None:
    policy = loads(
        _policy(
            f"rule many: turns > {HUGE} and length > 5000000 and prompt contains any hard"
            " and prompt matches /ab+c/ -> haiku\ndefault -> opus\n"
        )
    )
    found = witness(policy, "many")
    assert found is not None and len(json.dumps(found)) < 2000
    first, last = found["messages"]
    assert first == {"$earlier_messages": HUGE, "content": "."}
    text = last["content"]["$text"]
    assert text["length"] == 5_000_001 and text["contains"] == ["deadlock"]
    assert text["matches"] == ["/ab+c/"] and "abc" in text["starts"]


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=4 * 10**14))
def test_a_witness_reaches_any_bound_without_building_it(bound: int) -> None:
    policy = loads(_policy(f"rule tiny: length < {bound} -> haiku\ndefault -> opus\n"))
    found = witness(policy, "default")
    assert found is not None
    content = found["messages"][0]["content"]
    if bound <= 4096:  # long_text.LONG_TEXT
        assert content == " " * bound
    else:
        assert content["$text"]["length"] == bound
    old = loads(_policy(f"rule tiny: length < {bound} -> haiku\ndefault -> opus\n"))
    new = loads(_policy(f"rule tiny: length < {bound * 2} -> haiku\ndefault -> opus\n"))
    (d,) = diff(old, new)
    assert d.witness is not None


def test_counterfactuals_name_a_huge_bound_without_building_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "p.route"
    path.write_text(_policy(f"rule tiny: length < {HUGE} -> haiku\ndefault -> opus\n"))
    assert main(["route", str(path), "--prompt", "hi", "--explain"]) == 0
    out = capsys.readouterr().out
    assert f"would go to opus by the default if (length is missing or length >= {HUGE})" in out
