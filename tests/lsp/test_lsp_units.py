"""The language server's pure parts, in process: positions, completion places, quick fixes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policyroute.compiler.loader import load_path, load_text
from policyroute.lsp.complete import complete
from policyroute.lsp.fixes import fix_for
from policyroute.lsp.index import build_index
from policyroute.lsp.positions import UTF8, UTF16, UTF32, offset, position
from policyroute.syntax.source import Source

POLICIES = Path(__file__).resolve().parents[2] / "policies"
ENCODINGS = [UTF16, UTF8, UTF32]
# Text with line breaks, astral characters (two UTF-16 units, four UTF-8 bytes) and accents.
TEXTS = st.text(st.sampled_from(["a", " ", "\n", "\r", "é", "😀", "𝔘", "#", '"']), max_size=60)


@pytest.mark.parametrize("encoding", ENCODINGS)
@given(text=TEXTS, data=st.data())
def test_an_offset_survives_the_trip_to_a_position_and_back(
    encoding: str, text: str, data: st.DataObject
) -> None:
    source = Source(text)
    at = data.draw(st.integers(0, len(text)))
    line, character = position(source, at, encoding)
    assert offset(source, line, character, encoding) == at
    prefix = text[source.offset(line + 1, 1) : at]
    assert "\n" not in prefix
    if encoding == UTF16:
        assert character == len(prefix.encode("utf-16-le")) // 2


def test_a_position_past_the_line_or_the_text_is_its_end() -> None:
    source = Source("ab\ncd")
    assert offset(source, 0, 99, UTF16) == 2
    assert offset(source, 9, 0, UTF16) == 5


@pytest.mark.parametrize("path", sorted(POLICIES.glob("*.route")), ids=lambda p: p.stem)
def test_completion_answers_at_every_place_of_the_shipped_policies(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    index = build_index(load_path(path))
    for at in range(0, len(text), 7):
        for item in complete(index, text[:at]):
            assert item.label


@given(st.text(max_size=200))
def test_completion_never_fails_on_any_text(text: str) -> None:
    index = build_index(load_text(text))
    complete(index, text)


def test_completion_names_come_from_a_policy_that_does_not_parse_yet() -> None:
    text = 'tier a = "m" { input 1 output 2 }\nkeywords k = ["x"]\nrule r: prompt contains any '
    index = build_index(load_text(text))
    assert [i.label for i in complete(index, text)] == ["k"]
    assert [i.label for i in complete(index, text + "k -> ")] == ["a"]
    assert complete(index, text + '"a # b') == []  # inside a string


def test_a_fix_keeps_the_quotes_of_a_string() -> None:
    text = (
        'tier a = "m" { input 1 output 2 }\n'
        'classifier c using a labels ["calm"] prompt "p"\n'
        'rule r: c.label == "clam" -> a\ndefault -> a\n'
    )
    from policyroute.cli.check import check_loaded

    diagnostics, _, _ = check_loaded(load_text(text))
    (e203,) = [d for d in diagnostics if d.code == "E203"]
    fix = fix_for(e203)
    assert fix is not None and fix.text == "calm"
    assert text[fix.span.start - 1 : fix.span.end + 1] == '"clam"'


def test_without_the_lsp_extra_the_command_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    from policyroute.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pygls" else real(name, *a)
    )
    assert main(["lsp"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("policyroute lsp: the language server needs the lsp extra (pygls")
    assert "pip install 'policyroute[lsp]'" in err
