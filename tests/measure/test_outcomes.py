"""OUTCOMES readers: JSON lines and CSV, model ids mapped to tiers, every bad line located."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from policyroute import loads
from policyroute.measure.outcomes import OutcomesFileError, Usage, read_outcomes

POLICY = loads(
    'tier haiku = "claude-haiku-4-5" { input 1 output 5 }\n'
    'tier opus = "claude-opus-4-7" { input 5 output 25 }\n'
    "default -> haiku\n"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_jsonl_tier_model_usage_and_answer_length(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "o.jsonl",
        '{"id": "a", "tier": "haiku", "score": 7, "answer_chars": 400, "answered_by": "mixtral"}\n'
        '{"id": "a", "model": "claude-opus-4-7", "score": 9.5, "input_tokens": 100, "output_tokens": 20, "cache_read_tokens": 50}\n'
        '{"id": 3, "tier": "opus", "score": true}\n'
        "\n",
    )
    out = read_outcomes([path], POLICY.tiers)
    assert out.problems == []
    assert out.tiers == {"haiku", "opus"}
    assert len(out) == 3
    a = out.get("a", "haiku")
    assert a is not None and (a.score, a.answer_chars, a.usage) == (7.0, 400, None)
    b = out.get("a", "opus")
    assert b is not None and b.usage == Usage(100, 20, 0, 50)
    assert out.score("3", "opus") == 1.0
    assert out.get("a", "sonnet") is None and out.get("zz", "haiku") is None


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("{oops", "invalid JSON"),
        ("[1]", "JSON object"),
        ('{"tier": "haiku", "score": 1}', "'id'"),
        ('{"id": "a", "score": 1}', "exactly one of 'tier'"),
        ('{"id": "a", "tier": "haiku", "model": "claude-haiku-4-5", "score": 1}', "exactly one"),
        ('{"id": "a", "tier": "sonnet", "score": 1}', "tier 'sonnet' is not declared"),
        ('{"id": "a", "model": "gpt-4", "score": 1}', "model 'gpt-4' is not declared"),
        ('{"id": "a", "tier": "haiku", "score": "good"}', "'score'"),
        ('{"id": "a", "tier": "haiku", "score": NaN}', "NaN is not a JSON number"),
        ('{"id": "a", "tier": "haiku", "score": 1, "output_tokens": 2.5}', "'output_tokens'"),
        ('{"id": "a", "tier": "haiku", "score": 1, "input_tokens": -4}', "'input_tokens'"),
    ],
)
def test_bad_jsonl_lines_are_located(tmp_path: Path, line: str, words: str) -> None:
    path = write(tmp_path, "o.jsonl", '{"id": "ok", "tier": "haiku", "score": 1}\n' + line + "\n")
    out = read_outcomes([path], POLICY.tiers)
    assert len(out.problems) == 1
    p = out.problems[0]
    assert (p.file, p.line) == (str(path), 2)
    assert words in p.message
    assert out.score("ok", "haiku") == 1.0


def test_duplicates_keep_the_first(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "o.jsonl",
        '{"id": "a", "tier": "haiku", "score": 1}\n{"id": "a", "tier": "haiku", "score": 0}\n',
    )
    out = read_outcomes([path], POLICY.tiers)
    assert out.score("a", "haiku") == 1.0
    assert "second outcome" in out.problems[0].message and out.problems[0].line == 2


def test_without_a_policy_names_are_kept(tmp_path: Path) -> None:
    path = write(tmp_path, "o.jsonl", '{"id": "a", "model": "gpt-4", "score": 1}\n')
    assert read_outcomes([path]).tiers == {"gpt-4"}


def test_csv_booleans_numbers_model_columns_and_empty_cells(tmp_path: Path) -> None:
    for name in ("o.csv", "o.csv.gz"):
        path = write(
            tmp_path,
            name,
            "id,haiku,claude-opus-4-7,prompt\nq1,True,False,hi\nq2,0.5,,x\n\nq3,false,TRUE,y\n",
        )
        out = read_outcomes([path], POLICY.tiers)
        assert out.score("q1", "haiku") == 1.0 and out.score("q1", "opus") == 0.0
        assert out.score("q2", "haiku") == 0.5 and out.get("q2", "opus") is None
        assert out.score("q3", "opus") == 1.0
        # The 'prompt' column names no tier: reported once, on the header line.
        assert [(p.line, "'prompt'" in p.message) for p in out.problems] == [(1, True)]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("", 1, "empty CSV"),
        ("haiku,opus\n1,0\n", 1, "no 'id' column"),
        ("id,haiku\na,1,2\n", 2, "3 cells, the header has 2"),
        ("id,haiku\n,1\n", 2, "empty 'id'"),
        ("id,haiku\na,maybe\n", 2, "'maybe' is not a number"),
        ("id,haiku\na,inf\n", 2, "not a number"),
    ],
)
def test_bad_csv(tmp_path: Path, text: str, line: int, words: str) -> None:
    out = read_outcomes([write(tmp_path, "o.csv", text)], POLICY.tiers)
    assert [(p.line, words in p.message) for p in out.problems] == [(line, True)], out.problems


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(OutcomesFileError, match="cannot open"):
        read_outcomes([tmp_path / "missing.jsonl"])
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"id": "\xff"}\n')
    with pytest.raises(OutcomesFileError, match="cannot read"):
        read_outcomes([bad])
