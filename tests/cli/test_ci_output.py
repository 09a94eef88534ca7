"""The command line's conventions for CI and editors (issue 24): `check --format github`
annotations, `--stdin-filename` for an editor's or a hook's unsaved text, `-o FILE`, usage
errors with the command's own usage, `--format` on every command that prints a report (or
the README saying which do not), `explain --format human`, and `diff`'s exit codes."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policyroute.cli.check import github_annotation
from policyroute.compiler.loader import load_text
from policyroute.syntax.diagnostics import Diagnostic
from policyroute.syntax.formatter import format_source
from policyroute.syntax.source import Source, Span

from .test_conventions import ROOT, cli

SAAS = ROOT / "policies" / "saas-support.route"
MESSY = 'policy   "m"\ntier a = "claude-haiku-4-5" {input 1 output 5}\ndefault->a\n'
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


def test_fmt_takes_stdin_filename(tmp_path: Path) -> None:
    messy = 'policy   "m"\ntier a = "claude-haiku-4-5" {input 1 output 5}\ndefault->a\n'
    code, out, err = cli("fmt", "-", "--stdin-filename", "m.route", stdin=messy, cwd=tmp_path)
    assert code == 0 and out.startswith('policy "m"')
    code, _, err = cli(
        "fmt", "-", "--stdin-filename", "m.route", stdin="rule x: prompt contains\n", cwd=tmp_path
    )
    assert code == 1 and err.startswith("m.route:1:")


def test_the_readme_says_exactly_which_commands_take_format() -> None:
    import argparse

    from policyroute.cli import make_parser

    parser = make_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    with_format = {
        name
        for name, sub in commands.choices.items()
        if any("--format" in a.option_strings for a in sub._actions)
    }
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = readme[readme.index("Every command that prints a report takes `--format") :]
    paragraph = paragraph[: paragraph.index("\n\n")]
    said_with, said_without = paragraph.split("The\nothers", 1)
    named = set(re.findall(r"`([a-z]+)`", said_with.split(":", 1)[1].split("(", 1)[0]))
    others = set(re.findall(r"`([a-z]+)` \(", said_without))
    assert named == with_format
    assert others == set(commands.choices) - with_format


def test_fmt_json_reports_each_file(tmp_path: Path) -> None:
    (tmp_path / "ok.route").write_text(format_source(MESSY))
    (tmp_path / "messy.route").write_text(MESSY)
    (tmp_path / "bad.route").write_text("rule x: prompt contains\n")
    code, out, _err = cli("fmt", "--check", "--format", "json", ".", cwd=tmp_path)
    assert code == 1 and out.count("@@") == 0
    by_file = {e["file"]: e for e in json.loads(out)}
    assert by_file["ok.route"]["status"] == "unchanged"
    assert by_file["messy.route"]["status"] == "would be reformatted"
    assert by_file["bad.route"]["status"] == "error"
    assert by_file["bad.route"]["diagnostics"][0]["code"] == "E001"
    code, out, _ = cli("fmt", "-", "--json", stdin=MESSY)
    assert code == 0 and json.loads(out) == [
        {"file": "<stdin>", "status": "formatted", "text": format_source(MESSY)}
    ]


def test_explain_in_words_and_as_the_request(tmp_path: Path) -> None:
    path = str(ROOT / "policies" / "document-pipeline.route")
    code, words, _ = cli("explain", path, "--rule", "hard_analysis", "--format", "human")
    assert code == 0
    assert words.startswith("rule hard_analysis routes this request to opus (claude-opus-4-7):")
    assert '  task = "analyze"' in words
    assert '  complexity.label = "complex"  (the classifier\'s answer)' in words
    code, request, _ = cli("explain", path, "--rule", "hard_analysis")
    assert json.loads(request)["route"]["task"] == "analyze"  # the default pipes to route
    _, wrapped, _ = cli("explain", path, "--rule", "hard_analysis", "--json")
    assert json.loads(wrapped)["request"] == json.loads(request)


def test_diff_exit_codes_say_same_different_or_broken(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    old = tmp_path / "policies" / "saas-support.route"
    changed = tmp_path / "policies" / "changed.route"
    changed.write_text(old.read_text().replace("-> opus", "-> sonnet", 1))
    broken = tmp_path / "policies" / "broken.route"
    broken.write_text(old.read_text().replace("-> opus", "-> opsu", 1))
    assert cli("diff", str(old), str(old))[0] == 0
    assert cli("diff", str(old), str(changed))[0] == 1
    code, out, err = cli("diff", str(old), str(broken))
    assert code == 2 and out == "" and "error[E102]" in err
    code, _, err = cli("diff", str(old))
    assert code == 2 and "two policies" in err


def test_traffic_before_the_policies_does_not_take_them() -> None:
    old = str(ROOT / "policies" / "coding-assistant.route")
    traffic = str(ROOT / "examples" / "traffic" / "mixed.jsonl")
    after = cli("diff", old, old, "--traffic", traffic, "--json")
    before = cli("diff", "--traffic", traffic, old, old, "--json")
    assert after[0] == before[0] == 0
    assert json.loads(after[1]) == json.loads(before[1])
