"""Every command in docs/learn.md runs, prints what the page shows, and reproduces the files
committed under examples/learned/ byte for byte (policies, curves, the held-out split)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from policyroute.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "learn.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def _blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(DOC.read_text(encoding="utf-8"))]


def _commands() -> list[tuple[str, str | None]]:
    blocks = _blocks()
    out = []
    for i, (lang, body) in enumerate(blocks):
        if lang != "sh":
            continue
        for line in body.strip().splitlines():
            assert line.startswith("policyroute "), (
                f"docs/learn.md: not a policyroute command: {line}"
            )
        shown = blocks[i + 1][1] if i + 1 < len(blocks) and blocks[i + 1][0] == "text" else None
        out.append((body.strip(), shown))
    return out


def _mirror(tmp: Path) -> None:
    """A working folder where the inputs are the repository's and the outputs are fresh."""
    (tmp / "examples").mkdir()
    (tmp / "examples" / "routellm").symlink_to(ROOT / "examples" / "routellm")
    (tmp / "policies").symlink_to(ROOT / "policies")
    for folder in (ROOT / "examples" / "learned").rglob("*"):
        if folder.is_dir():
            (tmp / folder.relative_to(ROOT)).mkdir(parents=True, exist_ok=True)
    (tmp / "examples" / "learned").mkdir(exist_ok=True)


@pytest.mark.parametrize("command, shown", _commands(), ids=lambda c: str(c)[:60] if c else "")
def test_doc_command(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    shown: str | None,
) -> None:
    _mirror(tmp_path)
    monkeypatch.chdir(tmp_path)
    learning = command.startswith("policyroute learn")
    if not learning:
        # Commands that read what learn wrote read the committed files.
        for path in (ROOT / "examples" / "learned").rglob("*"):
            if path.is_file():
                (tmp_path / path.relative_to(ROOT)).write_bytes(path.read_bytes())
    for line in command.splitlines():
        assert main(shlex.split(line)[1:]) == 0, line
    out = capsys.readouterr().out
    if shown is not None:
        assert out == shown
    if "--format json -o" in command:
        _same_as_header(tmp_path, command)
    if learning:
        written = [p for p in (tmp_path / "examples" / "learned").rglob("*") if p.is_file()]
        assert written
        for path in written:
            committed = ROOT / path.relative_to(tmp_path)
            assert committed.is_file(), f"{committed} is written by the docs but not committed"
            assert path.read_bytes() == committed.read_bytes(), f"{committed} differs"


def test_every_committed_example_is_made_by_the_docs() -> None:
    text = DOC.read_text(encoding="utf-8")
    for path in (ROOT / "examples" / "learned").rglob("*.route"):
        rel = path.relative_to(ROOT).as_posix()
        m = re.match(r"(.*)-\d+\.route$", rel)
        named = f"{m.group(1)}.route" if m else rel
        assert named in text, f"{rel}: no command in docs/learn.md makes it"


def _same_as_header(tmp: Path, command: str) -> None:
    """The replay shown in the docs reports the figures the learned file's header states."""
    import json

    words = shlex.split(command)
    report = json.loads((tmp / words[words.index("-o") + 1]).read_text())
    header = " ".join(
        line.strip("# ")
        for line in (tmp / words[2]).read_text().splitlines()
        if line.startswith("#")
    )
    q = report["quality"]
    for figure in (
        f"{q['pct_of_top']:.1f}% of all-opus",
        f"[{q['ci95'][0]:.1f}, {q['ci95'][1]:.1f}]",
        f"lift over random {q['lift_over_random']['value']:+.3g}",
        f"one-sided p = {q['lift_over_random']['p_value']:.3g}",
        f"opus share {report['tiers']['opus']['share']:.1%}",
    ):
        assert figure in header, figure


def test_shown_policy_text_is_the_committed_file() -> None:
    for lang, body in _blocks():
        if lang == "" and body.startswith("policy "):
            name = body.split('"')[1]
            committed = (ROOT / "examples" / "learned" / f"{name}.route").read_text()
            assert body in committed, f"docs/learn.md shows a stale excerpt of {name}.route"
