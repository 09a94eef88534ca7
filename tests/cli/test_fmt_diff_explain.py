"""`policyroute fmt`, `diff` and `explain` from the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from policyroute.cli import main

HEADER = 'tier haiku = "h" { input 1 output 5 }\ntier opus = "o" { input 5 output 25 }\n'


def _write(tmp: Path, name: str, body: str) -> str:
    p = tmp / name
    p.write_text(HEADER + body)
    return str(p)


def test_fmt_check_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "a.route", "rule x:   has_tools->opus\ndefault->haiku\n")
    assert main(["fmt", "--check", path]) == 1
    assert "+rule x: has_tools  -> opus" in capsys.readouterr().out
    assert main(["fmt", path]) == 0
    assert main(["fmt", "--check", str(tmp_path)]) == 0


def test_fmt_refuses_broken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "b.route", "rule x: -> opus\n")
    before = Path(path).read_text()
    assert main(["fmt", path]) == 1
    assert Path(path).read_text() == before
    assert "E001" in capsys.readouterr().err


def test_fmt_policies_folder_is_formatted(tmp_path: Path) -> None:
    shutil.copytree("policies", tmp_path / "p")
    assert main(["fmt", str(tmp_path / "p")]) == 0
    assert main(["fmt", "--check", str(tmp_path / "p")]) == 0


def test_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(tmp_path, "a.route", "rule big: files > 5 -> opus\ndefault -> haiku\n")
    b = _write(tmp_path, "b.route", "rule big: files > 3 -> opus\ndefault -> haiku\n")
    assert main(["diff", a, a]) == 0
    assert capsys.readouterr().out == ""
    assert main(["diff", "--json", a, b]) == 1
    (region,) = json.loads(capsys.readouterr().out)
    assert region["old"] == {"tier": "haiku", "rule": "default"}
    assert region["new"] == {"tier": "opus", "rule": "big"}
    assert region["witness"]["route"]["files"] in (4, 5)


def test_explain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(
        tmp_path,
        "a.route",
        "rule big: files > 5 -> opus\nrule dead: files > 9 -> haiku\ndefault -> haiku\n",
    )
    assert main(["explain", a, "--rule", "big"]) == 0
    req = tmp_path / "req.json"
    req.write_text(capsys.readouterr().out)
    assert main(["route", a, "--request", str(req), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rule"] == "big"
    assert main(["explain", a, "--rule", "dead"]) == 1
    assert "'big'" in capsys.readouterr().err
    assert main(["explain", a, "--rule", "nope"]) == 2
    assert main(["explain", str(tmp_path / "missing.route"), "--rule", "x"]) == 2
