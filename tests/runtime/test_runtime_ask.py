"""`policyroute ask` as a user runs it: the console script, against the fake server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fake_anthropic import FakeAnthropic, Reply
from processes import START_TIMEOUT, free_port
from runtime_support import HAIKU, POLICY_TEXT, SONNET

EXE = shutil.which("policyroute")
COMMAND = [EXE] if EXE else [sys.executable, "-m", "policyroute.cli"]


def ask(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, "ask", *args], capture_output=True, text=True, env=env, timeout=START_TIMEOUT
    )


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "p.route"
    path.write_text(POLICY_TEXT)
    return path


@pytest.fixture
def env(fake: FakeAnthropic) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    e.update(ANTHROPIC_API_KEY="test", ANTHROPIC_BASE_URL=fake.base_url)
    return e


def test_ask_prints_decision_attempts_and_answer(
    fake: FakeAnthropic, policy_file: Path, env: dict[str, str]
) -> None:
    fake.script(HAIKU, [Reply(status=529)])
    fake.script(SONNET, [Reply(text="The answer is 42.")])
    r = ask(
        str(policy_file), "--prompt", "what?", "--task", "classify", "--max-retries", "0", env=env
    )
    assert r.returncode == 0, r.stderr
    assert "decision: haiku (claude-haiku-4-5) by rule quick" in r.stdout
    assert "-> error" in r.stdout and "529" in r.stdout
    assert r.stdout.rstrip().endswith("The answer is 42.")


def test_ask_json(fake: FakeAnthropic, policy_file: Path, env: dict[str, str]) -> None:
    r = ask(str(policy_file), "--prompt", "hi", "--user-tier", "free", "--json", env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["decision"]["rule"] == "free" and out["tier"] == "haiku"
    assert out["answer"] == "hello" and out["cost_usd"] > 0


def test_ask_attr(fake: FakeAnthropic, policy_file: Path, env: dict[str, str]) -> None:
    r = ask(str(policy_file), "--prompt", "hi", "--attr", "task=once", "--json", env=env)
    assert json.loads(r.stdout)["decision"]["rule"] == "once"


def test_missing_key(policy_file: Path, env: dict[str, str]) -> None:
    del env["ANTHROPIC_API_KEY"]
    r = ask(str(policy_file), "--prompt", "hi", env=env)
    assert r.returncode == 1
    assert "neither ANTHROPIC_API_KEY nor ANTHROPIC_AUTH_TOKEN is set" in r.stderr
    assert "Traceback" not in r.stderr


def test_unreachable_api(policy_file: Path, env: dict[str, str]) -> None:
    port = free_port()  # one nobody listens on
    env["ANTHROPIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    r = ask(str(policy_file), "--prompt", "hi", "--max-retries", "0", env=env)
    assert r.returncode == 1
    assert "cannot reach the Anthropic API" in r.stderr
    assert "Traceback" not in r.stderr


def test_unknown_model(fake: FakeAnthropic, policy_file: Path, env: dict[str, str]) -> None:
    fake.unknown_models.add(SONNET)
    r = ask(str(policy_file), "--prompt", "hi", "--max-retries", "0", env=env)
    assert r.returncode == 1
    assert "unknown model 'claude-sonnet-4-6'" in r.stderr
    assert "Traceback" not in r.stderr


def test_policy_errors(tmp_path: Path, env: dict[str, str]) -> None:
    bad = tmp_path / "bad.route"
    bad.write_text('tier a = "m" { input 1 output 1 }\ndefault -> nowhere\n')
    r = ask(str(bad), "--prompt", "hi", env=env)
    assert r.returncode == 1
    assert "bad.route:2" in r.stderr
    assert "Traceback" not in r.stderr
    r = ask(str(tmp_path / "missing.route"), "--prompt", "hi", env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr


def test_bad_attr_is_a_usage_error(policy_file: Path, env: dict[str, str]) -> None:
    r = ask(str(policy_file), "--prompt", "hi", "--attr", "files=many", env=env)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr


def test_a_bearer_token_alone_is_enough(
    fake: FakeAnthropic, policy_file: Path, env: dict[str, str]
) -> None:
    del env["ANTHROPIC_API_KEY"]
    env["ANTHROPIC_AUTH_TOKEN"] = "tok-123"
    r = ask(str(policy_file), "--prompt", "hi", "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert fake.requests[-1].headers.get("authorization") == "Bearer tok-123"
