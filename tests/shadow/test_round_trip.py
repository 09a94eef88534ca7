"""Shadow -> pairs -> judge -> OUTCOMES -> `policyroute replay --outcomes`, end to end, against
the fake Anthropic server and replay's own readers."""

from __future__ import annotations

import json
from pathlib import Path

import anthropic
from fake_anthropic import FakeAnthropic, Reply
from shadow_support import HAIKU, SONNET, lines, user

import policyroute
from policyroute.cli import main
from policyroute.measure.outcomes import read_outcomes
from policyroute.runtime import Router
from policyroute.runtime.shadowing import ShadowConfig

POLICY = f"""
policy "two-tier"
tier haiku  = "{HAIKU}"  {{ input 1.00  output 5.00 }}
tier sonnet = "{SONNET}" {{ input 3.00  output 15.00 }}
rule quick: task == "quick" -> haiku
default                     -> sonnet
shadow haiku sample 100%
"""
JUDGE = "claude-opus-4-7"
N = 12


def test_judged_pairs_round_trip_into_replay(fake: FakeAnthropic, tmp_path: Path) -> None:
    policy_file = tmp_path / "two.route"
    policy_file.write_text(POLICY)
    policy = policyroute.load(policy_file)
    pairs = tmp_path / "pairs.jsonl"
    router = Router(
        policy,
        anthropic.Anthropic(base_url=fake.base_url, api_key="test"),
        log_prompts=True,
        # One worker: the shadows reach the fake (which hands out its scripted replies in
        # arrival order) and the pairs file in request order, so usage can be checked by id.
        shadow=ShadowConfig(daily_budget_usd=1.0, pairs=pairs, max_concurrency=1),
    )
    fake.script(SONNET, [Reply(text=f"strong {i}", output_tokens=40 + i) for i in range(N)])
    fake.script(HAIKU, [Reply(text=f"weak {i}", output_tokens=20 + i) for i in range(N)])
    for i in range(N):
        router.create(messages=user(f"question {i}"), route={"task": "qa"})
    router.close()
    assert len(lines(pairs)) == N

    # The judge rates in plan order (routed, then shadow, per pair): sonnet 8, haiku 4 or 9.
    ratings = [r for i in range(N) for r in (8, 4 if i % 3 else 9)]
    fake.script(JUDGE, [Reply(text=f"Rating: [[{r}]]") for r in ratings])
    outcomes, traffic = tmp_path / "outcomes.jsonl", tmp_path / "traffic.jsonl"
    code = main(
        [
            "judge", str(pairs), "--judge-tier", "opus", "--concurrency", "1",
            "-o", str(outcomes), "--traffic", str(traffic),
            "--cache", str(tmp_path / "cache.sqlite"),
        ]
    )  # fmt: skip
    assert code == 0

    # replay's reader takes every line, with the real usage of both answers.
    read = read_outcomes([outcomes], policy.tiers)
    assert read.problems == []
    assert len(read) == 2 * N
    ids = [p["id"] for p in lines(pairs)]
    assert [read.score(i, "sonnet") for i in ids] == [8.0] * N
    assert [read.score(i, "haiku") for i in ids] == [4.0 if k % 3 else 9.0 for k in range(N)]
    usage = read.get(ids[0], "haiku").usage  # type: ignore[union-attr]
    assert usage is not None and usage.output_tokens == 20

    report = tmp_path / "report.json"
    args = [str(policy_file), str(traffic), "--outcomes", str(outcomes), "--format", "json"]
    assert main(["replay", *args, "-o", str(report), "--jobs", "1"]) == 0
    data = json.loads(report.read_text())
    assert data["replayed"] == N
    quality = data["quality"]
    assert quality["coverage"] == 1.0
    assert quality["score"] == 8.0  # every request routed to sonnet, scored 8 by the judge
