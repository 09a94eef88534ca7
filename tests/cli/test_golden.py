"""Golden tests of diagnostics: each broken policy's exact human `policyroute` output.

Every fixture is one small policy under tests/golden/diagnostics/, its expected output beside
it: the top-level `NAME.route` with `NAME.expected`, and `imports/*/main.route` (the other
files in those folders are what they import); `folders/*/` are checked whole (`policyroute
check .` inside them), to pin that a mistake in a file several policies import is reported
once, where it is. A fixture is run as `policyroute check NAME.route` unless `NAME.args`
beside it gives the command (`watch {file}`: E502 is reported by a store, not by check).
Fixtures made of raw bytes (not UTF-8, binary) or too large to commit (W011) are written by
the test into tmp_path; their `.expected` files still live beside the others.

Every code of the registry (syntax/codes.py) that can be emitted has a golden: see
tests/syntax/test_codes.py. Each runs in-process through `cli.main`, as the command does.

The expected text is stderr followed by stdout, with absolute paths of the golden folder
made relative to it; the exit code is 1 when the output holds an error, else 0. To rewrite
the `.expected` files after an intended change:

    UPDATE_GOLDEN=1 pytest tests/cli/test_golden.py

and review the diff.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from policyroute.cli import main

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "diagnostics"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
HEAD = re.compile(r"^\S+:\d+:\d+: (error|warning)\[")

TIER = b'tier haiku = "claude-haiku-4-5" { input 1.00 output 5.00 }\n'


def _too_large_to_analyse() -> bytes:
    """10,001 phrases that each hold the phrase `error` (W011; docs/diagnostics.md#w011)."""
    phrases = ", ".join(f'"error {i}"' for i in range(10001))
    return (
        TIER
        + b'tier sonnet = "claude-sonnet-4-6" { input 3.00 output 15.00 }\n'
        + f'keywords errors = ["error", {phrases}]\n'.encode()
        + b"rule errors: prompt contains any errors -> sonnet\n"
        + b"default -> haiku\n"
    )


# name -> its bytes; written to tmp_path/NAME.route by the test.
MADE_FIXTURES: dict[str, Callable[[], bytes]] = {
    # Latin-1 'e acute' (0xe9) in a phrase: the file is not UTF-8.
    "bad_utf8": lambda: TIER + b'rule cafe: prompt contains "caf\xe9" -> haiku\ndefault -> haiku\n',
    # Binary junk: control bytes, a NUL, and 0xff, which never occurs in UTF-8.
    "binary_junk": lambda: b"\x7fELF\x02\x01\x01\xff\xfe\x00\x00policy\n",
    "too_large_to_analyse": _too_large_to_analyse,
}


def fixtures() -> list[str]:
    names = [p.name for p in sorted(GOLDEN.glob("*.route"))]
    names += [p.relative_to(GOLDEN).as_posix() for p in sorted(GOLDEN.glob("imports/*/main.route"))]
    return names


def expected_path(name: str) -> Path:
    return GOLDEN / (name.removesuffix(".route") + ".expected")


def _command(name: str) -> list[str]:
    args = GOLDEN / (name.removesuffix(".route") + ".args")
    template = args.read_text(encoding="utf-8").split() if args.exists() else ["check", "{file}"]
    return [name if part == "{file}" else part for part in template]


def _normalize(text: str, folder: Path) -> str:
    for root in {str(folder), str(folder.resolve())}:
        text = text.replace(root + os.sep, "").replace(root, ".")
    return text


def run_cli(
    args: list[str],
    cwd: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, str]:
    """`policyroute ARGS` in `cwd`, in-process: (exit code, stderr then stdout)."""
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("COLUMNS", "100")
    capsys.readouterr()
    code = main(args)
    out = capsys.readouterr()
    return code, _normalize(out.err + out.out, cwd)


def compare(name: str, code: int, output: str) -> None:
    assert "Traceback" not in output, output
    expected_file = expected_path(name)
    if UPDATE:
        expected_file.parent.mkdir(parents=True, exist_ok=True)
        expected_file.write_text(output, encoding="utf-8")
    assert expected_file.exists(), f"{expected_file} missing: run with UPDATE_GOLDEN=1"
    expected = expected_file.read_text(encoding="utf-8")
    assert output == expected, (
        f"`policyroute check {name}` output changed; if intended, rerun with UPDATE_GOLDEN=1.\n"
        f"--- expected\n{expected}\n--- actual\n{output}"
    )
    errors = any(m.group(1) == "error" for m in map(HEAD.match, output.splitlines()) if m)
    assert code == (1 if errors else 0), f"exit code {code}\n{output}"


def test_fixtures_exist() -> None:
    names = fixtures()
    assert len(names) + len(MADE_FIXTURES) >= 20
    for sub in ("missing", "leave", "cycle"):
        assert f"imports/{sub}/main.route" in names
    for made in MADE_FIXTURES:
        assert expected_path(made + ".route").exists(), made


@pytest.mark.parametrize("name", fixtures())
def test_golden(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run_cli(_command(name), GOLDEN, monkeypatch, capsys)
    compare(name, code, output)


FOLDERS = sorted(p.name for p in (GOLDEN / "folders").iterdir() if p.is_dir())


@pytest.mark.parametrize("folder", FOLDERS)
def test_golden_folder(
    folder: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run_cli(["check", "."], GOLDEN / "folders" / folder, monkeypatch, capsys)
    compare(f"folders/{folder}.route", code, output)


@pytest.mark.parametrize("stem", sorted(MADE_FIXTURES))
def test_golden_made(
    stem: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = stem + ".route"
    (tmp_path / name).write_bytes(MADE_FIXTURES[stem]())
    code, output = run_cli(["check", name], tmp_path, monkeypatch, capsys)
    compare(name, code, output)


def test_golden_folder_run_reports_every_fixture(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checking the whole folder at once: no traceback, exit 1, every fixture named."""
    code, output = run_cli(["check", "."], GOLDEN, monkeypatch, capsys)
    assert "Traceback" not in output, output
    assert code == 1
    # The same diagnostics as the files checked one by one, each once.
    heads = [line for line in output.splitlines() if HEAD.match(line)]
    assert len(heads) == len(set(heads)), output
    for name in fixtures():
        if _command(name)[0] != "check":
            continue
        expected = expected_path(name).read_text(encoding="utf-8")
        for line in expected.splitlines():
            if HEAD.match(line):
                assert line.split(": ", 1)[0] in {h.split(": ", 1)[0] for h in heads}, line


# -- fmt and explain -------------------------------------------------------------------------

FMT = GOLDEN.parent / "fmt"
EXPLAIN = GOLDEN.parent / "explain"


def _golden_text(path: Path, output: str) -> None:
    if UPDATE:
        path.write_text(output, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1"
    assert output == path.read_text(encoding="utf-8"), f"{path} changed; if intended, update"


@pytest.mark.parametrize("name", sorted(p.name for p in FMT.glob("*.route")))
def test_fmt_golden(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`policyroute fmt -` prints the canonical layout; formatting that again changes nothing."""
    import io
    import sys

    text = (FMT / name).read_text(encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    code, output = run_cli(["fmt", "-"], FMT, monkeypatch, capsys)
    assert code == 0
    _golden_text(FMT / name.replace(".route", ".expected"), output)
    monkeypatch.setattr(sys, "stdin", io.StringIO(output))
    assert run_cli(["fmt", "-"], FMT, monkeypatch, capsys) == (0, output)


@pytest.mark.parametrize("name", sorted(p.name for p in EXPLAIN.glob("*.route")))
def test_explain_golden(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`policyroute explain NAME --rule R` for every rule, the default included: the witness
    `route --request` reads, or why there is none."""
    import policyroute

    policy = policyroute.load(EXPLAIN / name)
    parts = []
    for rule in policy.rules:
        code, output = run_cli(["explain", name, "--rule", rule.name], EXPLAIN, monkeypatch, capsys)
        parts.append(f"== explain --rule {rule.name} (exit {code})\n{output}")
    _golden_text(EXPLAIN / name.replace(".route", ".expected"), "".join(parts))
