"""The `policyroute` command against the shipped policies.

Exit codes are the contract: 0 ok, 1 policy errors or failed tests, 2 usage errors. No
input, however malformed, may produce a Python traceback.

Commands run in-process through `cli.main` (tests/cli_in_process.py: an exception main does
not handle fails the test, as a traceback would); the installed console script runs for
real where the entry point itself is the subject (a clean check, a request piped on stdin).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_in_process import Ran, run_main

ROOT = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).with_name("policyroute"))
POLICIES = ROOT / "policies"
CODING = "policies/coding-assistant.route"
DOCS = "policies/document-pipeline.route"
SUPPORT = "policies/saas-support.route"

TIERS = (
    'tier haiku  = "claude-haiku-4-5"  { input 1.00 output 5.00  max_tokens 4096 }\n'
    'tier sonnet = "claude-sonnet-4-6" { input 3.00 output 15.00 max_tokens 16384 }\n'
    'tier opus   = "claude-opus-4-7"   { input 5.00 output 25.00 max_tokens 32768 }\n'
)

REQUEST: dict[str, Any] = {
    "messages": [
        {"role": "user", "content": "Pull the invoice number and the total out of this text."}
    ],
    "max_tokens": 512,
    "route": {
        "task": "extract",
        "user": {"tier": "free"},
        "files": 6,
        "metadata": {"priority": "high"},
    },
}


def run(
    *args: str, stdin: str | None = None, cwd: Path = ROOT, real: bool = False
) -> Ran | subprocess.CompletedProcess[str]:
    """`policyroute ARGS` in `cwd`; `real`: the installed console script in its own process."""
    if real:
        proc: Ran | subprocess.CompletedProcess[str] = subprocess.run(
            [EXE, *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        )
    else:
        proc = run_main(args, cwd=cwd, stdin=stdin or "")
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc


def decide(*args: str, stdin: str | None = None, real: bool = False) -> dict[str, Any]:
    proc = run("route", *args, "--json", stdin=stdin, real=real)
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


# -- check ---------------------------------------------------------------------------------


def test_check_shipped_policies_is_clean() -> None:
    proc = run("check", "policies/", real=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # One summary line, not a line per clean file; nothing on stderr.
    assert proc.stdout == "checked 5 files: 0 errors, 0 warnings\n"
    assert proc.stderr == ""


def test_check_json_is_a_list(tmp_path: Path) -> None:
    proc = run("check", "--format", "json", "policies/")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []

    bad = tmp_path / "bad.route"
    bad.write_text(TIERS + 'rule r: promt contains "x" -> haiku\ndefault -> sonet\n')
    proc = run("check", "--format", "json", "bad.route", cwd=tmp_path)
    assert proc.returncode == 1
    found = json.loads(proc.stdout)
    assert isinstance(found, list)
    found = [d for d in found if d["severity"] == "error"]
    assert [(d["code"], d["line"], d["column"]) for d in found] == [
        ("E105", 4, 9),
        ("E102", 5, 12),
    ]
    assert found[0]["file"] == "bad.route"
    assert found[0]["severity"] == "error"
    assert found[0]["hint"] == "did you mean 'prompt'?"


def test_check_sarif(tmp_path: Path) -> None:
    proc = run("check", "--format", "sarif", "policies/")
    assert proc.returncode == 0, proc.stderr
    sarif = json.loads(proc.stdout)
    assert sarif["version"] == "2.1.0"
    assert sarif["runs"][0]["results"] == []

    (tmp_path / "warn.route").write_text(TIERS + 'keywords unused = ["x"]\ndefault -> haiku\n')
    proc = run("check", "--format", "sarif", "warn.route", cwd=tmp_path)
    sarif = json.loads(proc.stdout)
    assert sarif["version"] == "2.1.0"
    results = sarif["runs"][0]["results"]
    codes = {r["ruleId"] for r in results}
    assert "W004" in codes
    w004 = next(r for r in results if r["ruleId"] == "W004")
    assert w004["level"] == "warning"
    region = w004["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"]) == (4, 10)
    rules = {r["id"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]}
    assert codes <= rules


def test_check_strict_fails_on_warnings(tmp_path: Path) -> None:
    (tmp_path / "warn.route").write_text(TIERS + 'keywords unused = ["x"]\ndefault -> haiku\n')
    assert run("check", "warn.route", cwd=tmp_path).returncode == 0
    assert run("check", "--strict", "warn.route", cwd=tmp_path).returncode == 1


def test_check_missing_file_is_a_usage_error() -> None:
    proc = run("check", "policies/no-such.route")
    assert proc.returncode == 2
    assert "policies/no-such.route" in proc.stderr
    assert "no such file" in proc.stderr


def test_check_bad_format_is_a_usage_error() -> None:
    proc = run("check", "--format", "xml", "policies/")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr


# -- route ---------------------------------------------------------------------------------


def test_route_flags_mechanical_task() -> None:
    out = decide(
        CODING,
        "--prompt", "Rename Session to UserSession",
        "--task", "rename",
        "--user-tier", "paid",
        "--attr", "files=6",
        "--attr", "metadata.priority=high",
    )  # fmt: skip
    assert out["tier"] == "haiku"
    assert out["model"] == "claude-haiku-4-5"
    assert out["rule"] == "mechanical"
    assert out["max_tokens"] == 2048


def test_route_free_plan_uses_tier_max_tokens() -> None:
    out = decide(CODING, "--prompt", "Why does this deadlock?", "--user-tier", "free")
    assert (out["tier"], out["rule"], out["max_tokens"]) == ("haiku", "free_plan", 4096)
    assert out["ladder"] == ["sonnet"]  # escalate max 1


def test_route_hard_words() -> None:
    out = decide(CODING, "--prompt", "Find the deadlock between these two worker pools")
    assert (out["tier"], out["model"], out["rule"]) == ("opus", "claude-opus-4-7", "hard_words")
    assert out["max_tokens"] == 32768


def test_route_files_attr_reaches_the_policy() -> None:
    # Short, no tools: `tiny` when at most one file, the default with six.
    prompt = "What does git rebase --onto do?"
    assert decide(CODING, "--prompt", prompt)["rule"] == "tiny"
    out = decide(CODING, "--prompt", prompt, "--attr", "files=6")
    assert (out["tier"], out["rule"]) == ("sonnet", "default")
    assert decide(CODING, "--prompt", prompt, "--files", "9")["rule"] == "large_change"


def test_route_metadata_attr_reaches_the_policy(tmp_path: Path) -> None:
    policy = tmp_path / "p.route"
    policy.write_text(
        TIERS
        + 'rule urgent: metadata.priority == "high" -> opus max_tokens 1000\n'
        + "default -> haiku\n"
    )
    proc = run("route", str(policy), "--prompt", "hi", "--attr", "metadata.priority=high", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["tier"], out["rule"], out["max_tokens"]) == ("opus", "urgent", 1000)
    proc = run("route", str(policy), "--prompt", "hi", "--attr", "metadata.priority=low", "--json")
    assert json.loads(proc.stdout)["rule"] == "default"


def test_route_human_output() -> None:
    proc = run("route", SUPPORT, "--prompt", "How much does the Pro plan cost per seat?")
    assert proc.returncode == 0, proc.stderr
    assert "tier:       haiku (claude-haiku-4-5)" in proc.stdout
    assert "rule:       anonymous (policies/saas-support.route:" in proc.stdout
    assert "ladder:     (no escalation)" in proc.stdout  # escalate never


def test_route_request_file(tmp_path: Path) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps(REQUEST))
    out = decide(DOCS, "--request", str(request))
    assert (out["tier"], out["model"], out["rule"], out["max_tokens"]) == (
        "haiku",
        "claude-haiku-4-5",
        "extract",
        2048,
    )
    # The same request on the coding assistant: the free plan decides first.
    out = decide(CODING, "--request", str(request))
    assert (out["tier"], out["rule"], out["max_tokens"]) == ("haiku", "free_plan", 4096)


def test_route_request_stdin() -> None:
    out = decide(DOCS, "--request", "-", stdin=json.dumps(REQUEST), real=True)
    assert (out["tier"], out["rule"], out["max_tokens"]) == ("haiku", "extract", 2048)
    # saas-support: no user.id, so the anonymous rule decides.
    out = decide(SUPPORT, "--request", "-", stdin=json.dumps(REQUEST))
    assert (out["tier"], out["rule"]) == ("haiku", "anonymous")


def test_route_request_flags_override_the_route_object() -> None:
    out = decide(DOCS, "--request", "-", "--task", "classify", stdin=json.dumps(REQUEST))
    assert (out["rule"], out["max_tokens"]) == ("classify", 256)


def test_route_malformed_request_json_names_line_and_column(tmp_path: Path) -> None:
    broken = '{"messages": [\n  {"role": "user",, "content": "hi"}]}'
    proc = run("route", CODING, "--request", "-", stdin=broken)
    assert proc.returncode == 2
    assert "<stdin>:2:19" in proc.stderr
    assert "invalid JSON" in proc.stderr

    request = tmp_path / "bad.json"
    request.write_text(broken)
    proc = run("route", CODING, "--request", str(request))
    assert proc.returncode == 2
    assert f"{request}:2:19" in proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["route", CODING, "--prompt", "x", "--frobnicate"],
        ["check", "--frobnicate", "policies/"],
        ["frobnicate"],
        ["route", CODING],  # neither --prompt nor --request
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    proc = run(*args)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr


def test_route_missing_policy_file() -> None:
    proc = run("route", "policies/no-such.route", "--prompt", "hi")
    assert proc.returncode != 0
    assert "policies/no-such.route" in proc.stderr
    assert "no such file" in proc.stderr
    assert proc.stdout == ""


def test_route_broken_policy_shows_diagnostics(tmp_path: Path) -> None:
    policy = tmp_path / "bad.route"
    policy.write_text(TIERS + "default -> sonet\n")
    proc = run("route", str(policy), "--prompt", "hi")
    assert proc.returncode == 1
    assert "error[E102]: unknown tier 'sonet'" in proc.stderr


# -- test ----------------------------------------------------------------------------------


def test_test_shipped_policies_pass() -> None:
    proc = run("test", "policies/")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "passed" in proc.stdout
    assert ", 0 failed" in proc.stdout


def test_test_failing_inline_test(tmp_path: Path) -> None:
    (tmp_path / "p.route").write_text(
        TIERS
        + "rule quick: length < 300 -> haiku\n"
        + "default -> sonnet\n"
        + 'test "short goes to sonnet" {\n'
        + '  prompt = "What is a monad?"\n'
        + '  task   = "explain"\n'
        + "} -> sonnet by default\n"
    )
    proc = run("test", "p.route", cwd=tmp_path)
    assert proc.returncode == 1
    out = proc.stdout
    assert "FAIL p.route:" in out
    assert "short goes to sonnet" in out
    assert "request:" in out and "What is a monad?" in out and "explain" in out
    assert "expected: sonnet by default" in out
    assert "actual:   haiku by quick" in out
    assert "0 passed, 1 failed" in out


def test_test_coverage_fail_under(tmp_path: Path) -> None:
    (tmp_path / "p.route").write_text(
        TIERS
        + 'rule hard: prompt contains "deadlock" -> opus\n'
        + "rule quick: length < 300 -> haiku\n"
        + "default -> sonnet\n"
        + 'test "a deadlock" { prompt = "Why does this deadlock?" } -> opus by hard\n'
    )
    proc = run("test", "--coverage", "--fail-under", "100", "p.route", cwd=tmp_path)
    assert proc.returncode == 1
    assert "1 passed, 0 failed" in proc.stdout
    assert "not exercised: quick" in proc.stdout
    assert "under --fail-under 100" in proc.stderr

    # The default counts as a rule too: one of three is exercised.
    assert "not exercised: default" in proc.stdout
    proc = run("test", "--coverage", "--fail-under", "30", "p.route", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_test_shipped_policies_full_coverage() -> None:
    proc = run("test", "--coverage", "--fail-under", "100", "policies/")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "rule coverage 100.0%" in proc.stdout


def test_test_json_format() -> None:
    proc = run("test", "--format", "json", "policies/")
    assert proc.returncode == 0
    report = json.loads(proc.stdout)
    assert report["failed"] == 0
    assert report["passed"] == len(report["tests"]) > 0
