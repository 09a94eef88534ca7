"""Golden tests of diagnostics: each broken policy's exact human `policyroute check` output.

Every fixture is one small broken policy under tests/golden/diagnostics/: the top-level
`*.route` files, and `imports/*/main.route` (the other files in those folders are what
they import); `folders/*/` are checked whole (`policyroute check .` inside them), to pin
that a mistake in a file several policies import is reported once, where it is. Fixtures made of raw bytes (not UTF-8, binary) are written by the test into
tmp_path, so no binary file is committed; their `.expected` files still live beside the
others.

The expected text is stderr followed by stdout, with absolute paths of the golden folder
made relative to it. To rewrite the `.expected` files after an intended change:

    UPDATE_GOLDEN=1 pytest tests/test_golden.py

and review the diff.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden" / "diagnostics"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
HEAD = re.compile(r"^\S+:\d+:\d+: (error|warning)\[")

TIER = b'tier haiku = "claude-haiku-4-5" { input 1.00 output 5.00 }\n'

# name -> bytes; written to tmp_path/NAME.route by the test.
BYTE_FIXTURES: dict[str, bytes] = {
    # Latin-1 'e acute' (0xe9) in a phrase: the file is not UTF-8.
    "bad_utf8": TIER + b'rule cafe: prompt contains "caf\xe9" -> haiku\ndefault -> haiku\n',
    # Binary junk: control bytes, a NUL, and 0xff, which never occurs in UTF-8.
    "binary_junk": b"\x7fELF\x02\x01\x01\xff\xfe\x00\x00policy\n",
}


def _fixtures() -> list[str]:
    names = [p.name for p in sorted(GOLDEN.glob("*.route"))]
    names += [p.relative_to(GOLDEN).as_posix() for p in sorted(GOLDEN.glob("imports/*/main.route"))]
    return names


def _expected_path(name: str) -> Path:
    return GOLDEN / (name.removesuffix(".route") + ".expected")


def _normalize(text: str, folder: Path) -> str:
    for root in {str(folder), str(folder.resolve())}:
        text = text.replace(root + os.sep, "").replace(root, ".")
    return text


def _check(name: str, cwd: Path) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "policyroute.cli", "check", name],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "100", "PYTHONIOENCODING": "utf-8"},
    )
    return proc.returncode, _normalize(proc.stderr + proc.stdout, cwd)


def _compare(name: str, code: int, output: str) -> None:
    assert "Traceback" not in output, output
    expected_file = _expected_path(name)
    if UPDATE:
        expected_file.parent.mkdir(parents=True, exist_ok=True)
        expected_file.write_text(output, encoding="utf-8")
    assert expected_file.exists(), f"{expected_file} missing: run with UPDATE_GOLDEN=1"
    expected = expected_file.read_text(encoding="utf-8")
    assert output == expected, (
        f"`policyroute check {name}` output changed; if intended, rerun with UPDATE_GOLDEN=1.\n"
        f"--- expected\n{expected}\n--- actual\n{output}"
    )
    assert code == 1, f"exit code {code}, expected 1\n{output}"


def test_fixtures_exist() -> None:
    names = _fixtures()
    assert len(names) + len(BYTE_FIXTURES) >= 20
    for sub in ("missing", "leave", "cycle"):
        assert f"imports/{sub}/main.route" in names


@pytest.mark.parametrize("name", _fixtures())
def test_golden(name: str) -> None:
    code, output = _check(name, GOLDEN)
    _compare(name, code, output)


FOLDERS = sorted(p.name for p in (GOLDEN / "folders").iterdir() if p.is_dir())


@pytest.mark.parametrize("folder", FOLDERS)
def test_golden_folder(folder: str) -> None:
    code, output = _check(".", GOLDEN / "folders" / folder)
    _compare(f"folders/{folder}.route", code, output)


@pytest.mark.parametrize("stem", sorted(BYTE_FIXTURES))
def test_golden_bytes(stem: str, tmp_path: Path) -> None:
    name = stem + ".route"
    (tmp_path / name).write_bytes(BYTE_FIXTURES[stem])
    code, output = _check(name, tmp_path)
    _compare(name, code, output)


def test_golden_folder_run_reports_every_fixture() -> None:
    """Checking the whole folder at once: no traceback, exit 1, every fixture named."""
    proc = subprocess.run(
        [sys.executable, "-m", "policyroute.cli", "check", "."],
        cwd=GOLDEN,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = proc.stderr + proc.stdout
    assert "Traceback" not in output, output
    assert proc.returncode == 1
    # The same diagnostics as the files checked one by one, each once.
    heads = [line for line in output.splitlines() if HEAD.match(line)]
    assert len(heads) == len(set(heads)), output
    for name in _fixtures():
        expected = _expected_path(name).read_text(encoding="utf-8")
        for line in expected.splitlines():
            if HEAD.match(line):
                assert line.split(": ", 1)[0] in {h.split(": ", 1)[0] for h in heads}, line
