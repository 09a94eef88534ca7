"""TRAFFIC readers: every input shape, every kind of bad line, .gz, line numbers, groups."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyroute.measure.traffic import (
    Location,
    TrafficFileError,
    TrafficItem,
    Unreplayable,
    iter_chunks,
    parse_line,
    read_traffic,
)
from policyroute.runtime.records import AttemptRecord, DecisionRecord, PromptRecord

HERE = Location("t.jsonl", 7)


def parsed(obj: object, group_by: str | None = None) -> TrafficItem | Unreplayable | None:
    raw = obj if isinstance(obj, str) else json.dumps(obj)
    return parse_line(raw.encode(), HERE, tuple(group_by.split(".")) if group_by else None)


def item(obj: object, group_by: str | None = None) -> TrafficItem:
    out = parsed(obj, group_by)
    assert isinstance(out, TrafficItem), out
    return out


def problem(obj: object) -> Unreplayable:
    out = parsed(obj)
    assert isinstance(out, Unreplayable), out
    return out


def record(**changes: object) -> dict[str, object]:
    rec = DecisionRecord(
        time="2026-01-01T00:00:00.000Z",
        request_id="r1",
        policy="p",
        revision="abc",
        rule="quick",
        tier="haiku",
        model="claude-haiku-4-5",
        final_tier="sonnet",
        outcome="ok",
        route={"task": "classify", "user": {"tier": "free"}},
        attempts=[
            AttemptRecord(
                kind="classify", tier="haiku", model="m", input_tokens=5, output_tokens=1
            ),
            AttemptRecord(
                kind="generate",
                tier="haiku",
                model="m",
                status=529,
                error="Overloaded",
                trigger="error",
            ),
            AttemptRecord(
                kind="generate",
                tier="sonnet",
                model="m",
                status=200,
                input_tokens=812,
                output_tokens=96,
            ),
        ],
        triggers=["error"],
        escalations=1,
        input_tokens=817,
        output_tokens=97,
        cache_creation_tokens=0,
        cache_read_tokens=0,
        cost_usd=0.004,
        latency_ms=1884.0,
        prompt=PromptRecord(length=11, sha256="x" * 64, text="Hello there"),
    )
    out: dict[str, object] = json.loads(rec.model_dump_json(exclude_none=True))
    out.update(changes)
    return out


def test_request_shape_with_id_and_route() -> None:
    got = item(
        {
            "id": "q1",
            "max_tokens": 100,
            "system": "Be brief.",
            "messages": [{"role": "user", "content": "Hi"}],
            "route": {"task": "classify", "user": {"tier": "free"}},
        }
    )
    assert (got.id, got.shape, got.where) == ("q1", "request", HERE)
    r = got.request
    assert (r.prompt, r.system, r.task, r.user_tier, r.output_tokens) == (
        "Hi",
        "Be brief.",
        "classify",
        "free",
        100,
    )


def test_request_shape_without_id_takes_the_line_number() -> None:
    assert item({"messages": [{"role": "user", "content": "Hi"}]}).id == "7"
    assert item({"id": 12, "messages": []}).id == "12"


def test_batch_shape() -> None:
    got = item(
        {
            "custom_id": "b-1",
            "params": {
                "model": "x",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "Yo"}],
            },
        }
    )
    assert (got.id, got.shape, got.request.prompt, got.request.output_tokens) == (
        "b-1",
        "batch",
        "Yo",
        5,
    )


def test_record_shape_with_text() -> None:
    got = item(record())
    assert (got.id, got.shape) == ("r1", "record")
    assert got.request.prompt == "Hello there"
    assert got.request.task == "classify" and got.request.user_tier == "free"
    rec = got.recorded
    assert rec is not None
    assert (rec.tier, rec.final_tier, rec.attempts, rec.triggers) == (
        "haiku",
        "sonnet",
        2,
        ("error",),
    )
    assert rec.latency_ms == 1884.0
    # Only the answered generation has usage; the failed haiku attempt and the classifier do not.
    assert set(rec.usage) == {"sonnet"}
    assert rec.usage["sonnet"].input_tokens == 812


def test_record_without_text_is_reported_not_dropped() -> None:
    rec = record()
    rec["prompt"] = {"length": 11, "sha256": "x" * 64}
    p = problem(rec)
    assert p.kind == "no_text"
    assert "log_prompts" in p.detail
    del rec["prompt"]
    assert problem(rec).kind == "no_text"


@pytest.mark.parametrize(
    ("line", "reason", "words"),
    [
        ("{not json", "invalid JSON", "column 2"),
        ("[1, 2]", "not an object", "got list"),
        ('{"prompt": "hi"}', "unknown shape", "'messages'"),
        ('{"id": [1], "messages": []}', "bad id", "'id'"),
        ('{"id": true, "messages": []}', "bad id", "'id'"),
        ('{"messages": "hi"}', "bad request", "'messages' must be a list"),
        ('{"messages": [{"role": "robot", "content": "x"}]}', "bad request", "role"),
        ('{"messages": [], "route": {"files": "two"}}', "bad request", "route.files"),
        ('{"messages": [], "route": {"colour": "red"}}', "bad request", "colour"),
        ('{"custom_id": 5, "params": {}}', "bad id", "custom_id"),
        ('{"custom_id": "a", "params": []}', "bad request", "params"),
        ('{"request_id": 5, "attempts": []}', "bad id", "request_id"),
        ('{"request_id": "a", "attempts": 3, "tier": "h", "rule": "r"}', "bad record", "attempts"),
        ('{"request_id": "a", "attempts": [], "rule": "r"}', "bad record", "'tier'"),
        (
            '{"request_id": "a", "attempts": [{"tier": "h", "input_tokens": -1}], "tier": "h", "rule": "r"}',
            "bad record",
            "token counts",
        ),
        (
            '{"request_id": "a", "attempts": [], "tier": "h", "rule": "r", "latency_ms": "slow"}',
            "bad record",
            "latency_ms",
        ),
        (
            '{"request_id": "a", "attempts": [], "tier": "h", "rule": "r", "prompt": {"text": "x"}, "route": 4}',
            "bad record",
            "route",
        ),
        ("[" * 100_000, "nested too deeply", "nested deeper than 256 levels"),
        (
            "[" + "9" * 5000 + "]",
            "bad number",
            "integer of 5000 digits (at most 308 are read) at column 2",
        ),
        ('{"messages": [], "n": NaN}', "bad number", "NaN is not a JSON number at column 23"),
    ],
)
def test_every_bad_line_says_why(line: str, reason: str, words: str) -> None:
    p = problem(line)
    assert p.kind == "unreadable"
    assert p.reason == reason
    assert words in p.detail
    assert str(p).startswith("t.jsonl:7: ")


def test_not_utf8() -> None:
    p = parse_line(b'{"messages": "\xff"}', HERE)
    assert isinstance(p, Unreplayable) and p.reason == "not UTF-8"


def test_blank_lines_are_not_requests() -> None:
    assert parse_line(b"  \n", HERE) is None


def test_group_by_looks_in_the_line_then_route_then_metadata() -> None:
    line = {
        "messages": [],
        "conversation": "c1",
        "route": {"task": "t", "metadata": {"question": 81}},
    }
    assert item(line, "conversation").group == "c1"
    assert item(line, "task").group == "t"
    assert item(line, "question").group == "81"
    assert item(line, "route.metadata.question").group == "81"
    assert item(line, "missing").group is None
    batch = {"custom_id": "x", "params": {"messages": [], "metadata": {"user_id": "u9"}}}
    assert item(batch, "user_id").group == "u9"


def test_files_plain_and_gz_with_exact_line_numbers(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "a", "messages": [{"role": "user", "content": "one"}]}),
        "",
        "{oops",
        json.dumps({"custom_id": "b", "params": {"messages": []}}),
    ]
    text = "\n".join(lines) + "\n"
    plain = tmp_path / "t.jsonl"
    plain.write_text(text)
    packed = tmp_path / "t.jsonl.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    for path in (plain, packed):
        got = list(read_traffic([path]))
        assert [type(x).__name__ for x in got] == ["TrafficItem", "Unreplayable", "TrafficItem"]
        assert [x.where.line for x in got] == [1, 3, 4]
        assert got[1].where.file == str(path)


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(TrafficFileError, match="cannot open"):
        list(read_traffic([tmp_path / "nope.jsonl"]))
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(gzip.compress(b'{"messages": []}\n' * 1000)[:-30])
    with pytest.raises(TrafficFileError, match=r"bad\.jsonl\.gz"):
        list(read_traffic([bad]))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["req", "blank", "bad"]), max_size=60), st.integers(1, 7))
def test_chunking_keeps_line_numbers(kinds: list[str], size: int) -> None:
    text = {"req": '{"messages": []}', "blank": "", "bad": "{"}
    raw = [(text[k] + "\n").encode() for k in kinds]
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.jsonl"
        path.write_bytes(b"".join(raw))
        seen = []
        for name, start, lines in iter_chunks([path], size):
            assert len(lines) <= size
            for i, line in enumerate(lines):
                out = parse_line(line, Location(name, start + i))
                if out is not None:
                    seen.append((out.where.line, type(out).__name__))
    want = [
        (i + 1, "TrafficItem" if k == "req" else "Unreplayable")
        for i, k in enumerate(kinds)
        if k != "blank"
    ]
    assert seen == want
