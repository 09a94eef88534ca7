"""The docs/diagnostics.md entries for the shadow statement are real runs: each snippet, checked
in a folder as `policy.route`, prints exactly what the page shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "diagnostics.md"


def _entry(code: str) -> tuple[str, str]:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"### {code}:")
    section = text[start : text.index("\n### ", start + 1)]
    blocks = re.findall(r"```\n(.*?)```", section, re.S)
    return blocks[0], blocks[1]


@pytest.mark.parametrize("code", ["E118", "E119"])
def test_entry_is_a_real_run(code: str, tmp_path: Path) -> None:
    policy, expected = _entry(code)
    (tmp_path / "policy.route").write_text(policy, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "policyroute.cli", "check", "policy.route"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert proc.returncode == 1
    assert proc.stderr + proc.stdout == expected
