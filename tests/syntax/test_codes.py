"""The diagnostic registry (syntax/codes.py) is the one list of codes: the codes the source
can emit, the registered ones, the ones docs/diagnostics.md documents and the ones with a
golden are the same set, and SARIF describes each from it."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from policyroute.cli import main
from policyroute.syntax.codes import CODES_IN_ORDER, REGISTRY
from policyroute.syntax.diagnostics import Diagnostic
from policyroute.syntax.source import Source, Span

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "policyroute"
DOCS = ROOT / "docs" / "diagnostics.md"
GOLDEN = ROOT / "tests" / "golden" / "diagnostics"
CODE = re.compile(r"[EW]\d{3}")


def emitted() -> set[str]:
    """Every code literal in the package's source outside the registry itself."""
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "syntax" / "codes.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.update(CODE.findall(node.value) if CODE.fullmatch(node.value) else ())
    return found


def live() -> set[str]:
    return {c.code for c in CODES_IN_ORDER if not c.reserved}


def test_the_source_emits_exactly_the_registered_codes() -> None:
    assert emitted() == live()


def test_the_docs_document_every_registered_code() -> None:
    text = DOCS.read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| \[([EW]\d{3})\]\(#[ew]\d{3}\) \| (.*) \|$", text, re.M))
    assert table == {c.code: c.title for c in CODES_IN_ORDER}
    headed = set(re.findall(r"^### ([EW]\d{3}): ", text, re.M))
    anchors = {a.upper() for a in re.findall(r'^<a id="([ew]\d{3})"></a>$', text, re.M)}
    assert headed == set(REGISTRY) == anchors
    for c in CODES_IN_ORDER:
        assert c.anchor == f"docs/diagnostics.md#{c.code.lower()}"


def test_every_emitted_code_has_a_golden() -> None:
    outputs = "".join(p.read_text(encoding="utf-8") for p in GOLDEN.rglob("*.expected"))
    golden = set(re.findall(r"(?:error|warning)\[([EW]\d{3})\]", outputs))
    assert golden == live()


def test_a_code_not_registered_is_refused() -> None:
    with pytest.raises(ValueError, match="E999"):
        Diagnostic("E999", "no such code", Source("", "x.route"), Span(0, 0))


def test_sarif_describes_each_rule_from_the_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "policy.route"
    path.write_text(
        'tier haiku = "claude-haiku-4-5" { input 1.00 output 5.00 }\n'
        "sticky conversations 0 seconds\n"  # E125: not above 0
        "default -> haiku\n"
    )
    assert main(["check", "--format", "sarif", str(path)]) == 1
    rules = json.loads(capsys.readouterr().out)["runs"][0]["tool"]["driver"]["rules"]
    assert rules == [{"id": "E125", "shortDescription": {"text": REGISTRY["E125"].title}}]
