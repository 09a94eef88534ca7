"""Replay end to end from Python: counts, costs, token sources, served figures, parallelism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyroute import Policy, loads
from policyroute.measure.outcomes import read_outcomes
from policyroute.measure.replay import ReplayOptions, StrictStop, impact, replay

ROOT = Path(__file__).resolve().parents[2]
TIERS = (
    'tier haiku  = "claude-haiku-4-5"  { input 1.00 output 5.00  max_tokens 4096 }\n'
    'tier sonnet = "claude-sonnet-4-6" { input 3.00 output 15.00 max_tokens 16384 }\n'
    'tier opus   = "claude-opus-4-7"   { input 5.00 output 25.00 max_tokens 32768 }\n'
)
POLICY = loads(
    TIERS
    + 'rule hard: prompt contains "deadlock" -> opus\n'
    + "rule short: length < 20 -> haiku\n"
    + "default -> sonnet\n"
)
SERIAL = ReplayOptions(processes=1)


def one_tier(name: str) -> Policy:
    return loads(TIERS + f"default -> {name}\n")


def request(rid: str, prompt: str, max_tokens: int = 100, **route: object) -> str:
    obj: dict[str, object] = {
        "id": rid,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": prompt}],
    }
    if route:
        obj["route"] = route
    return json.dumps(obj)


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def traffic(tmp_path: Path) -> Path:
    return write(
        tmp_path / "t.jsonl",
        [
            request("a", "hi there"),  # 8 chars: 2 input tokens -> haiku by short
            request("b", "Find the deadlock in this pool of workers"),  # opus by hard
            request("c", "Please summarise the attached quarterly report in detail"),  # sonnet
            "{broken",
            request("d", "x" * 400, max_tokens=10),  # sonnet
        ],
    )


def test_counts_costs_and_skips(traffic: Path) -> None:
    r = replay(POLICY, [traffic], options=SERIAL)
    assert (r.requests, r.replayed, r.skipped_total) == (5, 4, 1)
    assert r.skipped == {"invalid JSON": 1}
    assert str(r.skipped_examples[0].where) == f"{traffic}:4"
    assert {t.name: t.count for t in r.tiers} == {"haiku": 1, "sonnet": 2, "opus": 1}
    assert {x.name: x.count for x in r.rules} == {"hard": 1, "short": 1, "default": 2}
    assert sum(t.share for t in r.tiers) == pytest.approx(1.0)
    # Hand-computed: "hi there" is 8 characters = 2 input tokens; with no outcome the output
    # is the request's max_tokens, 100. On haiku: 2 * 1e-6 + 100 * 5e-6.
    haiku = next(t for t in r.tiers if t.name == "haiku")
    assert haiku.cost_usd == pytest.approx(2e-6 + 100 * 5e-6)
    assert r.input_sources == {"text": 12}
    assert r.output_sources == {"max_tokens": 12}
    assert r.cost_usd == pytest.approx(sum(t.cost_usd for t in r.tiers))
    assert r.top_baseline.tier == "opus"
    assert r.savings_usd == pytest.approx(r.top_baseline.cost_usd - r.cost_usd)
    assert not r.outcomes_given and r.quality is None


@pytest.mark.parametrize("tier", ["haiku", "sonnet", "opus"])
def test_all_to_one_tier_costs_exactly_that_baseline(traffic: Path, tier: str) -> None:
    r = replay(one_tier(tier), [traffic], options=SERIAL)
    base = next(b for b in r.baselines if b.tier == tier)
    assert r.cost_usd == base.cost_usd
    assert next(t for t in r.tiers if t.name == tier).share == 1.0


def test_assumed_output_tokens(traffic: Path) -> None:
    r = replay(POLICY, [traffic], options=ReplayOptions(processes=1, output_tokens=7))
    assert r.output_sources == {"assumed": 12}
    haiku = next(t for t in r.tiers if t.name == "haiku")
    assert haiku.cost_usd == pytest.approx(2e-6 + 7 * 5e-6)


def test_outcomes_real_usage_answer_length_and_other_tiers(traffic: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    out.write_text(
        '{"id": "a", "tier": "haiku", "score": 1, "input_tokens": 1000, "output_tokens": 10}\n'
        '{"id": "a", "tier": "opus", "score": 1, "answer_chars": 40}\n'
        '{"id": "b", "tier": "haiku", "score": 0, "answer_chars": 400}\n'
        '{"id": "b", "tier": "opus", "score": 1, "answer_chars": 800}\n'
    )
    outcomes = read_outcomes([out], POLICY.tiers)
    r = replay(POLICY, [traffic], outcomes, SERIAL)
    # a on haiku: real usage 1000 in, 10 out.
    haiku = next(t for t in r.tiers if t.name == "haiku")
    assert haiku.cost_usd == pytest.approx(1000e-6 + 10 * 5e-6)
    # Sources over 4 requests x 3 tiers.
    assert r.input_sources == {"real": 1, "text": 11}
    # a: haiku real, opus answer, sonnet other tiers; b: haiku and opus answer, sonnet other
    # tiers; c and d: max_tokens on all three.
    assert r.output_sources == {"real": 1, "answer": 3, "other_tiers": 2, "max_tokens": 6}
    q = r.quality
    assert q is not None
    # a went to haiku (1), b to opus (1); c and d went to sonnet, which has no outcome.
    assert (q.n, q.score) == (2, 1.0)
    assert r.unscored == {"sonnet": 2}
    assert r.coverage == pytest.approx(0.5)
    assert q.tier_scores == {"haiku": 0.5, "opus": 1.0}


def test_decision_records_replay_with_served_figures(tmp_path: Path) -> None:
    def rec(
        rid: str, tier: str, final: str, latency: float, triggers: list[str], text: str | None
    ) -> str:
        attempts = [
            {"kind": "generate", "tier": tier, "model": "m", "input_tokens": 50, "output_tokens": 5}
        ]
        if final != tier:
            attempts[0].update(
                error="Overloaded", trigger=triggers[0], input_tokens=0, output_tokens=0
            )
            attempts.append(
                {
                    "kind": "generate",
                    "tier": final,
                    "model": "m",
                    "input_tokens": 50,
                    "output_tokens": 20,
                }
            )
        obj = {
            "v": 1,
            "request_id": rid,
            "rule": "r",
            "tier": tier,
            "final_tier": final,
            "outcome": "ok",
            "attempts": attempts,
            "triggers": triggers,
            "latency_ms": latency,
            "route": {},
        }
        if text is not None:
            obj["prompt"] = {"length": len(text), "sha256": "0" * 64, "text": text}
        return json.dumps(obj)

    path = write(
        tmp_path / "records.jsonl",
        [
            rec("1", "haiku", "haiku", 100.0, [], "hi"),
            rec("2", "haiku", "sonnet", 1000.0, ["error"], "a deadlock in the pool"),
            rec("3", "haiku", "haiku", 200.0, [], None),
            rec("4", "sonnet", "sonnet", 300.0, [], "summarise this document for me please"),
        ],
    )
    r = replay(POLICY, [path], options=SERIAL)
    assert (r.replayed, r.skipped) == (3, {"record without prompt text": 1})
    assert r.shapes == {"record": 3}
    # Real usage from the records: 50 input tokens for every tier; output 5 on haiku for #1.
    assert r.input_sources == {"recorded": 9}
    assert r.output_sources["recorded"] == 3
    served = r.served
    assert served is not None and served.records == 3
    from policyroute.measure.report import served_json

    s = served_json(served)
    assert s["escalation_rate"] == pytest.approx(1 / 3)
    assert s["escalation_rate_by_trigger"] == {"error": pytest.approx(1 / 3)}
    assert s["attempts_per_request"] == pytest.approx(4 / 3)
    assert s["latency_ms"]["haiku"]["p50"] == pytest.approx(100.0, rel=0.01)
    assert s["latency_ms"]["sonnet"]["p99"] == pytest.approx(1000.0, rel=0.01)


def test_strict_stops_at_the_first_unreadable_line(traffic: Path) -> None:
    with pytest.raises(StrictStop) as stop:
        replay(POLICY, [traffic], options=ReplayOptions(processes=1, strict=True))
    assert str(stop.value.problem.where) == f"{traffic}:4"


def test_classifiers_are_never_called(tmp_path: Path) -> None:
    policy = loads(
        TIERS
        + 'classifier hard using haiku labels ["easy", "hard"] prompt "Is it hard?"\n'
        + 'rule asked: hard.label == "hard" -> opus\n'
        + "default -> haiku\n"
    )
    path = write(tmp_path / "t.jsonl", [request("a", "one"), request("b", "two")])
    r = replay(policy, [path], options=SERIAL)
    assert r.classifier_unasked == 2
    assert {t.name: t.count for t in r.tiers}["haiku"] == 2


def test_impact_moves_and_quality_difference(traffic: Path, tmp_path: Path) -> None:
    new = loads(TIERS + 'rule hard: prompt contains "deadlock" -> opus\ndefault -> haiku\n')
    out = tmp_path / "o.csv"
    out.write_text("id,haiku,opus\na,1,1\nb,0,1\nc,0,1\nd,1,1\n")
    outcomes = read_outcomes([out], POLICY.tiers)
    rep = impact(POLICY, new, [traffic], outcomes, SERIAL, bootstrap=200)
    # c and d move from sonnet (default) to haiku (default); a and b stay.
    assert rep.moves == [("sonnet", "haiku", "default", "default", 2)]
    assert rep.changed == 2
    assert rep.new.cost_usd < rep.old.cost_usd
    d = rep.difference
    # Old: a haiku 1, b opus 1, c and d on sonnet (no outcome). New: a 1, b 1, c 0, d 1.
    assert d is not None and (d.n, d.old, d.new) == (2, 1.0, 1.0)
    same = impact(POLICY, POLICY, [traffic], None, SERIAL)
    assert same.changed == 0 and same.moves == []


@settings(max_examples=8, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=60), min_size=1, max_size=120), st.integers(1, 9))
def test_parallel_and_serial_agree(prompts: list[str], chunk: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = write(Path(d) / "t.jsonl", [request(str(i), p) for i, p in enumerate(prompts)])
        a = replay(POLICY, [path], options=ReplayOptions(processes=1, chunk_size=chunk))
        b = replay(POLICY, [path], options=ReplayOptions(processes=2, chunk_size=chunk))
    assert [t.count for t in a.tiers] == [t.count for t in b.tiers]
    assert [x.count for x in a.rules] == [x.count for x in b.rules]
    assert a.cost_usd == pytest.approx(b.cost_usd)
    assert sum(t.count for t in a.tiers) == a.replayed == len(prompts)


def test_routellm_example_files_are_current(tmp_path: Path) -> None:
    """The committed TRAFFIC and OUTCOMES files are what convert.py makes from the data."""
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, str(ROOT / "examples/routellm/convert.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made == [
        "gsm8k.outcomes.jsonl",
        "gsm8k.traffic.jsonl",
        "mmlu.outcomes.csv.gz",
        "mmlu.traffic.jsonl.gz",
        "mt-bench.outcomes.jsonl",
        "mt-bench.traffic.jsonl",
    ]
    for name in made:
        assert (tmp_path / name).read_bytes() == (ROOT / "examples/routellm" / name).read_bytes(), (
            name
        )


def test_crlf_and_a_last_line_without_newline_in_both_paths(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    body = "\r\n".join(request(str(i), f"prompt {i}") for i in range(7)) + "\r\n{bad"
    path.write_bytes(body.encode())
    for jobs in (1, 2):
        r = replay(POLICY, [path], options=ReplayOptions(processes=jobs, chunk_size=3))
        assert (r.requests, r.replayed, r.skipped_total) == (8, 7, 1)
        assert str(r.skipped_examples[0].where) == f"{path}:8"


def test_bad_lines_read_the_same_serial_and_parallel(tmp_path: Path) -> None:
    lines = [
        request("a", "x"),
        '{"id": "b", "messages": [{"role": "user", "content": "cut',
        "[]",
        "{",
        request("c", "y"),
    ]
    path = write(tmp_path / "t.jsonl", lines * 5)
    a = replay(POLICY, [path], options=ReplayOptions(processes=1, chunk_size=4))
    b = replay(POLICY, [path], options=ReplayOptions(processes=2, chunk_size=4))
    assert [str(p) for p in a.skipped_examples] == [str(p) for p in b.skipped_examples]
    assert a.skipped == b.skipped == {"invalid JSON": 10, "not an object": 5}


@settings(max_examples=10, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=40),
    st.sampled_from(["haiku", "opus"]),
)
def test_a_one_tier_policy_reproduces_that_tier_on_cost_and_quality(
    scores: list[tuple[bool, bool]], tier: str
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = write(
            Path(d) / "t.jsonl", [request(str(i), f"prompt {i}") for i in range(len(scores))]
        )
        out = Path(d) / "o.csv"
        out.write_text(
            "id,haiku,opus\n" + "".join(f"{i},{a},{b}\n" for i, (a, b) in enumerate(scores))
        )
        policy = one_tier(tier)
        r = replay(policy, [path], read_outcomes([out], policy.tiers), SERIAL, bootstrap=50)
    q = r.quality
    assert q is not None
    assert r.cost_usd == next(b.cost_usd for b in r.baselines if b.tier == tier)
    assert q.score == q.tier_scores[tier] == next(b.score for b in r.baselines if b.tier == tier)
    assert q.lift == 0.0 and q.random_same_share == q.score
    assert r.coverage == 1.0
    assert sum(t.share for t in r.tiers) == 1.0


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(max_size=300), st.one_of(st.none(), st.integers(0, 5000))), max_size=12
    ),
    st.one_of(st.none(), st.integers(0, 900)),
)
def test_simple_costing_sums_exactly_what_tier_cost_does(
    lines: list[tuple[str, int | None]], assumed: int | None
) -> None:
    # Replay prices a request without outcomes or records from the tiers' prices inline;
    # every sum must be Tier.cost's to the last bit, in the same order.
    import tempfile

    from policyroute import Request

    with tempfile.TemporaryDirectory() as d:
        objs = []
        for prompt, max_tokens in lines:
            obj: dict[str, object] = {"messages": [{"role": "user", "content": prompt}]}
            if max_tokens is not None:
                obj["max_tokens"] = max_tokens
            objs.append(obj)
        path = write(Path(d) / "t.jsonl", [json.dumps(o) for o in objs])
        r = replay(POLICY, [path], options=ReplayOptions(processes=1, output_tokens=assumed))
    want = {t.name: 0.0 for t in POLICY.tiers}
    for obj in objs:
        req = Request.from_json(obj)
        for t in POLICY.tiers:
            out = assumed if assumed is not None else req.output_tokens
            want[t.name] += t.cost(
                req.estimated_context_tokens() or 0, out if out is not None else t.max_tokens or 0
            )
    assert {b.tier: b.cost_usd for b in r.baselines} == want
