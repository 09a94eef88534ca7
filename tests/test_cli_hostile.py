"""Hostile and careless input on the command line (issue 25): clear errors, never tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyroute import Request

POLICY = """\
tier haiku = "claude-haiku-4-5" { input 1 output 5 }
tier opus = "claude-opus-4-7" { input 5 output 25 max_tokens 8000 }
rule short: length < 20 -> haiku
rule capped: task == "summarize" -> haiku max_tokens 300
default -> opus
"""


def run(*args: str, cwd: Path, stdout: int | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["policyroute", *args],
        cwd=cwd,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert "Traceback" not in (proc.stdout or "") + proc.stderr, proc.stderr
    return proc


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    (tmp_path / "p.route").write_text(POLICY)
    return tmp_path


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            '{"messages": [{"role": "user", "content": "hi"}], "max_tokens": ' + "9" * 5000 + "}",
            "r.json:1:65: integer of 5000 digits",
        ),
        ('{"messages": [], "route": {"files": NaN}}', "r.json:1:37: NaN is not a JSON number"),
        ("[" * 50_000 + "]" * 50_000, "r.json:1:257: nested deeper than 256 levels"),
        ('{"messages": [], "temperature": 1e999}', "r.json:1:33: number 1e999 is out of range"),
    ],
)
def test_route_request_reads_hostile_json_as_a_located_error(
    tmp: Path, body: str, words: str
) -> None:
    (tmp / "r.json").write_text(body)
    proc = run("route", "p.route", "--request", "r.json", cwd=tmp)
    assert proc.returncode == 2
    assert f"policyroute route: {words}" in proc.stderr


def test_route_request_with_tool_results_5000_deep(tmp: Path) -> None:
    # Written as text: json.dumps itself recurses too deep for it.
    block = '[{"type": "tool_result", "tool_use_id": "t", "content": '
    content = block * 5000 + '"deep"' + "}]" * 5000
    (tmp / "r.json").write_text('{"messages": [{"role": "user", "content": ' + content + "}]}")
    proc = run("route", "p.route", "--request", "r.json", cwd=tmp)
    assert proc.returncode == 2
    assert "nested deeper than 256 levels" in proc.stderr


def test_route_request_keeps_lone_surrogates_routable(tmp: Path) -> None:
    (tmp / "r.json").write_text('{"messages": [{"role": "user", "content": "a\\ud800b"}]}')
    proc = run("route", "p.route", "--request", "r.json", "--json", cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rule"] == "short"


def test_check_a_folder_with_a_symlink_loop(tmp: Path) -> None:
    folder = tmp / "policies"
    folder.mkdir()
    (folder / "ok.route").write_text(POLICY)
    (folder / "a.route").symlink_to("b.route")
    (folder / "b.route").symlink_to("a.route")
    proc = run("check", str(folder), cwd=tmp)
    assert proc.returncode == 1
    assert "a.route:1:1: error[E005]: cannot read" in proc.stderr
    assert "Too many levels of symbolic links" in proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("check", "p.route"),
        ("check", "p.route", "--format", "json"),
        ("replay", "p.route", "t.jsonl"),
        ("replay", "p.route", "t.jsonl", "--format", "json"),
    ],
)
def test_a_full_stdout_is_a_clear_error(tmp: Path, args: tuple[str, ...]) -> None:
    (tmp / "t.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    with open("/dev/full", "w") as full:
        proc = run(*args, cwd=tmp, stdout=full.fileno())
    assert proc.returncode == 1
    assert proc.stderr.endswith(
        f"policyroute {args[0]}: cannot write the output: No space left on device\n"
    )


@pytest.mark.parametrize(
    ("flags", "sent", "why"),
    [
        (["--prompt", "hi"], 4096, "no cap in the request or policy: the default"),
        (["--prompt", "x" * 30], 8000, "the policy's cap"),
        (["--prompt", "x" * 30, "--task", "summarize"], 300, "the policy's cap"),
    ],
)
def test_route_shows_the_max_tokens_that_is_sent(
    tmp: Path, flags: list[str], sent: int, why: str
) -> None:
    proc = run("route", "p.route", *flags, cwd=tmp)
    assert f"max_tokens: {sent} ({why})" in proc.stdout
    proc = run("route", "p.route", *flags, "--json", cwd=tmp)
    assert json.loads(proc.stdout)["max_tokens_sent"] == sent


def test_route_max_tokens_of_the_request_under_and_over_the_cap(tmp: Path) -> None:
    for asked, sent, why in ((100, 100, "the request's"), (900, 300, "the request's 900, capped")):
        body = {"messages": [{"role": "user", "content": "x" * 30}], "max_tokens": asked}
        (tmp / "r.json").write_text(json.dumps(body))
        proc = run("route", "p.route", "--request", "r.json", "--task", "summarize", cwd=tmp)
        assert f"max_tokens: {sent} ({why}" in proc.stdout


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.none(), st.integers(1, 10**6)),
    st.one_of(st.none(), st.integers(1, 10**6)),
    st.one_of(st.none(), st.integers(1, 10**6)),
)
def test_route_and_the_runtime_send_the_same_max_tokens(
    rule_cap: int | None, tier_cap: int | None, requested: int | None
) -> None:
    import time

    from policyroute import loads
    from policyroute.decision import FALLBACK_MAX_TOKENS, first_max_tokens
    from policyroute.runtime import escalation
    from policyroute.runtime.deadlines import Clock, Deadlines
    from policyroute.runtime.ladder import Ladder

    tier = f"max_tokens {tier_cap}" if tier_cap else ""
    rule = f"max_tokens {rule_cap}" if rule_cap else ""
    policy = loads(f'tier t = "m" {{ input 1 output 1 {tier} }}\ndefault -> t {rule}\n')
    decision = policy.decide(Request("hi"))
    assert FALLBACK_MAX_TOKENS == escalation.FALLBACK_MAX_TOKENS
    # What the ladder every front end drives (serve included) sends on its first rung.
    ladder = Ladder(decision, Clock(Deadlines(), time.perf_counter()), requested=requested)
    assert first_max_tokens(decision, requested) == ladder.limit(0)[0]
