"""`policyroute replay` and `diff --traffic` run for real: formats, exit codes, no tracebacks."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from .cli import MT, MT_OUT, ROOT, TWO, run


def test_human_report_on_mt_bench(replay_mt: Callable[..., CompletedProcess[str]]) -> None:
    proc = replay_mt("--group-by", "question", "--bootstrap", "300")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "requests 160, replayed 160 (160 request objects), skipped 0" in out
    assert "evaluated on 160 requests in 80 groups (--group-by question)" in out
    assert "random, same share" in out and "lift over random" in out and "one-sided" in out
    assert proc.stderr == ""  # no progress bar when stderr is not a terminal


def test_json_report_has_the_documented_keys(
    replay_mt: Callable[..., CompletedProcess[str]],
) -> None:
    proc = replay_mt("--group-by", "question", "--format", "json", "--bootstrap", "200")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    for key in (
        "requests",
        "replayed",
        "skipped",
        "tiers",
        "rules",
        "cost_usd",
        "baselines",
        "quality",
    ):
        assert key in data
    assert set(data["tiers"]["haiku"]) >= {"count", "share", "cost_usd"}
    assert set(data["rules"]["math"]) >= {"count", "share", "tier", "cost_usd", "mean_score"}
    q = data["quality"]
    for key in (
        "score",
        "pct_of_top",
        "ci95",
        "pgr",
        "random_same_share",
        "lift_over_random",
        "coverage",
    ):
        assert key in q
    assert set(q["lift_over_random"]) == {"value", "ci95", "p_value"}
    assert q["ci95"][0] <= q["pct_of_top"] <= q["ci95"][1]
    assert sum(t["share"] for t in data["tiers"].values()) == pytest.approx(1.0)


def test_shipped_policy_says_no_outcome_for_sonnet(
    replay_mt: Callable[..., CompletedProcess[str]],
) -> None:
    shipped = "policies/coding-assistant.route"
    proc = replay_mt("--format", "json", "--bootstrap", "100", policy=shipped)
    data = json.loads(proc.stdout)
    assert data["tiers"]["sonnet"]["count"] > 0
    assert data["tiers"]["sonnet"]["mean_score"] is None
    assert data["quality"]["no_outcome"]["sonnet"] == data["tiers"]["sonnet"]["count"]
    assert data["quality"]["coverage"] < 1
    human = replay_mt("--bootstrap", "100", policy=shipped)
    assert "no outcome for this tier" in human.stdout


def test_csv_report(mt_report: Callable[..., str]) -> None:
    rows = list(csv.DictReader(io.StringIO(mt_report("csv", "--bootstrap", "100"))))
    kinds = {r["section"] for r in rows}
    assert {"summary", "tier", "rule", "policy", "baseline", "quality"} <= kinds
    lift = next(r for r in rows if r["name"] == "lift_over_random")
    assert float(lift["ci95_low"]) <= float(lift["score"]) <= float(lift["ci95_high"])


def test_html_report_is_self_contained(mt_report: Callable[..., str]) -> None:
    page = mt_report("html", "--group-by", "question")
    assert page.startswith("<!doctype html>") and "<svg" in page and "</html>" in page
    # Nothing outside the page: no URLs, no external scripts, styles, fonts or images.
    for pattern in (
        r"https?:",
        r"\bsrc\s*=",
        r"\bhref\s*=",
        r"url\(",
        r"@import",
        r"<link",
        r"<script",
        r"//[a-z]",
    ):
        assert not re.search(pattern, page, re.I), pattern
    assert "random routing" in page and "every request on haiku" in page


def test_bad_lines_are_reported_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n{oops\n[]\n')
    proc = run("replay", TWO, str(path))
    assert proc.returncode == 0
    assert f"{path}:2: invalid JSON" in proc.stderr
    assert f"{path}:3: a line must be a JSON object" in proc.stderr
    assert "skipped 2" in proc.stdout
    strict = run("replay", TWO, str(path), "--strict")
    assert strict.returncode == 1
    assert f"{path}:2: invalid JSON" in strict.stderr and "--strict" in strict.stderr
    assert strict.stdout == ""


def test_nothing_replayable_fails(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("{oops\n")
    assert run("replay", TWO, str(path)).returncode == 1


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["replay", TWO, "missing.jsonl"], 2, "no such traffic file"),
        (["replay", "missing.route", MT], 2, "no such file"),
        (["replay", TWO, MT, "--outcomes", "missing.jsonl"], 2, "no such outcomes file"),
        (["replay", TWO, MT, "--bootstrap", "0"], 2, "must be 1 or more"),
        (["replay", TWO, MT, "--seed", "x"], 2, "whole number"),
        (["replay", TWO, MT, "--format", "pdf"], 2, "invalid choice"),
        (["replay", TWO], 2, "required"),
        (["replay", TWO, MT, "-o", "/nonexistent/dir/r.txt"], 1, "cannot write"),
        (["diff", TWO, TWO, "--outcomes", MT_OUT], 2, "need --traffic"),
    ],
)
def test_usage_errors(args: list[str], code: int, words: str) -> None:
    proc = run(*args)
    assert proc.returncode == code, proc.stderr
    assert words in proc.stderr


def test_policy_with_errors_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.route"
    bad.write_text("default -> nowhere\n")
    proc = run("replay", str(bad), MT)
    assert proc.returncode == 1 and "bad.route:1" in proc.stderr


def test_outcome_problems_are_reported_and_strict_stops(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    out.write_text('{"id": "mt-bench/81/1", "tier": "sonnet-x", "score": 3}\n')
    proc = run("replay", TWO, MT, "--outcomes", str(out))
    assert proc.returncode == 0
    assert f"{out}:1: tier 'sonnet-x' is not declared" in proc.stderr
    assert run("replay", TWO, MT, "--outcomes", str(out), "--strict").returncode == 1


def test_diff_with_traffic(tmp_path: Path) -> None:
    cheap = tmp_path / "cheap.route"
    cheap.write_text(
        'tier haiku = "claude-haiku-4-5" { input 1.00 output 5.00 max_tokens 4096 }\n'
        'tier opus = "claude-opus-4-7" { input 5.00 output 25.00 max_tokens 32768 }\n'
        "default -> haiku\n"
    )
    proc = run(
        "diff",
        str(cheap),
        TWO,
        "--traffic",
        MT,
        "--outcomes",
        MT_OUT,
        "--group-by",
        "question",
        "--bootstrap",
        "300",
    )
    assert proc.returncode == 1, proc.stderr
    assert "requests change tier" in proc.stdout
    assert "haiku -> opus" in proc.stdout
    assert re.search(
        r"quality on 160 requests scored under both \(80 groups\): 8\.341 -> 8\.713", proc.stdout
    )
    same = run("diff", TWO, TWO, "--traffic", MT)
    assert same.returncode == 0 and "0 requests change tier" in same.stdout
    js = run("diff", str(cheap), TWO, "--traffic", MT, "--json")
    data = json.loads(js.stdout)
    assert data["changed"] == sum(m["count"] for m in data["moves"]) > 0
    # Without --traffic, diff is the static analysis it always was.
    static = run("diff", str(cheap), TWO)
    assert static.returncode == 1 and "region" in static.stdout


def test_progress_bar_only_on_a_terminal(tmp_path: Path) -> None:
    """Under a pseudo-terminal the bar is drawn on stderr; stdout keeps only the report."""
    import pty

    code = (
        "import sys; from policyroute.cli import main; "
        f"sys.exit(main(['replay', {TWO!r}, {MT!r}, '-o', {str(tmp_path / 'r.txt')!r}]))"
    )
    main_fd, child_fd = pty.openpty()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        stderr=child_fd,
        stdout=subprocess.PIPE,
        timeout=120,
        cwd=ROOT,
    )
    os.close(child_fd)
    seen = b""
    try:
        while chunk := os.read(main_fd, 4096):
            seen += chunk
    except OSError:
        pass
    os.close(main_fd)
    assert proc.returncode == 0
    assert b"replay [" in seen and b"requests" in seen
    assert (tmp_path / "r.txt").read_text().startswith("replay of routellm-two-tier")


def test_import_policyroute_and_check_stay_light() -> None:
    code = (
        "import sys, policyroute; from policyroute.cli import main; "
        "rc = main(['check', 'policies/']); "
        "heavy = [m for m in ('numpy', 'policyroute.measure.stats', 'policyroute.measure.replay') if m in sys.modules]; "
        "print(heavy); sys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    "policy", ["policies/coding-assistant.route", "policies/document-pipeline.route"]
)
def test_html_when_a_tier_or_everything_has_no_outcome(
    mt_report: Callable[..., str], policy: str
) -> None:
    page = mt_report("html", "--bootstrap", "100", policy=policy)
    assert "No outcome for tier sonnet" in page
    assert not re.search(r"https?:|\bsrc\s*=|\bhref\s*=", page)


def test_html_and_csv_without_outcomes(tmp_path: Path) -> None:
    for fmt in ("html", "csv", "json"):
        proc = run("replay", TWO, MT, "--format", fmt)
        assert proc.returncode == 0, proc.stderr
    assert "needs scores" in run("replay", TWO, MT, "--format", "html").stdout


def test_outcomes_that_match_no_request_are_pointed_out(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    out.write_text('{"id": "nope", "tier": "haiku", "score": 3}\n')
    proc = run("replay", TWO, MT, "--outcomes", str(out))
    assert proc.returncode == 1  # the quality section measures nothing: not a success
    assert "no outcome's id matches a replayed request's id" in proc.stderr
    assert "nothing to score" in proc.stdout
