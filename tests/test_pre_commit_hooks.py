"""The hooks of `.pre-commit-hooks.yaml`, run by pre-commit itself (`pre-commit try-repo`
with this checkout) on a scratch git repository of policies. No network: the hooks are
`language: system`, so pre-commit installs nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from policyroute.syntax.formatter import format_source

ROOT = Path(__file__).resolve().parents[1]
HOOKS = ("policyroute-check", "policyroute-fmt", "policyroute-test")


@pytest.fixture()
def scratch(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "policies", repo / "policies")
    git(repo.parent, "init", "-q", str(repo))
    git(repo, "add", "-A")
    return repo


def env(tmp: Path) -> dict[str, str]:
    out = dict(os.environ)
    # The policyroute of this environment is the one the system hooks find first.
    out["PATH"] = str(Path(sys.executable).parent) + os.pathsep + out.get("PATH", "")
    out["PRE_COMMIT_HOME"] = str(tmp / "pre-commit-home")
    out.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com")
    out.update(GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
    out["NO_COLOR"] = "1"
    return out


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env(repo))


def pre_commit(repo: Path, hook: str, *files: str) -> subprocess.CompletedProcess[str]:
    chosen = ["--files", *files] if files else ["--all-files"]
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), hook, *chosen],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        env=env(repo.parent),
        check=False,
    )


def test_the_manifest_declares_the_three_hooks_on_route_files() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert [h["id"] for h in hooks] == list(HOOKS)
    for h in hooks:
        assert h["language"] == "system" and h["files"] == r"\.route$"
        assert h["entry"].split()[:2] == ["policyroute", h["id"].split("-")[1]]


@pytest.mark.parametrize("hook", HOOKS)
def test_each_hook_passes_on_the_shipped_policies(scratch: Path, hook: str) -> None:
    done = pre_commit(scratch, hook)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Passed" in done.stdout


def test_check_stops_a_commit_of_a_broken_policy(scratch: Path) -> None:
    policy = scratch / "policies" / "saas-support.route"
    policy.write_text(policy.read_text().replace("-> opus", "-> opsu", 1))
    git(scratch, "add", "-A")
    done = pre_commit(scratch, "policyroute-check", "policies/saas-support.route")
    assert done.returncode == 1
    assert "Failed" in done.stdout
    assert "error[E102]: unknown tier 'opsu'" in done.stdout
    assert "did you mean 'opus'?" in done.stdout


def test_fmt_rewrites_an_unformatted_policy_and_stops_the_commit(scratch: Path) -> None:
    messy = scratch / "policies" / "messy.route"
    text = 'policy   "m"\nimport "shared/tiers.route"\ndefault->haiku\n'
    messy.write_text(text)
    git(scratch, "add", "-A")
    done = pre_commit(scratch, "policyroute-fmt", "policies/messy.route")
    assert done.returncode == 1
    assert "files were modified by this hook" in done.stdout
    assert messy.read_text() == format_source(text)
    again = pre_commit(scratch, "policyroute-fmt", "policies/messy.route")
    assert again.returncode == 0, again.stdout


def test_test_stops_a_commit_whose_inline_test_fails(scratch: Path) -> None:
    policy = scratch / "policies" / "coding-assistant.route"
    text = policy.read_text()
    policy.write_text(text.replace("} -> opus by hard_words", "} -> haiku by hard_words", 1))
    assert policy.read_text() != text
    git(scratch, "add", "-A")
    done = pre_commit(scratch, "policyroute-test", "policies/coding-assistant.route")
    assert done.returncode == 1
    assert "FAIL" in done.stdout
