"""Policies in CI (issue 24): `check --format github` annotations, `--stdin-filename` for an
editor's or a hook's unsaved text, `-o FILE`, and usage errors reported with the command's
own usage."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_cli_conventions import ROOT, cli

from policyroute.cli.check import github_annotation
from policyroute.compiler.loader import load_text
from policyroute.syntax.diagnostics import Diagnostic
from policyroute.syntax.source import Source, Span

SAAS = ROOT / "policies" / "saas-support.route"
ANNOTATION = re.compile(
    r"^::(error|warning) file=([^,]*),line=(\d+),col=(\d+),endLine=(\d+),endColumn=(\d+),"
    r"title=([EW]\d{3})::(.*)$"
)


def unescape(text: str) -> str:
    codes = {"25": "%", "0A": "\n", "0D": "\r", "3A": ":", "2C": ","}
    return re.sub(r"%(25|0A|0D|3A|2C)", lambda m: codes[m.group(1)], text)


def test_github_annotations_are_the_json_diagnostics() -> None:
    broken = SAAS.read_text().replace("-> opus", "-> opsu", 1)
    code, out, err = cli(
        "check",
        "-",
        "--stdin-filename",
        "policies/saas-support.route",
        "--format",
        "github",
        stdin=broken,
    )
    assert code == 1 and err == ""
    _, as_json, _ = cli(
        "check", "-", "--stdin-filename", "policies/saas-support.route", "--json", stdin=broken
    )
    expected = json.loads(as_json)
    lines = out.splitlines()
    assert len(lines) == len(expected) == 1
    for line, j in zip(lines, expected, strict=True):
        m = ANNOTATION.match(line)
        assert m is not None, line
        level, file, l0, c0, l1, c1, title, message = m.groups()
        assert (level, file, title) == (j["severity"], j["file"], j["code"])
        assert (int(l0), int(c0), int(l1), int(c1)) == (
            j["line"],
            j["column"],
            j["end_line"],
            j["end_column"],
        )
        assert unescape(message) == f"{j['message']}\nhint: {j['hint']}"


@given(st.text(max_size=40), st.text(max_size=40))
def test_an_annotation_is_one_line_whatever_the_message(message: str, name: str) -> None:
    d = Diagnostic("E105", message, Source("x", name or "f"), Span(0, 1), hint=message)
    line = github_annotation(d)
    assert "\n" not in line and "\r" not in line
    m = ANNOTATION.match(line)
    assert m is not None
    assert unescape(m.group(2)) == (name or "f")
    assert unescape(m.group(8)) == message + (f"\nhint: {message}" if message else "")


def test_stdin_filename_names_the_file_and_resolves_imports_beside_it(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    text = SAAS.read_text()
    code, _out, err = cli(
        "check", "-", "--stdin-filename", "policies/saas-support.route", stdin=text, cwd=tmp_path
    )
    assert (code, err) == (0, "")
    # Without it, stdin's imports resolve against the working folder: not found here.
    code, _, err = cli("check", "-", stdin=text, cwd=tmp_path)
    assert code == 1 and "<stdin>:" in err and "E401" in err
    # An import cycle back to the file the text stands for is one, as on disk.
    (tmp_path / "a.route").write_text('import "b.route"\ndefault -> x\n')
    (tmp_path / "b.route").write_text('import "a.route"\n')
    code, _, err = cli(
        "check",
        "-",
        "--stdin-filename",
        "a.route",
        stdin=(tmp_path / "a.route").read_text(),
        cwd=tmp_path,
    )
    _, _, on_disk = cli("check", "a.route", cwd=tmp_path)
    assert code == 1 and "E403" in err and err == on_disk


def test_stdin_filename_without_stdin_is_a_usage_error() -> None:
    code, _, err = cli("check", str(SAAS), "--stdin-filename", "x.route")
    assert code == 2 and "--stdin-filename names stdin" in err


@pytest.mark.parametrize("fmt", ["human", "json", "sarif", "github"])
def test_output_file_holds_what_stdout_would(fmt: str, tmp_path: Path) -> None:
    broken = SAAS.read_text().replace("-> opus", "-> opsu", 1)
    args = ["check", "-", "--stdin-filename", str(SAAS), "--format", fmt]
    code, out, err = cli(*args, stdin=broken)
    report = tmp_path / "report"
    code_o, out_o, err_o = cli(*args, "-o", str(report), stdin=broken)
    assert code == code_o == 1 and out_o == ""
    if fmt == "human":
        assert err_o == "" and report.read_text() == err + out
    else:
        assert err_o == err and report.read_text() == out


def test_output_to_an_unwritable_place_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = cli("check", str(SAAS), "-o", str(tmp_path / "no" / "such" / "dir" / "r"))
    assert code == 2 and "cannot write" in err


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--bogus", "policies"],
        ["route", "policies/saas-support.route", "--prompt", "x", "--nope"],
        ["test", "policies", "--no-such-flag"],
        ["fmt", "--check", "policies", "-z"],
    ],
)
def test_an_unknown_option_is_reported_with_the_command_s_usage(args: list[str]) -> None:
    code, _, err = cli(*args)
    assert code == 2
    assert err.startswith(f"usage: policyroute {args[0]} ")
    assert f"policyroute {args[0]}: unrecognized arguments: " in err


def test_loading_text_for_a_file_is_loading_the_file(tmp_path: Path) -> None:
    (tmp_path / "t.route").write_text('tier a = "m" { input 1 output 2 }\n')
    path = tmp_path / "p.route"
    path.write_text('import "t.route"\ndefault -> a\n')
    loaded = load_text(path.read_text(), "p.route", path=path)
    assert [s.path for s in loaded.sources] == [path.resolve(), (tmp_path / "t.route").resolve()]
