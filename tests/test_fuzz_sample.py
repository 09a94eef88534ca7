"""A seeded sample of bench/bench_fuzz.py's hostile cases: none may end in a traceback, a
crash of its worker or the time limit (the full 100,000 are the benchmark's; issue 25)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import bench_fuzz  # noqa: E402
from fuzz_cases import KINDS, case  # noqa: E402

SAMPLE = 300


def test_a_seeded_sample_ends_in_exits_only() -> None:
    # Cases 0..299 of the benchmark's own seed; a failure is reproduced with
    # `python bench/bench_fuzz.py --case N`.
    s = bench_fuzz.run(SAMPLE, seed=25, workers=2, timeout=60)
    assert s.cases == SAMPLE
    assert not s.bad, bench_fuzz.report(s, 25)
    assert {kind for kind, _ in s.counts} == set(KINDS)
    assert set(s.by_outcome()) <= {"exit 0", "exit 1", "exit 2"}


def test_cases_are_a_function_of_seed_and_index() -> None:
    assert case(25, 7) == case(25, 7)
    assert case(25, 7) != case(26, 7)
    assert [case(25, i).kind for i in range(5)] == list(KINDS)


def test_the_harness_counts_an_escaped_exception_as_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import policyroute.cli

    def boom(argv: list[str]) -> int:
        raise MemoryError

    monkeypatch.setattr(policyroute.cli, "main", boom)
    assert bench_fuzz.run_case(25, 1, 30)["outcome"] == "traceback"


def test_the_harness_counts_a_case_over_its_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    import policyroute.cli

    def slow(argv: list[str]) -> int:
        time.sleep(5)
        return 0

    monkeypatch.setattr(policyroute.cli, "main", slow)
    old = signal.signal(signal.SIGALRM, bench_fuzz._on_alarm)
    try:
        assert bench_fuzz.run_case(25, 1, 0.2)["outcome"] == "timeout"
    finally:
        signal.signal(signal.SIGALRM, old)
