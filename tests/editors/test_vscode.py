"""The VS Code extension: its TextMate grammar passes vscode-tmgrammar-test, and it packages to
a .vsix with @vscode/vsce holding the grammar, the client and the language client library.

The npm tools are installed by `.ci/run` (`npm ci` in editors/vscode, from its lock file); a
checkout without them fails here with the command to run, rather than skipping."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from policyroute import __version__

VSCODE = Path(__file__).resolve().parents[2] / "editors" / "vscode"


def npm() -> str:
    found = shutil.which("npm")
    if found is None or not (VSCODE / "node_modules" / ".bin" / "vsce").exists():
        pytest.fail(
            "the VS Code tests need Node.js and the extension's npm tools: "
            "npm ci --prefix editors/vscode (what .ci/setup does)"
        )
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [npm(), *args], cwd=VSCODE, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_grammar_passes_its_syntax_tests() -> None:
    done = run("test")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "policy.route run successf" in done.stdout


def test_a_wrong_scope_fails_the_syntax_tests(tmp_path: Path) -> None:
    """The syntax test can fail: one expected scope changed, and vscode-tmgrammar-test says so."""
    text = (VSCODE / "tests" / "policy.route").read_text(encoding="utf-8")
    wrong = text.replace("entity.name.type.tier.route", "keyword.other.route", 1)
    (tmp_path / "wrong.route").write_text(wrong, encoding="utf-8")
    done = run(
        "exec",
        "--",
        "vscode-tmgrammar-test",
        "--grammar",
        str(VSCODE / "syntaxes" / "route.tmLanguage.json"),
        str(tmp_path / "wrong.route"),
    )
    assert done.returncode != 0
    assert "missing required scopes: keyword.other.route" in done.stdout


def test_the_extension_packages_to_a_vsix(tmp_path: Path) -> None:
    out = tmp_path / "policyroute.vsix"
    done = run("exec", "--", "vsce", "package", "--skip-license", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    with zipfile.ZipFile(out) as vsix:
        names = set(vsix.namelist())
        manifest = json.loads(vsix.read("extension/package.json"))
    assert {
        "extension/extension.js",
        "extension/syntaxes/route.tmLanguage.json",
        "extension/language-configuration.json",
        "extension/node_modules/vscode-languageclient/node.js",
    } <= names
    assert not any("/tests/" in n or "vscode-tmgrammar-test" in n for n in names)
    assert manifest["contributes"]["languages"][0]["extensions"] == [".route"]
    default = manifest["contributes"]["configuration"]["properties"]["policyroute.server.command"]
    assert default["default"] == ["policyroute", "lsp"]


def test_the_extension_version_is_the_package_version() -> None:
    manifest = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    assert manifest["version"] == __version__
