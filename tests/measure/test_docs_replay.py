"""Every example of docs/replay.md is run, and its output must be what the page shows.

A ```console block holds one `$ policyroute ...` command and the output it prints (stderr
and stdout in the order written, as a terminal shows them). Commands run at the repository's
root, as a reader would run them; a file a command writes with `-o` is moved to a scratch
folder afterwards. To refresh the page after a deliberate change of output:
`UPDATE_DOCS=1 pytest tests/measure/test_docs_replay.py`.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "replay.md"
BLOCK = re.compile(r"```console\n(.*?)```", re.S)


def blocks() -> list[str]:
    return BLOCK.findall(PAGE.read_text(encoding="utf-8"))


def split(block: str) -> tuple[str, str]:
    first, _, rest = block.partition("\n")
    assert first.startswith("$ "), first
    return first[2:], rest


def execute(command: str, cwd: Path) -> str:
    args = shlex.split(command)
    assert args[0] == "policyroute", command
    proc = subprocess.run(
        [sys.executable, "-m", "policyroute.cli", *args[1:]],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "100"},
    )
    assert "Traceback" not in proc.stdout, proc.stdout
    return proc.stdout


@pytest.mark.parametrize("index", range(len(blocks())))
def test_example(index: int, tmp_path: Path) -> None:
    command, shown = split(blocks()[index])
    args = shlex.split(command)
    written = Path(args[args.index("-o") + 1]) if "-o" in args else None
    assert written is None or not (ROOT / written).exists(), f"{written} is in the way"
    try:
        got = execute(command, ROOT)
        if written is not None:
            assert (ROOT / written).is_file(), f"{command} wrote no {written}"
    finally:
        if written is not None and (ROOT / written).exists():
            (ROOT / written).rename(tmp_path / written.name)
    if os.environ.get("UPDATE_DOCS") == "1" and got != shown:
        text = PAGE.read_text(encoding="utf-8")
        old = f"```console\n$ {command}\n{shown}```"
        assert old in text
        PAGE.write_text(
            text.replace(old, f"```console\n$ {command}\n{got}```", 1), encoding="utf-8"
        )
        return
    assert got == shown, f"docs/replay.md example {index + 1} ({command}) printed:\n{got}"


def test_page_has_examples() -> None:
    assert len(blocks()) >= 8
