"""Hostile and careless input to replay, diff --traffic and learn's readers (issue 25)."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from policyroute import loads
from policyroute.measure.outcomes import read_outcomes
from policyroute.measure.replay import ReplayOptions, replay
from policyroute.measure.traffic import Location, iter_chunks, parse_line, read_traffic

from .cli import run

POLICY = """\
tier haiku = "claude-haiku-4-5" { input 1 output 5 }
tier opus = "claude-opus-4-7" { input 5 output 25 }
rule short: length < 20 -> haiku
default -> opus
"""
BIG = "9" * 5000


def line(rid: str, prompt: str = "hi", **route: object) -> str:
    obj: dict[str, object] = {"id": rid, "messages": [{"role": "user", "content": prompt}]}
    if route:
        obj["route"] = route
    return json.dumps(obj)


@pytest.fixture
def policy(tmp_path: Path) -> str:
    path = tmp_path / "p.route"
    path.write_text(POLICY)
    return str(path)


def write(tmp_path: Path, name: str, *lines: str) -> str:
    path = tmp_path / name
    path.write_text("".join(x + "\n" for x in lines))
    return str(path)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_long_integer_in_traffic_is_one_located_problem(
    tmp_path: Path, policy: str, jobs: str
) -> None:
    bad = '{"id": "b", "max_tokens": ' + BIG + ', "messages": []}'
    traffic = write(tmp_path, "t.jsonl", line("a"), bad, line("c"))
    proc = run("replay", policy, traffic, "--jobs", jobs)
    assert proc.returncode == 0, proc.stderr
    assert f"{traffic}:2: integer of 5000 digits" in proc.stderr
    assert "replayed 2" in proc.stdout


def test_a_long_integer_or_nan_in_outcomes_is_located(tmp_path: Path, policy: str) -> None:
    traffic = write(tmp_path, "t.jsonl", line("a"), line("b"))
    outcomes = write(
        tmp_path,
        "o.jsonl",
        json.dumps({"id": "a", "tier": "haiku", "score": 1}),
        '{"id": "b", "tier": "haiku", "score": ' + BIG + "}",
        '{"id": "b", "tier": "opus", "score": Infinity}',
    )
    proc = run("replay", policy, traffic, "--outcomes", outcomes)
    assert proc.returncode == 0, proc.stderr
    assert f"{outcomes}:2: integer of 5000 digits" in proc.stderr
    assert f"{outcomes}:3: Infinity is not a JSON number" in proc.stderr


def test_learn_reads_through_the_same_guarded_path(tmp_path: Path) -> None:
    traffic = write(tmp_path, "t.jsonl", line("a"), '{"id": ' + BIG + ', "messages": []}')
    items = list(read_traffic([traffic]))
    assert [type(i).__name__ for i in items] == ["TrafficItem", "Unreplayable"]
    assert "integer of 5000 digits" in str(items[1])


def test_a_line_over_the_limit_is_skipped_unread_and_reported(tmp_path: Path) -> None:
    from policyroute.measure.traffic import LongLine

    traffic = write(tmp_path, "t.jsonl", line("a"), line("b", "x" * 500), line("c"))
    chunks = list(iter_chunks([traffic], max_bytes=200))
    (_, _, raws) = chunks[0]
    assert isinstance(raws[1], LongLine)
    p = parse_line(raws[1], Location(traffic, 2))
    assert p is not None and str(p) == f"{traffic}:2: line longer than 200 bytes: not read"


def test_a_line_of_65_mib_is_reported_with_its_line(tmp_path: Path, policy: str) -> None:
    path = tmp_path / "t.jsonl"
    with path.open("w") as f:
        f.write(line("a") + "\n")
        f.write('{"id": "big", "messages": [{"role": "user", "content": "')
        f.write("x" * (65 * 1024 * 1024))
        f.write('"}]}\n')
        f.write(line("c") + "\n")
    proc = run("replay", policy, str(path))
    assert proc.returncode == 0, proc.stderr
    assert f"{path}:2: line longer than 67,108,864 bytes: not read" in proc.stderr
    assert "replayed 2" in proc.stdout


def test_more_jobs_than_chunks_start_no_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    traffic = write(tmp_path, "t.jsonl", line("a"), line("b"), line("c"))

    def no_pool(method: str) -> None:
        raise AssertionError(f"a {method} pool for a file of one chunk")

    monkeypatch.setattr(multiprocessing, "get_context", no_pool)
    report = replay(loads(POLICY), [traffic], options=ReplayOptions(processes=2000))
    assert report.replayed == 3


def test_duplicate_ids_are_flagged(tmp_path: Path, policy: str) -> None:
    traffic = write(tmp_path, "t.jsonl", line("a"), line("b"), line("a"), line("a"))
    proc = run("replay", policy, traffic, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert f"2 request(s) repeat an earlier request's id, first at {traffic}:3" in proc.stderr
    dup = json.loads(proc.stdout)["duplicate_ids"]
    assert dup == {"count": 2, "examples": [f"{traffic}:3", f"{traffic}:4"]}
    # Lines without an id are numbered by line: two such files are not duplicates.
    plain = [json.dumps({"messages": [{"role": "user", "content": "x"}]})] * 2
    one, two = write(tmp_path, "1.jsonl", *plain), write(tmp_path, "2.jsonl", *plain)
    proc = run("replay", policy, one, two)
    assert "repeat" not in proc.stderr


def test_group_by_a_field_no_request_has_is_an_error(tmp_path: Path, policy: str) -> None:
    traffic = write(tmp_path, "t.jsonl", line("a"), line("b", conversation="c1"))
    outcomes = write(tmp_path, "o.jsonl", json.dumps({"id": "a", "tier": "haiku", "score": 1}))
    proc = run("replay", policy, traffic, "--outcomes", outcomes, "--group-by", "nosuchfield")
    assert proc.returncode == 2
    assert "--group-by nosuchfield: no replayed request has this field" in proc.stderr
    assert proc.stdout == ""
    proc = run("diff", policy, policy, "--traffic", traffic, "--group-by", "nosuchfield")
    assert proc.returncode == 2


def test_outcomes_matching_no_request_are_reported(tmp_path: Path, policy: str) -> None:
    traffic = write(tmp_path, "t.jsonl", line("a"), line("b"))
    some = write(
        tmp_path,
        "o.jsonl",
        json.dumps({"id": "a", "tier": "haiku", "score": 1}),
        json.dumps({"id": "zz", "tier": "haiku", "score": 0}),
    )
    proc = run("replay", policy, traffic, "--outcomes", some, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert "1 outcome id(s) match no replayed request ('zz')" in proc.stderr
    unmatched = json.loads(proc.stdout)["quality"]["unmatched_outcomes"]
    assert unmatched == {"count": 1, "examples": ["zz"]}
    none = write(tmp_path, "none.jsonl", json.dumps({"id": "q", "tier": "haiku", "score": 1}))
    proc = run("replay", policy, traffic, "--outcomes", none)
    assert proc.returncode == 1
    assert "no outcome's id matches a replayed request's id" in proc.stderr


def test_diff_traffic_with_no_request_exits_1_like_replay(tmp_path: Path, policy: str) -> None:
    traffic = write(tmp_path, "t.jsonl", '{"x": 1}', "[]")
    assert run("replay", policy, traffic).returncode == 1
    proc = run("diff", policy, policy, "--traffic", traffic)
    assert proc.returncode == 1
    assert "no request could be replayed" in proc.stderr


def test_an_outcome_line_over_the_limit_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from policyroute import jsonsafe

    monkeypatch.setattr(jsonsafe, "MAX_LINE_BYTES", 100)
    path = tmp_path / "o.jsonl"
    long = json.dumps({"id": "a", "tier": "haiku", "score": 1, "note": "x" * 200})
    path.write_text(long + '\n{"id": "b", "tier": "haiku", "score": 1}\n')
    out = read_outcomes([str(path)], loads(POLICY).tiers)
    assert [(p.line, p.message) for p in out.problems] == [
        (1, "line longer than 100 bytes: not read")
    ]
    assert out.score("b", "haiku") == 1.0 and out.score("a", "haiku") is None


def test_an_html_report_of_huge_equal_scores(tmp_path: Path, policy: str) -> None:
    # Found by bench_fuzz.py (seed 25, case 76478): a flat plane of 1e20 divided by zero.
    traffic = write(tmp_path, "t.jsonl", line("a"), line("b", "x" * 40))
    outcomes = write(
        tmp_path,
        "o.jsonl",
        *(
            f'{{"id": "{rid}", "tier": "{tier}", "score": 99999999999999999999}}'
            for rid in "ab"
            for tier in ("haiku", "opus")
        ),
    )
    out = tmp_path / "r.html"
    proc = run(
        "replay", policy, traffic, "--outcomes", outcomes, "--format", "html", "-o", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    assert "<svg" in out.read_text()
