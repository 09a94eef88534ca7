"""Shared setup for the replay CLI tests: a replay of the MT-bench sample with its outcomes."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .cli import MT, MT_OUT, TWO, run


@pytest.fixture
def replay_mt() -> Callable[..., subprocess.CompletedProcess[str]]:
    """`replay_mt(*flags, policy=TWO)`: `policyroute replay POLICY` on the MT-bench traffic
    with its outcomes, `flags` after."""

    def replay(*flags: str, policy: str = TWO) -> subprocess.CompletedProcess[str]:
        return run("replay", policy, MT, "--outcomes", MT_OUT, *flags)

    return replay


@pytest.fixture
def mt_report(
    tmp_path: Path, replay_mt: Callable[..., subprocess.CompletedProcess[str]]
) -> Callable[..., str]:
    """`mt_report(fmt, *flags, policy=TWO)`: that replay written with `--format fmt -o FILE`;
    the file's text, once the command has exited 0 and printed nothing."""

    def report(fmt: str, *flags: str, policy: str = TWO) -> str:
        target = tmp_path / f"r.{fmt}"
        proc = replay_mt("--format", fmt, "-o", str(target), *flags, policy=policy)
        assert proc.returncode == 0 and proc.stdout == "", proc.stderr
        return target.read_text()

    return report
