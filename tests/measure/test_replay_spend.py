"""Replay measures budget rules: the counters are simulated in traffic order from each
line's time, filled by the replayed policy's own costs, and checked against a plain
re-computation of what each request would have read."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policyroute
from policyroute.measure.replay import ReplayOptions, replay
from policyroute.request import Request

POLICY = """
tier haiku  = "claude-haiku-4-5"  { input 1.00  output 5.00 }
tier sonnet = "claude-sonnet-4-6" { input 3.00  output 15.00 }
rule over_day:   spend.user.day > 0.02      -> haiku
rule over_hour:  spend.policy.hour > 0.05   -> haiku
default                                     -> sonnet
"""
START = datetime(2026, 12, 1, 22, 0, tzinfo=UTC).timestamp()


def write(path: Path, rows: list[tuple[float | None, str | None]]) -> None:
    with path.open("w") as f:
        for i, (at, uid) in enumerate(rows):
            obj: dict[str, object] = {
                "id": str(i),
                "messages": [{"role": "user", "content": "x" * 400}],
                "max_tokens": 1000,
            }
            if uid is not None:
                obj["route"] = {"user": {"id": uid}}
            if at is not None:
                obj["time"] = at if i % 2 else datetime.fromtimestamp(at, UTC).isoformat()
            f.write(json.dumps(obj) + "\n")


def reference(
    policy: policyroute.Policy, rows: list[tuple[float | None, str | None]]
) -> tuple[list[str], int]:
    """Each request's tier, by summing the earlier requests' costs per calendar window."""
    done: list[tuple[float, str | None, float]] = []
    tiers, changed = [], 0
    for at, uid in rows:
        req = Request.from_json(
            {
                "messages": [{"role": "user", "content": "x" * 400}],
                "max_tokens": 1000,
                **({"route": {"user": {"id": uid}}} if uid else {}),
            }
        )
        spend: dict[str, float] = {}
        if at is not None:
            t = datetime.fromtimestamp(at, UTC)

            def same(a: float, fmt: str, t: datetime = t) -> bool:
                return datetime.fromtimestamp(a, UTC).strftime(fmt) == t.strftime(fmt)

            if uid:
                spend["spend.user.day"] = sum(
                    c for a, u, c in done if u == uid and same(a, "%Y%m%d")
                )
            spend["spend.policy.hour"] = sum(c for a, _, c in done if same(a, "%Y%m%d%H"))
        d = policy.decide(req.replace(spend=spend))
        if d.tier != policy.decide(req).tier:
            changed += 1
        tiers.append(d.tier)
        tier = next(t for t in policy.tiers if t.name == d.tier)
        if at is not None:
            done.append((at, uid, tier.cost(req.estimated_context_tokens() or 0, 1000)))
    return tiers, changed


rows_strategy = st.lists(
    st.tuples(
        st.one_of(st.none(), st.floats(START, START + 4 * 3600, allow_nan=False)),
        st.sampled_from([None, "alice", "bob"]),
    ),
    max_size=25,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=rows_strategy)
def test_replay_fills_the_counters_in_traffic_order(
    tmp_path_factory: object, rows: list[tuple[float | None, str | None]]
) -> None:
    policy = policyroute.loads(POLICY)
    path = Path(tmp_path_factory.mktemp("spend")) / "traffic.jsonl"  # type: ignore[attr-defined]
    write(path, rows)
    report = replay(policy, [path], options=ReplayOptions(processes=2))
    tiers, changed = reference(policy, rows)
    assert report.spend is not None
    assert report.spend.changed == changed
    assert report.spend.untimed == sum(at is None for at, _ in rows)
    by_tier = {t.name: t.count for t in report.tiers}
    assert by_tier == {"haiku": tiers.count("haiku"), "sonnet": tiers.count("sonnet")}


def test_spend_per_scope_against_the_recorded(tmp_path: Path) -> None:
    policy = policyroute.loads(POLICY)
    path = tmp_path / "records.jsonl"
    with path.open("w") as f:
        for i in range(4):
            record = {
                "time": f"2026-12-01T10:0{i}:00.000Z",
                "request_id": f"r{i}",
                "tier": "sonnet",
                "rule": "default",
                "route": {"user": {"id": "alice"}},
                "attempts": [{"kind": "generate", "tier": "sonnet", "input_tokens": 100,
                              "output_tokens": 1000}],
                "cost_usd": 0.0153,
                "prompt": {"text": "x" * 400},
            }  # fmt: skip
            f.write(json.dumps(record) + "\n")
    report = replay(policy, [path])
    assert report.spend is not None
    user = next(s for s in report.spend.scopes if s.scope == "user")
    assert user.owners == 1
    assert user.recorded_usd is not None and abs(user.recorded_usd - 4 * 0.0153) < 1e-9
    # the first two are sonnet, then alice is past $0.02 and the replayed policy sends haiku
    assert {t.name: t.count for t in report.tiers} == {"haiku": 2, "sonnet": 2}
    assert user.simulated_usd < user.recorded_usd
    data = report.to_json()["spend"]
    assert data["changed"] == 2 and data["scopes"]["user"]["owners"] == 1


def test_a_policy_without_spend_has_no_spend_section(tmp_path: Path) -> None:
    policy = policyroute.loads(POLICY.replace("spend.user.day", "length").replace(
        "spend.policy.hour", "turns"))  # fmt: skip
    path = tmp_path / "t.jsonl"
    write(path, [(START, "alice")])
    report = replay(policy, [path])
    assert report.spend is None and "spend" not in report.to_json()


def test_a_bad_time_is_reported_where_it_stands(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "x"}], "time": "soon"}))
    report = replay(policyroute.loads(POLICY), [path])
    assert report.skipped == {"bad time": 1}
