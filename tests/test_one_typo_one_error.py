"""One typo, one error (issue 24): a statement cut short (`rule x: prompt contains` with
nothing after it) is reported once, and no valid statement after it gets an E001."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyroute.cli.check import check_loaded
from policyroute.compiler.loader import load_text
from policyroute.syntax.keywords import STATEMENT_KEYWORDS

POLICIES = sorted((Path(__file__).resolve().parent.parent / "policies").glob("*.route"))
CUT_SHORT = [
    "rule x: prompt contains",
    "rule x: prompt contains any",
    "rule x: length >",
    "rule x: task in [",
    "rule x:",
    "rule x: prompt matches",
    "tier t =",
    "keywords k = [",
    'test "t" {',
]


def statement_lines(text: str) -> list[int]:
    """Lines where a statement starts (a statement keyword at the start of the line)."""
    return [
        i
        for i, line in enumerate(text.splitlines())
        if line.split(" ", 1)[0] in STATEMENT_KEYWORDS
    ]


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_a_statement_cut_short_is_one_error(path: Path, data: st.DataObject) -> None:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    at = data.draw(st.sampled_from(statement_lines(text)[1:]))
    typo = data.draw(st.sampled_from(CUT_SHORT))
    broken = "\n".join([*lines[:at], typo, *lines[at:]]) + "\n"
    diagnostics, _, _ = check_loaded(load_text(broken, path.name, path=path))
    syntax = [d for d in diagnostics if d.code.startswith("E0")]
    # At most the one error, on the typo's line (a cut-short `contains any` before
    # `default -> T` reads as a set named default: valid syntax, and the missing default is
    # E107), never one on the valid lines after it.
    assert len(syntax) <= 1, [d.render() for d in syntax]
    assert all(d.line == at + 1 for d in syntax), [d.render() for d in syntax]
