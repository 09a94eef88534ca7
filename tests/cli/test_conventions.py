"""The command line's conventions and round trips (issue 9): explain -> route, --attr for every
attribute and classifier answers, `test` correctness, `-` for stdin, --quiet, one summary
line, colour only on a terminal, --format everywhere, one error prefix."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

import policyroute
from policyroute.cli import main

ROOT = Path(__file__).resolve().parents[2]
POLICIES = sorted((ROOT / "policies").glob("*.route"))
TIERS = """\
tier haiku  = "claude-haiku-4-5"  { input 1 output 5 }
tier opus   = "claude-opus-4-7"   { input 5 output 25 }
"""


def cli(*args: str, stdin: str = "", cwd: Path = ROOT) -> tuple[int, str, str]:
    """Run `policyroute ARGS` in this process (fast), with stdin, from `cwd`."""
    out, err = io.StringIO(), io.StringIO()
    old_cwd, old_stdin = os.getcwd(), sys.stdin
    from policyroute.cli import common

    common._stdin_text = None
    try:
        os.chdir(cwd)
        sys.stdin = io.StringIO(stdin)
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as e:
                code = int(e.code or 0)
    finally:
        os.chdir(old_cwd)
        sys.stdin = old_stdin
    return code, out.getvalue(), err.getvalue()


# -- explain -> route round trip --------------------------------------------------------------


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
def test_every_witness_routes_to_its_rule(path: Path, tmp_path: Path) -> None:
    """For every rule of every shipped policy: `explain --rule` prints a request that
    `route --request` decides by that rule (classifier answers included)."""
    policy = policyroute.load(path)
    for rule in policy.rules:
        code, out, err = cli("explain", str(path), "--rule", rule.name)
        assert code == 0, err
        request = tmp_path / f"{rule.name}.json"
        request.write_text(out)
        code, out, err = cli("route", str(path), "--request", str(request), "--json")
        assert code == 0, err
        decided = json.loads(out)
        assert (decided["tier"], decided["rule"]) == (rule.tier, rule.name)
        # And through stdin, as a pipe would.
        code, out, _ = cli(
            "route", str(path), "--request", "-", "--json", stdin=request.read_text()
        )
        assert json.loads(out)["rule"] == rule.name


CLASSIFIED = (
    TIERS
    + 'classifier urgency using haiku labels ["high", "low"] prompt "How urgent?"\n'
    + 'rule urgent: urgency.label == "high" and urgency.confidence >= 0.5 -> opus\n'
    + "default -> haiku\n"
)


def test_classifier_answers_on_the_command_line(tmp_path: Path) -> None:
    p = tmp_path / "c.route"
    p.write_text(CLASSIFIED)
    code, out, _ = cli("route", str(p), "--prompt", "hi", "--attr", "urgency.label=high", "--json")
    assert code == 0 and json.loads(out)["rule"] == "urgent"
    code, out, _ = cli(
        "route", str(p), "--prompt", "hi", "--attr", "urgency.label=high",
        "--attr", "urgency.confidence=0.2", "--json",
    )  # fmt: skip
    assert json.loads(out)["rule"] == "default"
    code, _, err = cli("route", str(p), "--prompt", "hi", "--attr", "urgency.label=urgnt")
    assert code == 2 and "not a label of classifier 'urgency'" in err
    code, _, err = cli("route", str(p), "--prompt", "hi", "--attr", "urgency.confidence=2")
    assert code == 2 and "[0, 1]" in err


def test_classifier_answers_in_request_json(tmp_path: Path) -> None:
    p = tmp_path / "c.route"
    p.write_text(CLASSIFIED)
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "route": {"classifiers": {"urgency": {"label": "high", "confidence": 0.9}}},
    }
    code, out, _ = cli("route", str(p), "--request", "-", "--explain", stdin=json.dumps(body))
    assert code == 0 and "rule:       urgent" in out
    assert "(given)" in out and "asked" not in out
    body["route"] = {"classifiers": {"urgency": 3}}
    code, _, err = cli("route", str(p), "--request", "-", stdin=json.dumps(body))
    assert code == 2 and err.startswith("policyroute route: <stdin>: ")


def test_explain_says_not_asked_without_a_classifier(tmp_path: Path) -> None:
    p = tmp_path / "c.route"
    p.write_text(CLASSIFIED)
    code, out, _ = cli("route", str(p), "--prompt", "hi", "--explain")
    assert code == 0 and "(not asked: no classifier)" in out and "(asked)" not in out


# -- --attr reads every attribute -------------------------------------------------------------

EVERY = (
    TIERS
    + "rule a: has_tools and has_images and turns == 3 and output_tokens == 50 -> opus\n"
    + 'rule b: system contains "careful" and user.tier == "3" and metadata.n > 2 -> opus\n'
    + "default -> haiku\n"
)


def test_attr_accepts_every_attribute(tmp_path: Path) -> None:
    p = tmp_path / "e.route"
    p.write_text(EVERY)
    code, out, err = cli(
        "route", str(p), "--prompt", "hi", "--attr", "has_tools=true", "--attr", "has_images=yes",
        "--attr", "turns=3", "--attr", "output_tokens=50", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["rule"] == "a"
    code, out, err = cli(
        "route", str(p), "--prompt", "hi", "--attr", "system=be careful",
        "--attr", "user.tier=3", "--attr", "metadata.n=3", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["rule"] == "b"


@pytest.mark.parametrize(
    ("item", "says"),
    [
        ("files=many", "--attr files: must be a whole number"),
        ("has_tools=maybe", "--attr has_tools: must be true or false"),
        ("length=5", "--attr length: computed from the prompt"),
        ("usr.tier=x", "--attr usr.tier: not an attribute"),
        ("files", "--attr takes KEY=VALUE"),
    ],
)
def test_attr_errors_are_usage_errors(item: str, says: str) -> None:
    code, _, err = cli("route", "policies/coding-assistant.route", "--prompt", "x", "--attr", item)
    assert code == 2 and err.startswith("policyroute route: ") and says in err, err


def test_user_tier_is_spelt_one_way() -> None:
    body = json.dumps({"messages": [], "route": {"user": {"tier": 3}}})
    _, _, from_json = cli("route", "policies/coding-assistant.route", "--request", "-", stdin=body)
    body = json.dumps({"messages": [], "route": {"user_tier": 3}})
    _, _, keyword = cli("route", "policies/coding-assistant.route", "--request", "-", stdin=body)
    assert "route.user.tier: must be a string" in from_json
    assert "route.user.tier: must be a string" in keyword


# -- test -------------------------------------------------------------------------------------


def test_test_of_a_policy_that_does_not_load_fails_in_json(tmp_path: Path) -> None:
    p = tmp_path / "bad.route"
    p.write_text(TIERS + "default -> sonet\n")
    code, out, _ = cli("test", str(p), "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    assert report["not_loaded"] == [str(p)] and report["errors"][0]["code"] == "E102"
    assert report["coverage"] == 0.0


def test_test_of_a_policy_without_tests_fails(tmp_path: Path) -> None:
    p = tmp_path / "none.route"
    p.write_text(TIERS + "default -> haiku\n")
    code, out, err = cli("test", str(p))
    assert code == 1 and "has no inline tests" in err and "1 without tests" in out


@pytest.mark.parametrize("pct", ["150", "-1", "x"])
def test_fail_under_is_a_percentage(pct: str) -> None:
    code, _, err = cli("test", "policies/", "--fail-under", pct)
    assert code == 2 and "--fail-under" in err


def test_test_reads_stdin() -> None:
    text = (ROOT / "policies" / "coding-assistant.route").read_text()
    code, out, _ = cli("test", "-", stdin=text, cwd=ROOT / "policies")
    assert code == 0 and out.endswith(" passed, 0 failed\n")


# -- stdin, --quiet, summaries, duplicates, --format ------------------------------------------


def test_check_stdin_and_duplicate_paths() -> None:
    text = (ROOT / "policies" / "saas-support.route").read_text()
    code, out, _ = cli("check", "-", stdin=text, cwd=ROOT / "policies")
    assert code == 0 and out == "checked 1 file: 0 errors, 0 warnings\n"
    code, out, _ = cli("check", "policies/", "policies/saas-support.route", "./policies")
    assert out == "checked 4 files: 0 errors, 0 warnings\n"


def test_check_quiet_prints_only_problems(tmp_path: Path) -> None:
    assert cli("check", "--quiet", "policies/")[1:] == ("", "")
    p = tmp_path / "bad.route"
    p.write_text(TIERS + "default -> sonet\n")
    code, out, err = cli("check", "-q", str(p))
    assert code == 1 and out == "" and "error[E102]" in err


def test_fmt_stdin_writes_stdout() -> None:
    code, out, err = cli(
        "fmt", "-", stdin='tier   haiku = "h" {input 1 output 5}\ndefault->haiku\n'
    )
    assert code == 0 and err == ""
    assert out == 'tier haiku = "h" { input 1  output 5 }\ndefault -> haiku\n'
    code, out, _ = cli("fmt", "--check", "-", stdin="default->haiku\n")
    assert code == 1 and out.startswith("--- <stdin> (current)")


@pytest.mark.parametrize(
    "args",
    [
        ["check", "policies/"],
        ["test", "policies/"],
        ["route", "policies/coding-assistant.route", "--prompt", "x"],
        ["diff", "policies/coding-assistant.route", "policies/coding-assistant.route"],
        ["explain", "policies/coding-assistant.route", "--rule", "tiny"],
    ],
    ids=lambda a: a[0],
)
def test_json_is_an_alias_of_format_json(args: list[str]) -> None:
    a = cli(*args, "--format", "json")
    b = cli(*args, "--json")
    assert a == b
    json.loads(a[1])


def test_one_error_prefix() -> None:
    for args in (
        ["check", "nope.route"],
        ["test", "nope.route"],
        ["fmt", "nope.route"],
        ["route", "nope.route", "--prompt", "x"],
        ["diff", "nope.route", "policies/coding-assistant.route"],
        ["explain", "nope.route", "--rule", "x"],
        ["watch", "nope.route"],
    ):
        code, _, err = cli(*args)
        assert code == 2, args
        assert err.startswith(f"policyroute {args[0]}: nope.route: no such file"), err


def test_no_colour_when_piped_or_no_color(tmp_path: Path) -> None:
    p = tmp_path / "bad.route"
    p.write_text(TIERS + "default -> sonet\n")
    piped = subprocess.run(
        [sys.executable, "-m", "policyroute.cli", "check", str(p)],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": ""},
    )
    assert "\x1b[" not in piped.stderr and "error[E102]" in piped.stderr


def test_colour_on_a_terminal_unless_no_color(tmp_path: Path) -> None:
    pty = pytest.importorskip("pty")
    p = tmp_path / "bad.route"
    p.write_text(TIERS + "default -> sonet\n")
    for no_color, coloured in (("", True), ("1", False)):
        env = {**os.environ, "NO_COLOR": no_color, "TERM": "xterm"}
        primary, secondary = pty.openpty()
        proc = subprocess.run(
            [sys.executable, "-m", "policyroute.cli", "check", str(p)],
            stdout=subprocess.PIPE,
            stderr=secondary,
            env=env,
            timeout=60,
        )
        os.close(secondary)
        err = os.read(primary, 65536).decode()
        os.close(primary)
        assert proc.returncode == 1
        assert ("\x1b[" in err) is coloured, err


def test_route_explain_escapes_control_characters(tmp_path: Path) -> None:
    p = tmp_path / "esc.route"
    p.write_bytes(
        TIERS.encode() + b'keywords k = ["red\x1b[31m alert"]\n'
        b"rule r: prompt contains any k -> opus\ndefault -> haiku\n"
    )
    code, out, _ = cli("route", str(p), "--prompt", "hello", "--explain")
    assert code == 0
    assert "\x1b" not in out and "\\x1b[31m" in out
