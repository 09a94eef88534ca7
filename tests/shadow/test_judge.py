"""`policyroute judge` against the fake Anthropic server: modes, cache, cost gate, batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_anthropic import FakeAnthropic, Reply
from pairs_support import HAIKU, JUDGE, SONNET, outcomes, pair, write

from policyroute.cli import main

PAIRS = [
    pair("q1", "What is 2+2?", "4", "5"),
    pair("q2", "Capital of France?", "Paris", "Paris."),
    pair("q3", "Name a prime.", "7", "9"),
]


def judge(tmp_path: Path, *args: str) -> int:
    return main(["judge", *args, "--cache", str(tmp_path / "cache.sqlite")])


def judge_requests(fake: FakeAnthropic) -> list[dict]:
    return [s.body for s in fake.requests if s.model == JUDGE]


def test_single_grades_each_answer_and_keeps_real_usage(
    fake: FakeAnthropic, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write(tmp_path / "pairs.jsonl", PAIRS)
    # Requests go out concurrently; score by content so the order does not matter.
    fake.default_reply = Reply(text="Fine. Rating: [[6]]")
    out = tmp_path / "out.jsonl"
    assert (
        judge(tmp_path, str(src), "--judge-tier", "opus", "-o", str(out), "--concurrency", "1") == 0
    )
    lines = outcomes(out)
    assert [(o["id"], o["tier"]) for o in lines] == [
        (p, t) for p in ("q1", "q2", "q3") for t in ("sonnet", "haiku")
    ]
    assert all(o["score"] == 6.0 for o in lines)
    first = lines[0]
    assert (first["input_tokens"], first["output_tokens"], first["answered_by"]) == (20, 40, SONNET)
    assert first["judge"]["model"] == JUDGE and first["judge"]["mode"] == "single"
    assert first["judge"]["input_tokens"] > 0 and first["judge"]["cost_usd"] > 0
    sent = judge_requests(fake)
    assert len(sent) == 6
    assert all("Rating: [[N]]" in b["system"] for b in sent)
    assert any("<answer>\n5\n</answer>" in b["messages"][0]["content"] for b in sent)
    err = capsys.readouterr().err
    assert "estimated cost: $" in err and "3 of 3 pair(s) judged" in err


def test_cache_never_judges_a_pair_twice(fake: FakeAnthropic, tmp_path: Path) -> None:
    src = write(tmp_path / "pairs.jsonl", [*PAIRS, PAIRS[0]])  # a duplicate line too
    fake.default_reply = Reply(text="Rating: [[7]]")
    out = tmp_path / "out.jsonl"
    assert judge(tmp_path, str(src), "--judge-tier", "opus", "-o", str(out)) == 0
    assert len(judge_requests(fake)) == 6  # the duplicate pair hit the cache
    first = out.read_text()
    fake.reset()
    assert judge(tmp_path, str(src), "--judge-tier", "opus", "-o", str(out)) == 0
    assert judge_requests(fake) == []
    again = outcomes(out)
    assert [o["score"] for o in again] == [o["score"] for o in outcomes_of(first)]
    assert all(o["judge"]["cached"] for o in again)
    # A different rubric is a different question: asked again.
    rubric = tmp_path / "rubric.txt"
    rubric.write_text("Only correctness counts.")
    fake.default_reply = Reply(text="Rating: [[7]]")
    assert (
        judge(tmp_path, str(src), "--judge-tier", "opus", "--rubric", str(rubric), "-o", str(out))
        == 0
    )
    assert len(judge_requests(fake)) == 6
    assert all(
        "Only correctness counts." in b["messages"][0]["content"] for b in judge_requests(fake)
    )


def outcomes_of(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_pairwise_asks_both_orders_and_cancels_position_bias(
    fake: FakeAnthropic, tmp_path: Path
) -> None:
    src = write(tmp_path / "pairs.jsonl", PAIRS[:1])
    out = tmp_path / "out.jsonl"
    # A judge that always prefers the first answer it sees: the orders cancel to a draw.
    fake.default_reply = Reply(text="The first is better. [[A]]")
    assert (
        judge(tmp_path, str(src), "--judge-tier", "opus", "--mode", "pairwise", "-o", str(out)) == 0
    )
    assert [o["score"] for o in outcomes(out)] == [0.5, 0.5]
    shown = [b["messages"][0]["content"] for b in judge_requests(fake)]
    assert any("<answer_a>\n4\n</answer_a>\n\n<answer_b>\n5\n" in s for s in shown)
    assert any("<answer_a>\n5\n</answer_a>\n\n<answer_b>\n4\n" in s for s in shown)


def test_pairwise_consistent_preference(fake: FakeAnthropic, tmp_path: Path) -> None:
    src = write(tmp_path / "pairs.jsonl", PAIRS[:1])
    out = tmp_path / "out.jsonl"
    # Concurrency 1 keeps the order: routed shown first, then shadow first. The routed answer
    # wins both times.
    fake.script(JUDGE, [Reply(text="[[A]]"), Reply(text="[[B]]")])
    args = ["--judge-tier", "opus", "--mode", "pairwise", "--concurrency", "1", "-o", str(out)]
    assert judge(tmp_path, str(src), *args) == 0
    assert [(o["tier"], o["score"]) for o in outcomes(out)] == [("sonnet", 1.0), ("haiku", 0.0)]


def test_unreadable_verdict_is_reported_not_scored(
    fake: FakeAnthropic, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write(tmp_path / "pairs.jsonl", PAIRS[:1])
    fake.default_reply = Reply(text="I'd say it's pretty good.")
    out = tmp_path / "out.jsonl"
    assert judge(tmp_path, str(src), "--judge-tier", "opus", "-o", str(out)) == 1
    assert outcomes(out) == []
    assert "pairs.jsonl:1: not judged: the judge's answer: no rating" in capsys.readouterr().err


def test_api_failures_are_reported_and_the_rest_written(
    fake: FakeAnthropic, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write(tmp_path / "pairs.jsonl", PAIRS[:2])
    fake.script(JUDGE, [Reply(status=400, text="bad request")])
    fake.default_reply = Reply(text="Rating: [[9]]")
    out = tmp_path / "out.jsonl"
    args = ["--judge-tier", "opus", "--concurrency", "1", "-o", str(out)]
    assert judge(tmp_path, str(src), *args) == 1
    assert [o["id"] for o in outcomes(out)] == ["q2", "q2"]
    assert "pairs.jsonl:1: not judged: BadRequestError: 400 bad request" in capsys.readouterr().err
    # The failure was not cached: the next run asks only for what is missing.
    fake.reset()
    fake.default_reply = Reply(text="Rating: [[9]]")
    assert judge(tmp_path, str(src), *args) == 0
    assert len(judge_requests(fake)) == 1
    assert [o["id"] for o in outcomes(out)] == ["q1", "q1", "q2", "q2"]


def test_cost_gate_needs_yes(
    fake: FakeAnthropic, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write(tmp_path / "pairs.jsonl", PAIRS)
    out = tmp_path / "out.jsonl"
    base = ["--judge-tier", "opus", "-o", str(out), "--confirm-above", "0.000001"]
    assert judge(tmp_path, str(src), *base) == 1
    err = capsys.readouterr().err
    assert "estimated cost: $" in err and "rerun with --yes" in err
    assert judge_requests(fake) == [] and not out.exists()
    fake.default_reply = Reply(text="Rating: [[5]]")
    assert judge(tmp_path, str(src), *base, "--yes") == 0
    assert len(outcomes(out)) == 6


def test_estimate_halves_with_batch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write(tmp_path / "pairs.jsonl", PAIRS)
    out = str(tmp_path / "out.jsonl")

    def cost(*extra: str) -> float:
        assert (
            judge(tmp_path, str(src), "--judge-tier", "opus", "-o", out, "--dry-run", *extra) == 0
        )
        line = next(x for x in capsys.readouterr().err.splitlines() if "estimated cost" in x)
        return float(line.split("$")[1].split()[0])

    online, batched = cost(), cost("--batch")
    assert online > 0 and batched == pytest.approx(online / 2, rel=1e-3)


def test_batch_submits_polls_and_joins_by_custom_id(
    fake: FakeAnthropic, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write(tmp_path / "pairs.jsonl", PAIRS[:2])
    fake.batches.polls = 2
    # The fake answers in request order and returns results in reverse: the join is by id.
    fake.script(
        JUDGE, [Reply(text="[[9]]"), Reply(text="[[2]]"), Reply(text="[[8]]"), Reply(text="[[7]]")]
    )
    out = tmp_path / "out.jsonl"
    args = ["--judge-tier", "opus", "--batch", "--poll-interval", "0.01", "-o", str(out)]
    assert judge(tmp_path, str(src), *args) == 0
    assert [(o["id"], o["tier"], o["score"]) for o in outcomes(out)] == [
        ("q1", "sonnet", 9.0),
        ("q1", "haiku", 2.0),
        ("q2", "sonnet", 8.0),
        ("q2", "haiku", 7.0),
    ]
    assert len(fake.batches.created) == 1
    judge_line = outcomes(out)[0]["judge"]
    assert judge_line["cost_usd"] > 0
    assert not (tmp_path / "out.jsonl.batch.json").exists()
    assert "submitted batch msgbatch_" in capsys.readouterr().err


def test_batch_reports_errored_and_expired_items(
    fake: FakeAnthropic, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write(tmp_path / "pairs.jsonl", PAIRS[:2])
    fake.script(JUDGE, [Reply(status=500, text="internal")])  # the first request errors
    fake.default_reply = Reply(text="Rating: [[6]]")
    out = tmp_path / "out.jsonl"
    args = ["--judge-tier", "opus", "--batch", "--poll-interval", "0.01", "-o", str(out)]
    # The q2 requests expire: learn their custom_ids from a dry run of the plan.
    import policyroute
    from policyroute.judge.prompts import DEFAULT_RUBRIC
    from policyroute.judge.read import read_pairs
    from policyroute.judge.run import Options, plan

    opus = next(
        t
        for t in policyroute.loads(
            'tier opus = "claude-opus-4-7" { input 5.00 output 25.00 }\ndefault -> opus\n'
        ).tiers
    )
    plans, _ = plan(read_pairs([src]), Options("single", opus, DEFAULT_RUBRIC, batch=True))
    fake.batches.expire = {r.key for r in plans[1].requests}
    assert judge(tmp_path, str(src), *args) == 1
    err = capsys.readouterr().err
    assert "batch items: 1 errored, 2 expired" in err
    assert "pairs.jsonl:1: not judged: batch item errored: api_error: internal" in err
    assert "pairs.jsonl:2: not judged: batch item expired" in err
    assert outcomes(out) == []
    # The next run resubmits only what did not succeed.
    fake.reset()
    fake.default_reply = Reply(text="Rating: [[6]]")
    assert judge(tmp_path, str(src), *args) == 0
    (batch_id,) = fake.batches.created
    assert len(fake.batches.batches[batch_id]["requests"]) == 3
    assert len(outcomes(out)) == 4


def test_interrupted_batch_resumes_without_resubmitting(
    fake: FakeAnthropic, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write(tmp_path / "pairs.jsonl", PAIRS)
    fake.batches.polls = 1000
    fake.default_reply = Reply(text="Rating: [[4]]")
    out = tmp_path / "out.jsonl"
    args = ["--judge-tier", "opus", "--batch", "--poll-interval", "0.01", "-o", str(out)]
    assert judge(tmp_path, str(src), *args, "--max-wait", "0.05") == 1
    state = tmp_path / "out.jsonl.batch.json"
    saved = json.loads(state.read_text())
    (batch_id,) = fake.batches.created
    assert [b["id"] for b in saved["batches"]] == [batch_id]
    assert "still in_progress" in capsys.readouterr().err
    # Later, the batch has ended; the same command collects it and submits nothing new.
    fake.batches.batches[batch_id]["polls_left"] = 0
    assert judge(tmp_path, str(src), *args) == 0
    assert fake.batches.created == [batch_id]
    assert len(outcomes(out)) == 6 and not state.exists()
    assert f"resuming batch {batch_id}" in capsys.readouterr().err


def test_schema_and_reference_judges_need_no_model(fake: FakeAnthropic, tmp_path: Path) -> None:
    pairs = [
        pair(
            "j1",
            "Give JSON",
            '{"name": "a", "n": 1}',
            '```json\n{"name": "a"}\n```',
            reference={"name": "a", "n": 1},
        ),
        pair("j2", "Say yes", "Yes", " yes ", reference="yes"),
    ]
    src = write(tmp_path / "pairs.jsonl", pairs)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "required": ["name", "n"]}))
    out = tmp_path / "out.jsonl"
    assert (
        judge(tmp_path, str(src), "--mode", "schema", "--schema", str(schema), "-o", str(out)) == 0
    )
    assert [o["score"] for o in outcomes(out)] == [1.0, 0.0, 0.0, 0.0]
    assert judge(tmp_path, str(src), "--mode", "reference", "-o", str(out)) == 0
    assert [o["score"] for o in outcomes(out)] == [1.0, 0.0, 1.0, 1.0]
    assert fake.requests == []


def test_pairs_without_text_and_bad_lines_are_reported(
    fake: FakeAnthropic, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write(
        tmp_path / "pairs.jsonl",
        [pair("a", "hi", "x", "y", kept=False), PAIRS[0]],
        ["{not json", '{"kind": "shadow_pair", "id": "z"}', "[1, 2]"],
    )
    fake.default_reply = Reply(text="Rating: [[5]]")
    out = tmp_path / "out.jsonl"
    assert judge(tmp_path, str(src), "--judge-tier", "opus", "-o", str(out)) == 1
    err = capsys.readouterr().err
    assert "pairs.jsonl:1: skipped: no prompt or answers (written without log_prompts)" in err
    assert (
        "pairs.jsonl:3: invalid JSON: expecting property name enclosed in double quotes at column 2"
        in err
    )
    assert "pairs.jsonl:4: decision: Field required" in err
    assert "pairs.jsonl:5: not a pair" in err
    assert len(outcomes(out)) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope.jsonl", "-o", "o"], "--mode single needs --judge-tier TIER"),
        (["nope.jsonl", "--judge-tier", "opus", "-o", "o"], "nope.jsonl: no such file"),
        (["P", "--judge-tier", "gpt", "-o", "o"], "--judge-tier 'gpt' is not a tier here"),
        (["P", "--mode", "schema", "-o", "o"], "--mode schema needs --schema FILE"),
        (["P", "--mode", "schema", "--schema", "P", "-o", "o"], "P:2:1: invalid JSON"),
        (["P", "--mode", "reference", "--batch", "-o", "o"], "judges without a model"),
    ],
)
def test_usage_errors_exit_2_without_traceback(
    tmp_path: Path,
    args: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # In-process through the command's own entry point: an exception main() does not turn
    # into a message escapes here and fails the test, as a traceback would in a shell.
    src = write(tmp_path / "P", [*PAIRS[:1], "{"])  # type: ignore[list-item]
    args = [str(src) if a == "P" else a for a in args]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "x")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    try:
        code = main(["judge", *args])
    except SystemExit as e:  # argparse's own usage errors
        code = e.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err


def test_judge_tier_from_a_policy(fake: FakeAnthropic, tmp_path: Path) -> None:
    policy = tmp_path / "p.route"
    policy.write_text(
        f'tier small = "{HAIKU}" {{ input 1 output 5 }}\ntier big = "{SONNET}" {{ input 3 output 15 }}\n'
        "default -> big\n"
    )
    src = write(tmp_path / "pairs.jsonl", PAIRS[:1])
    fake.default_reply = Reply(text="[[3]]")
    out = tmp_path / "out.jsonl"
    assert (
        judge(tmp_path, str(src), "--judge-tier", "small", "--policy", str(policy), "-o", str(out))
        == 0
    )
    assert {s.model for s in fake.requests} == {HAIKU}
    assert outcomes(out)[0]["judge"]["model"] == HAIKU


def test_a_batch_interrupted_by_ctrl_c_resumes(fake: FakeAnthropic, tmp_path: Path) -> None:
    import signal
    import time

    src = write(tmp_path / "pairs.jsonl", PAIRS)
    fake.batches.polls = 10_000
    fake.default_reply = Reply(text="Rating: [[5]]")
    out = tmp_path / "out.jsonl"
    args = ["judge", str(src), "--judge-tier", "opus", "--batch", "--poll-interval", "0.05"]
    args += ["-o", str(out), "--cache", str(tmp_path / "cache.sqlite")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "policyroute.cli", *args],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ANTHROPIC_BASE_URL": fake.base_url, "ANTHROPIC_API_KEY": "x"},
    )
    state = tmp_path / "out.jsonl.batch.json"
    deadline = time.monotonic() + 60
    while not fake.batches.created and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # a few polls
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    (batch_id,) = fake.batches.created
    assert json.loads(state.read_text())["batches"][0]["id"] == batch_id
    fake.batches.batches[batch_id]["polls_left"] = 0  # the batch ends while nobody watches
    assert main(args) == 0
    assert fake.batches.created == [batch_id] and len(outcomes(out)) == 6


def test_a_request_shadowed_to_two_tiers_has_one_outcome_per_tier(
    fake: FakeAnthropic, tmp_path: Path
) -> None:
    two = pair("q9", "Hard question", "strong", "weak")
    mid = json.loads(json.dumps(two))
    mid["shadow"].update(tier="sonnet", model=SONNET, text="middle", chars=6)
    two["routed"].update(tier="opus", model=JUDGE)
    mid["routed"].update(tier="opus", model=JUDGE)
    src = write(tmp_path / "pairs.jsonl", [two, mid])
    fake.default_reply = Reply(text="Rating: [[6]]")
    out, traffic = tmp_path / "out.jsonl", tmp_path / "traffic.jsonl"
    args = ["--judge-tier", "opus", "-o", str(out), "--traffic", str(traffic)]
    assert judge(tmp_path, str(src), *args) == 0
    assert sorted(o["tier"] for o in outcomes(out)) == ["haiku", "opus", "sonnet"]
    assert len(outcomes(traffic)) == 1
