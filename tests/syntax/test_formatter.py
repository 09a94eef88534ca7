"""The formatter keeps the AST, is idempotent, and keeps comments."""

from __future__ import annotations

from pathlib import Path

import pytest
from analysis.strategies import policies
from hypothesis import given, settings

from policyroute.syntax.diagnostics import PolicyError
from policyroute.syntax.formatter import format_source
from policyroute.syntax.parser import parse
from policyroute.syntax.source import Source

# From this file, not the working directory: run from tests/, a relative path found nothing
# and the test collected no case at all.
ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "policies").rglob("*.route"))


def test_the_shipped_policies_are_found() -> None:
    assert len(FILES) >= 3


def _ast(text: str) -> object:
    module, diags = parse(Source(text))
    assert not diags
    return module


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_policies_round_trip(path: Path) -> None:
    text = path.read_text()
    once = format_source(text)
    assert _ast(once) == _ast(text)
    assert format_source(once) == once
    assert [ln.strip() for ln in text.splitlines() if ln.strip().startswith("#")] == [
        ln.strip() for ln in once.splitlines() if ln.strip().startswith("#")
    ]


@settings(max_examples=200, deadline=None)
@given(policies())
def test_generated_round_trip(text: str) -> None:
    once = format_source(text)
    assert _ast(once) == _ast(text)
    assert format_source(once) == once


def test_comments_and_blank_lines() -> None:
    text = (
        '# head\n\n\n\ntier a = "m" { input 1 output 2 }   # cheap\n'
        'rule x:   task == "q"\n   or length < 3 -> a  # why\n'
        "# before default\ndefault -> a\n"
        'test "t" {\n  # about the prompt\n  prompt = "p"  # trailing\n} -> a\n'
    )
    out = format_source(text)
    assert out == (
        "# head\n\n"
        'tier a = "m" { input 1  output 2 }  # cheap\n'
        'rule x: task == "q" or length < 3  -> a  # why\n'
        "# before default\n"
        "default                            -> a\n"
        'test "t" {\n  # about the prompt\n  prompt = "p"  # trailing\n} -> a\n'
    )


def test_nested_or_keeps_parentheses() -> None:
    text = (
        'tier a = "m" { }\nrule x: task == "a" or (task == "b" or has_tools) -> a\ndefault -> a\n'
    )
    assert _ast(format_source(text)) == _ast(text)


def test_unparsable_is_refused() -> None:
    with pytest.raises(PolicyError):
        format_source("rule x: -> \n")
