"""Every E001, E201 and E301 carries a hint (issue 24), as every other diagnostic does, and a
file of comments only is named in its diagnostics."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyroute.cli.check import check_loaded
from policyroute.compiler.loader import load_path, load_text

POLICIES = sorted((Path(__file__).resolve().parent.parent / "policies").glob("*.route"))
EDITS = st.sampled_from(["", " ", "@", "'", "->", "(", ")", "[", '"', "==", "=", "3", "x", "\n"])
HINTED = ("E001", "E201", "E301")


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_a_mangled_policy_s_syntax_and_type_errors_have_hints(
    path: Path, data: st.DataObject
) -> None:
    text = path.read_text(encoding="utf-8")
    at = data.draw(st.integers(0, len(text)))
    cut = data.draw(st.integers(0, 12))
    broken = text[:at] + data.draw(EDITS) + text[at + cut :]
    diagnostics, _, _ = check_loaded(load_text(broken, path.name, path=path))
    for d in diagnostics:
        if d.code in HINTED:
            assert d.hint, d.render()


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ('rule r: length > "long" -> a', "E201"),
        ("rule r: task == 3 -> a", "E201"),
        ("rule r: has_tools == 1 -> a", "E201"),
        ('rule r: task in ["a", 2] -> a', "E201"),
        ('test "t" { files = "many" } -> a', "E201"),
        ("rule r: prompt matches /(ab/ -> a", "E301"),
        ("rule r: prompt matches /a{2,1}/ -> a", "E301"),
        ("rule r: prompt @ 3 -> a", "E001"),
        ("rule r prompt -> a", "E001"),
        ("rule r: task in [ -> a", "E001"),
    ],
)
def test_each_kind_has_a_hint(line: str, code: str) -> None:
    text = f'tier a = "claude-haiku-4-5" {{ input 1 output 5 }}\n{line}\ndefault -> a\n'
    diagnostics, _, _ = check_loaded(load_text(text, "p.route"))
    found = [d for d in diagnostics if d.code == code]
    assert found and all(d.hint for d in found), [d.render() for d in diagnostics]


@pytest.mark.parametrize("text", ["", "# only a comment\n", "\n\n   \n# a\n# b\n"])
def test_a_file_with_no_statement_is_named_in_its_diagnostics(text: str, tmp_path: Path) -> None:
    path = tmp_path / "empty.route"
    path.write_text(text)
    diagnostics, _, _ = check_loaded(load_path(path))
    assert {d.code for d in diagnostics} == {"E106", "E107"}
    assert all(d.source.path == path.resolve() for d in diagnostics)
    assert all(d.location().rsplit(":", 2)[0].endswith("empty.route") for d in diagnostics)
