"""The replay CLI run for real, on the MT-bench sample shipped in examples/routellm."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples" / "routellm"
TWO = str(EX / "two-tier.route")
MT = str(EX / "mt-bench.traffic.jsonl")
MT_OUT = str(EX / "mt-bench.outcomes.jsonl")


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """`policyroute ARGS` in a fresh process; never a traceback, whatever the exit code."""
    proc = subprocess.run(
        ["policyroute", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc
