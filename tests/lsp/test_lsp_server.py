"""`policyroute lsp` end to end: pygls's client drives the server over stdio, on a copy of the
shipped policies, and every answer is checked against what the CLI says."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsp_session import Session, uri
from lsprotocol import types

from policyroute import load
from policyroute.analysis.witness import decide_json
from policyroute.cli import main
from policyroute.syntax.formatter import format_source

POLICIES = Path(__file__).resolve().parents[2] / "policies"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("workspace")
    shutil.copytree(POLICIES, where / "policies")
    return where


@pytest.fixture(scope="module")
def lsp(root: Path) -> Iterator[Session]:
    session = Session(root)
    yield session
    session.close()


def doc_id(doc: str) -> types.TextDocumentIdentifier:
    return types.TextDocumentIdentifier(doc)


def check_json(path: Path, cwd: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    import os

    here = os.getcwd()
    os.chdir(cwd)
    try:
        capsys.readouterr()
        main(["check", "--format", "json", str(path.relative_to(cwd))])
        return list(json.loads(capsys.readouterr().out))
    finally:
        os.chdir(here)


def as_check(d: types.Diagnostic) -> tuple[Any, ...]:
    message, _, hint = d.message.partition("\nhint: ")
    r = d.range
    return (
        r.start.line + 1,
        r.start.character + 1,
        r.end.line + 1,
        r.end.character + 1,
        d.code,
        message,
        hint or None,
        "error" if d.severity == types.DiagnosticSeverity.Error else "warning",
    )


def from_check(j: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("line", "column", "end_line", "end_column", "code", "message", "hint", "severity")
    return tuple(j[k] for k in keys)


def position_of(text: str, needle: str, nth: int = 0, delta: int = 1) -> types.Position:
    at = -1
    for _ in range(nth + 1):
        at = text.index(needle, at + 1)
    at += delta
    line = text.count("\n", 0, at)
    return types.Position(line, at - (text.rfind("\n", 0, at) + 1))


# -- diagnostics --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["coding-assistant", "document-pipeline", "saas-support"])
def test_shipped_policies_open_clean_as_check_says(
    lsp: Session, root: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = root / "policies" / f"{name}.route"
    doc = lsp.open(path)
    assert lsp.diagnostics(doc) == []
    assert check_json(path, root, capsys) == []
    lsp.close_doc(doc)


BROKEN = """\
policy "broken"
import "shared/tiers.route"
keywords hard = ["deadlock"]
keywords hard = ["livelock"]
rule a: prompt contains any hadr -> opus
rule b: user.teir == "free" -> haikuu
rule c: lenght > "x" -> sonnet
default -> sonnet
escalate on eror, timeout
"""


def test_diagnostics_are_checks_on_open_change_and_save(
    lsp: Session, root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = root / "policies" / "broken.route"
    path.write_text(BROKEN, encoding="utf-8")
    doc = lsp.open(path)
    got = lsp.diagnostics(doc)
    expected = [from_check(j) for j in check_json(path, root, capsys)]
    assert sorted(as_check(d) for d in got) == sorted(expected)
    assert {d.code for d in got} >= {"E101", "E103", "E105", "E102", "E116"}
    duplicate = next(d for d in got if d.code == "E101")
    assert duplicate.related_information is not None
    first = duplicate.related_information[0]
    assert first.location.uri == doc and first.location.range.start.line == 2

    # An unsaved edit is checked as typed; the file on disk is not.
    n = lsp.count(doc)
    fixed = BROKEN.replace('keywords hard = ["livelock"]\n', "")
    lsp.change(doc, fixed)
    after = lsp.diagnostics(doc, n)
    assert "E101" not in {d.code for d in after}
    assert len(after) == len(got) - 1

    # Saved, the text on disk and the check agree again.
    path.write_text(fixed, encoding="utf-8")
    n = lsp.count(doc)
    lsp.save(doc)
    saved = lsp.diagnostics(doc, n)
    assert sorted(as_check(d) for d in saved) == sorted(
        from_check(j) for j in check_json(path, root, capsys)
    )
    n = lsp.count(doc)
    lsp.close_doc(doc)
    assert lsp.diagnostics(doc, n) == []
    path.unlink()


def test_a_broken_import_is_shown_in_the_imported_file(
    lsp: Session, root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = root / "imports"
    folder.mkdir()
    (folder / "lib.route").write_text('tier cheap = "claude-haiku-4-5" { input 1 output }\n')
    main_file = folder / "main.route"
    main_file.write_text('import "lib.route"\ndefault -> cheap\n')
    doc = lsp.open(main_file)
    lib = uri(folder / "lib.route")
    mine = lsp.diagnostics(doc)
    theirs = lsp.diagnostics(lib)
    expected = check_json(main_file, root, capsys)
    assert {j["file"] for j in expected} == {"imports/lib.route"}
    assert sorted(as_check(d) for d in theirs) == sorted(from_check(j) for j in expected)
    assert mine == []
    # Closing the importing file takes its report on the imported file away.
    n = lsp.count(lib)
    lsp.close_doc(doc)
    assert lsp.diagnostics(lib, n) == []


def test_an_unreadable_import_links_to_the_error_in_it(lsp: Session, root: Path) -> None:
    folder = root / "binary"
    folder.mkdir()
    (folder / "lib.route").write_bytes(b"tier \x00")
    main_file = folder / "main.route"
    main_file.write_text('import "lib.route"\ndefault -> cheap\n')
    doc = lsp.open(main_file)
    e401 = next(d for d in lsp.diagnostics(doc) if d.code == "E401")
    assert e401.related_information is not None
    link = e401.related_information[0]
    assert link.location.uri == uri(folder / "lib.route")
    assert "binary" in link.message
    lsp.close_doc(doc)


# -- hover --------------------------------------------------------------------------------


def hover(lsp: Session, doc: str, pos: types.Position) -> str:
    found = lsp.request(types.TEXT_DOCUMENT_HOVER, types.HoverParams(doc_id(doc), pos))
    assert found is not None
    return str(found.contents.value)


def test_hover_on_a_rule_says_where_it_routes_and_gives_a_witness(lsp: Session, root: Path) -> None:
    path = root / "policies" / "coding-assistant.route"
    text = path.read_text()
    doc = lsp.open(path)
    lsp.diagnostics(doc)
    shown = hover(lsp, doc, position_of(text, "rule tiny", delta=6))
    assert "**rule tiny** → `haiku` (`claude-haiku-4-5`)" in shown
    assert "max_tokens: 1024" in shown
    assert "ladder: sonnet → opus (at most 2 steps)" in shown
    assert 'covered by inline test "a short question is cheap"' in shown
    witness = json.loads(shown.split("```json\n")[1].split("\n```")[0])
    assert decide_json(load(path), witness) == ("haiku", "tiny")
    # `by RULE` in a test is the same rule.
    by = hover(lsp, doc, position_of(text, "by free_plan", delta=4))
    assert "**rule free_plan**" in by
    default = hover(lsp, doc, position_of(text, "\ndefault", delta=3))
    assert default.startswith("**default** → `sonnet`")
    lsp.close_doc(doc)


def test_hover_on_tier_keywords_attribute_classifier_and_trigger(lsp: Session, root: Path) -> None:
    path = root / "policies" / "document-pipeline.route"
    text = path.read_text()
    doc = lsp.open(path)
    lsp.diagnostics(doc)
    tier = hover(lsp, doc, position_of(text, "-> haiku", delta=4))
    assert "**tier haiku** = `claude-haiku-4-5`" in tier and "per million tokens" in tier
    assert "shared/tiers.route" in tier
    sets = hover(lsp, doc, position_of(text, "any legal_clauses", delta=6))
    assert '"indemnification"' in sets
    attr = hover(lsp, doc, position_of(text, "context_tokens <=", delta=2))
    assert attr.startswith("**context_tokens**: int")
    label = hover(lsp, doc, position_of(text, "complexity.label", delta=12))
    assert "classifier `complexity`" in label
    cls = hover(lsp, doc, position_of(text, "complexity.label", delta=2))
    assert cls.startswith("**classifier complexity** asks tier `haiku`")
    trigger = hover(lsp, doc, position_of(text, "invalid_json", delta=2))
    assert "fires when" in trigger
    lsp.close_doc(doc)


# -- navigation ---------------------------------------------------------------------------


def test_definition_of_an_imported_tier_and_of_an_import(lsp: Session, root: Path) -> None:
    path = root / "policies" / "saas-support.route"
    text = path.read_text()
    doc = lsp.open(path)
    lsp.diagnostics(doc)
    tiers = root / "policies" / "shared" / "tiers.route"
    found = lsp.request(
        types.TEXT_DOCUMENT_DEFINITION,
        types.DefinitionParams(doc_id(doc), position_of(text, "-> opus", delta=4)),
    )
    assert found.uri == uri(tiers)
    assert found.range.start.line == position_of(tiers.read_text(), "tier opus", delta=5).line
    target = lsp.request(
        types.TEXT_DOCUMENT_DEFINITION,
        types.DefinitionParams(doc_id(doc), position_of(text, '"shared/', delta=3)),
    )
    assert target.uri == uri(tiers)
    lsp.close_doc(doc)


def test_references_of_a_tier_span_every_policy_that_imports_it(lsp: Session, root: Path) -> None:
    tiers = root / "policies" / "shared" / "tiers.route"
    doc = lsp.open(tiers)
    lsp.diagnostics(doc)
    found = lsp.request(
        types.TEXT_DOCUMENT_REFERENCES,
        types.ReferenceParams(
            text_document=doc_id(doc),
            position=position_of(tiers.read_text(), "tier opus", delta=6),
            context=types.ReferenceContext(include_declaration=False),
        ),
    )
    files = {loc.uri for loc in found}
    for name in ("coding-assistant", "document-pipeline", "saas-support"):
        assert uri(root / "policies" / f"{name}.route") in files
    uses = re.compile(r"(->|using|shadow)\s*opus\b")
    count = sum(
        len(uses.findall(re.sub(r"#[^\n]*", "", p.read_text())))
        for p in (root / "policies").glob("*.route")  # every policy that imports the tiers
    )
    assert len(found) == count
    lsp.close_doc(doc)


# -- completion, outline, formatting ------------------------------------------------------


def completions(lsp: Session, doc: str, pos: types.Position) -> list[str]:
    found = lsp.request(types.TEXT_DOCUMENT_COMPLETION, types.CompletionParams(doc_id(doc), pos))
    return [i.label for i in found.items]


def test_completion_offers_what_fits_the_place(lsp: Session, root: Path) -> None:
    path = root / "policies" / "document-pipeline.route"
    text = path.read_text() + "\nrule new_one: prompt contains any \n"
    doc = lsp.open(path, text)
    lsp.diagnostics(doc)
    end = text.count("\n") - 1
    line = text.splitlines()[end]
    assert completions(lsp, doc, types.Position(end, len(line))) == ["legal_clauses", "filings"]
    lsp.change(doc, text.replace("contains any \n", "contains any filings -> \n"))
    tiers = completions(lsp, doc, types.Position(end, len(line) + len("filings -> ")))
    assert tiers == ["haiku", "sonnet", "opus"]
    lsp.change(doc, text + "esc")
    assert "escalate" in completions(lsp, doc, types.Position(end + 1, 3))
    lsp.change(doc, text + "rule x: complexity.")
    fields = completions(lsp, doc, types.Position(end + 1, len("rule x: complexity.")))
    assert fields == ["label", "confidence"]
    lsp.change(doc, text + "rule x: ")
    attrs = completions(lsp, doc, types.Position(end + 1, len("rule x: ")))
    assert {"prompt", "user.tier", "complexity.label", "contains"} <= set(attrs)
    lsp.close_doc(doc)


def test_outline_lists_every_statement(lsp: Session, root: Path) -> None:
    path = root / "policies" / "coding-assistant.route"
    doc = lsp.open(path)
    lsp.diagnostics(doc)
    found = lsp.request(
        types.TEXT_DOCUMENT_DOCUMENT_SYMBOL, types.DocumentSymbolParams(doc_id(doc))
    )
    names = [s.name for s in found]
    policy = load(path)
    assert [r.name for r in policy.rules] == [
        n for n in names if n in {r.name for r in policy.rules}
    ]
    assert {"coding-assistant", "shared/tiers.route", "hard", "simple", "escalate"} <= set(names)
    assert sum(1 for s in found if s.detail and s.detail.startswith("test ->")) == len(policy.tests)
    lsp.close_doc(doc)


def test_formatting_is_fmt(lsp: Session, root: Path) -> None:
    messy = 'policy   "x"\ntier a = "claude-haiku-4-5" {input 1 output 5}\n\n\ndefault->a\n'
    path = root / "messy.route"
    doc = lsp.open(path, messy)
    lsp.diagnostics(doc)
    options = types.FormattingOptions(tab_size=2, insert_spaces=True)
    edits = lsp.request(
        types.TEXT_DOCUMENT_FORMATTING, types.DocumentFormattingParams(doc_id(doc), options)
    )
    assert len(edits) == 1 and edits[0].range.start == types.Position(0, 0)
    assert edits[0].new_text == format_source(messy)
    lsp.change(doc, format_source(messy))
    same = lsp.request(
        types.TEXT_DOCUMENT_FORMATTING, types.DocumentFormattingParams(doc_id(doc), options)
    )
    assert list(same) == []
    lsp.change(doc, "rule x: prompt contains\n")  # does not parse: fmt refuses it too
    assert (
        lsp.request(
            types.TEXT_DOCUMENT_FORMATTING, types.DocumentFormattingParams(doc_id(doc), options)
        )
        is None
    )
    lsp.close_doc(doc)


# -- quick fixes --------------------------------------------------------------------------

TYPOS = """\
import "shared/tiers.route"
tier extra = "claude-haiku-4-5" { input 1 outptu 5 }
classifier mood using haiku labels ["calm", "angry"] prompt "How does the user feel?"
keywords hard = ["deadlock"]
rule a: prompt contains any hadr -> opus
rule b: user.teir == "free" -> haikuu
rule c: mood.lable == "calm" -> sonnet
rule d: mood.label == "angyr" -> sonnet
default -> sonnet
escalate on eror, timeout
sticky conversations 10 minuts
test "t" { prompt = "deadlock" } -> opus by aa
"""


def apply(text: str, edits: list[types.TextEdit]) -> str:
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)

    def at(p: types.Position) -> int:
        return offsets[p.line] + p.character

    for e in sorted(edits, key=lambda e: at(e.range.start), reverse=True):
        text = text[: at(e.range.start)] + e.new_text + text[at(e.range.end) :]
    return text


def test_every_did_you_mean_hint_has_a_fix_that_removes_the_problem(
    lsp: Session, root: Path
) -> None:
    path = root / "policies" / "typos.route"
    doc = lsp.open(path, TYPOS)
    found = lsp.diagnostics(doc)
    hinted = [d for d in found if "did you mean" in d.message]
    assert {d.code for d in hinted} == {
        "E112",
        "E103",
        "E105",
        "E102",
        "E203",
        "E116",
        "E125",
        "E501",
    }
    everything = types.Range(types.Position(0, 0), types.Position(len(TYPOS.splitlines()), 0))
    actions = lsp.request(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionParams(doc_id(doc), everything, types.CodeActionContext(found)),
    )
    assert len(actions) == len(hinted)
    assert all(a.kind == types.CodeActionKind.QuickFix and a.is_preferred for a in actions)
    assert {a.diagnostics[0].message for a in actions} == {d.message for d in hinted}
    edits = [e for a in actions for e in a.edit.changes[doc]]
    fixed = apply(TYPOS, edits)
    assert "mood.label ==" in fixed
    assert '"angry"' in fixed.split("rule d:")[1].split("\n")[0]
    n = lsp.count(doc)
    lsp.change(doc, fixed)
    assert [d.message for d in lsp.diagnostics(doc, n) if d.code.startswith("E")] == []
    # A range that touches one diagnostic gets that diagnostic's fix alone.
    lsp.change(doc, TYPOS, version=3)
    line = TYPOS.splitlines().index('rule b: user.teir == "free" -> haikuu')
    one = lsp.request(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionParams(
            doc_id(doc),
            types.Range(types.Position(line, 10), types.Position(line, 10)),
            types.CodeActionContext([]),
        ),
    )
    assert [a.title for a in one] == ["Change 'user.teir' to 'user.tier'"]
    lsp.close_doc(doc)


def test_a_misspelt_import_is_fixed_to_the_file_beside_it(lsp: Session, root: Path) -> None:
    text = 'import "shared/teirs.route"\ndefault -> haiku\n'
    doc = lsp.open(root / "policies" / "typo-import.route", text)
    found = lsp.diagnostics(doc)
    assert [d.code for d in found] == ["E401"]
    actions = lsp.request(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionParams(doc_id(doc), found[0].range, types.CodeActionContext(found)),
    )
    assert [a.title for a in actions] == ["Change 'teirs.route' to 'tiers.route'"]
    n = lsp.count(doc)
    lsp.change(doc, apply(text, list(actions[0].edit.changes[doc])))
    assert lsp.diagnostics(doc, n) == []
    lsp.close_doc(doc)
