"""`policyroute judge` on careless input (issue 25): nothing judged, odd amounts, long numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_anthropic import FakeAnthropic
from pairs_support import outcomes, pair, write

from policyroute.cli import main


def judge(tmp_path: Path, *args: str) -> int:
    return main(["judge", *args, "--cache", str(tmp_path / "cache.sqlite")])


def test_reference_mode_with_no_pair_judged_exits_1(
    fake: FakeAnthropic, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write(tmp_path / "pairs.jsonl", [pair("a", "hi", "x", "y"), pair("b", "yo", "x", "z")])
    out = tmp_path / "out.jsonl"
    assert judge(tmp_path, str(src), "--mode", "reference", "-o", str(out)) == 1
    err = capsys.readouterr().err
    assert "0 of 2 pair(s) judged" in err and "policyroute judge: no pair was judged" in err
    assert outcomes(out) == []
    with_ref = write(tmp_path / "ref.jsonl", [pair("c", "hi", "yes", "no", reference="yes")])
    assert judge(tmp_path, str(with_ref), "--mode", "reference", "-o", str(out)) == 0


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (0.001, "$0.001"),
        (0.25, "$0.25"),
        (2.0, "$2.00"),
        (0.0000125, "$0.0000125"),
        (1234.5, "$1,234.50"),
    ],
)
def test_amounts_keep_the_digits_they_need(amount: float, shown: str) -> None:
    from policyroute.cli.judge import usd

    assert usd(amount) == shown


def test_confirm_above_a_tenth_of_a_cent_says_so(
    fake: FakeAnthropic, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompt = "Explain this. " * 400
    src = write(tmp_path / "pairs.jsonl", [pair("a", prompt, "x" * 2000, "y" * 2000)])
    out = tmp_path / "out.jsonl"
    args = ["--judge-tier", "opus", "-o", str(out), "--confirm-above", "0.001"]
    assert judge(tmp_path, str(src), *args) == 1
    assert "the estimate is above $0.001: rerun with --yes" in capsys.readouterr().err


def test_pairs_with_long_integers_are_located(
    fake: FakeAnthropic, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = json.dumps(pair("c", "hi", "yes", "no", reference="yes"))
    src = tmp_path / "pairs.jsonl"
    src.write_text(good + '\n{"kind": "shadow_pair", "id": ' + "7" * 5000 + "}\n")
    out = tmp_path / "out.jsonl"
    assert judge(tmp_path, str(src), "--mode", "reference", "-o", str(out)) == 1
    err = capsys.readouterr().err
    assert "pairs.jsonl:2: integer of 5000 digits (at most 308 are read) at column 31" in err
    assert len(outcomes(out)) == 2
