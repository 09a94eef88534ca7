"""Every Python example in docs/runtime.md runs, as written, against the fake server.

The examples make default SDK clients; the SDK reads ANTHROPIC_BASE_URL and
ANTHROPIC_API_KEY from the environment, which point it at the fake server here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fake_anthropic import FakeAnthropic
from runtime_support import SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "runtime.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
SECTIONS = re.findall(r"^## (.+)$", DOC.read_text(), re.M)


def test_every_section_has_an_example() -> None:
    text = DOC.read_text()
    for section in SECTIONS:
        body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
        assert "```python" in body, f"section {section!r} has no runnable example"
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(fake: FakeAnthropic, tmp_path: Path, index: int) -> None:
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    script = tmp_path / "example.py"
    script.write_text(BLOCKS[index])
    env = {
        **os.environ,
        "ANTHROPIC_BASE_URL": fake.base_url,
        "ANTHROPIC_API_KEY": SECRET_KEY,
        "PYTHONPATH": str(ROOT),
    }
    r = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, f"example {index}:\n{BLOCKS[index]}\n{r.stderr}"
    assert r.stdout.strip()
    assert fake.requests, "the example made no API call"
