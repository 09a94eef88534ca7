"""Duplicate replayed ids found by sorted runs on disk (issue 26): the same answer as a set of
every id, hash collisions never reported, and the spill files gone after every run."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyroute import loads
from policyroute.measure.replay import ReplayOptions, StrictStop, replay
from policyroute.measure.replay_ids import Ids
from policyroute.measure.tally import EXAMPLES_KEPT, Tally

POLICY = loads(
    'tier haiku = "claude-haiku-4-5" { input 1 output 5 }\n'
    "rule short: length < 20 -> haiku\n"
    "default -> haiku\n"
)

Chunk = tuple[int, list[str]]  # (file index, the chunk's ids)


def reference(chunks: list[Chunk]) -> tuple[int, list[str]]:
    """Every line whose id an earlier line has, by a set of every id."""
    seen: set[str] = set()
    lines: dict[int, int] = {}
    found: list[str] = []
    for f, ids in chunks:
        for rid in ids:
            lines[f] = lines.get(f, 0) + 1
            if rid in seen:
                found.append(f"f{f}:{lines[f]}")
            seen.add(rid)
    return len(found), found[:EXAMPLES_KEPT]


def spilled(chunks: list[Chunk], ids: Ids) -> tuple[int, list[str]]:
    lines: dict[int, int] = {}
    with ids:
        for f, chunk in chunks:
            part = Tally([])
            part.ids_file = f"f{f}"
            for rid in chunk:
                lines[f] = lines.get(f, 0) + 1
                part.ids.append((lines[f], rid))
            ids.absorb(part)
            assert part.ids == []
        return ids.duplicates()


HASHES: dict[str, Callable[[str], int]] = {
    "builtin": hash,
    "tiny": lambda s: len(s) % 3,  # most ids collide
    "zero": lambda s: 0,
    "signed": lambda s: -(2**63) if len(s) % 2 else 2**63 - 1,
}

ids_text = st.text(alphabet="ab\u00e9\ud800", max_size=3)
chunks_of = st.lists(st.tuples(st.integers(0, 2), st.lists(ids_text, max_size=12)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    chunks=chunks_of,
    hash_name=st.sampled_from(sorted(HASHES)),
    run_records=st.integers(1, 9),
    fan_in=st.integers(2, 4),
    block=st.integers(1, 5),
)
def test_spilled_duplicates_are_those_of_a_set(
    chunks: list[Chunk], hash_name: str, run_records: int, fan_in: int, block: int
) -> None:
    # Files alternate between chunks here, as a traffic list naming one file twice does.
    ids = Ids(hash_of=HASHES[hash_name], run_records=run_records, fan_in=fan_in, block=block)
    assert spilled(chunks, ids) == reference(chunks)


def test_a_hash_collision_is_not_a_duplicate() -> None:
    chunks: list[Chunk] = [(0, ["x", "y", "z"]), (0, ["y", "w"])]
    ids = Ids(hash_of=lambda s: 7, run_records=2, fan_in=2, block=1)
    assert spilled(chunks, ids) == (1, ["f0:4"])


def test_more_than_the_examples_kept() -> None:
    chunks: list[Chunk] = [(0, ["same"] * 50), (1, ["same"] * 50)]
    count, examples = spilled(chunks, Ids(run_records=7, fan_in=3, block=4))
    assert count == 99
    assert examples == [f"f0:{n}" for n in range(2, 2 + EXAMPLES_KEPT)]


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder that `tempfile` puts everything in, for the test to look into."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def traffic_file(tmp_path: Path, *ids: str, bad_at: int | None = None) -> Path:
    path = tmp_path / "t.jsonl"
    lines = [
        json.dumps({"id": rid, "messages": [{"role": "user", "content": "hi"}]}) for rid in ids
    ]
    if bad_at is not None:
        lines.insert(bad_at, "{not json")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("processes", [1, 2])
def test_spill_files_exist_during_a_run_and_are_gone_after(
    tmp_path: Path, scratch: Path, processes: int
) -> None:
    path = traffic_file(tmp_path, "a", "b", "a", "c", "b", "a")
    during: list[list[str]] = []

    def progress(lines: int, done: int, total: int) -> None:
        during.append(os.listdir(scratch))

    options = ReplayOptions(processes=processes, chunk_size=2)
    report = replay(POLICY, [path], options=options, progress=progress)
    assert (report.duplicate_ids, report.duplicate_examples) == (
        3,
        [f"{path}:3", f"{path}:5", f"{path}:6"],
    )
    assert any(during) and all(d[0].startswith("policyroute-replay-ids-") for d in during if d)
    assert os.listdir(scratch) == []


@pytest.mark.parametrize("processes", [1, 2])
def test_spill_files_are_gone_after_a_failing_run(
    tmp_path: Path, scratch: Path, processes: int
) -> None:
    path = traffic_file(tmp_path, "a", "b", "a", "c", bad_at=3)
    options = ReplayOptions(processes=processes, chunk_size=2, strict=True)
    with pytest.raises(StrictStop):
        replay(POLICY, [path], options=options)
    assert os.listdir(scratch) == []

    def interrupt(lines: int, done: int, total: int) -> None:
        assert os.listdir(scratch)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replay(
            POLICY,
            [path],
            options=ReplayOptions(processes=processes, chunk_size=2),
            progress=interrupt,
        )
    assert os.listdir(scratch) == []
