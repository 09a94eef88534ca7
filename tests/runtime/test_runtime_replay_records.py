"""Records replay to the live decisions, whichever front end wrote them.

Generated requests (system prompts, multi-turn, tools, images, metadata, tool-result
turns) go through the Router, the AsyncRouter, the SDK middleware and `policyroute serve`
with `log_prompts`; each record, read back as replay reads traffic, decides as it was
decided live.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from fake_anthropic import FakeAnthropic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runtime_support import HAIKU, OPUS, SECRET_KEY, SONNET

import policyroute
from policyroute.measure.traffic import Location, TrafficItem, parse_line
from policyroute.runtime import AsyncRouter, Router, RoutingMiddleware

POLICY = f"""
policy "replay-prop"
tier haiku  = "{HAIKU}"  {{ input 1 output 5 }}
tier sonnet = "{SONNET}" {{ input 3 output 15 }}
tier opus   = "{OPUS}"   {{ input 5 output 25 }}
keywords hard = ["deadlock", "security"]
rule hard:  prompt contains any hard   -> opus
rule terse: system contains "terse"    -> haiku
rule tools: has_tools and turns > 2    -> sonnet
rule pics:  has_images                 -> sonnet
rule big:   context_tokens > 300       -> opus
rule who:   user.id == "u-7"           -> haiku
rule quick: length < 40                -> haiku
default                                -> sonnet
"""

words = st.sampled_from(["fix", "the", "deadlock", "security", "rename", "x" * 50, "terse"])
text = st.lists(words, min_size=1, max_size=8).map(" ".join)
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVB"}}
REMINDER = {"type": "text", "text": "<system-reminder>security notes</system-reminder>"}


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    turns = draw(st.integers(0, 2))
    messages: list[dict[str, Any]] = []
    for _ in range(turns):
        messages += [
            {"role": "user", "content": draw(text)},
            {"role": "assistant", "content": "ok"},
        ]
    last: list[dict[str, Any]] = [{"type": "text", "text": draw(text)}]
    if draw(st.booleans()):
        last.insert(0, REMINDER)
    if draw(st.booleans()):
        last.append(IMAGE)
    if turns and draw(st.booleans()):  # a tool loop: the last turn holds only a tool result
        messages[-1] = {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "read", "input": {}}],
        }
        last = [{"type": "tool_result", "tool_use_id": "t1", "content": draw(text)}]
    messages.append({"role": "user", "content": last})
    body: dict[str, Any] = {"max_tokens": 64, "messages": messages}
    if draw(st.booleans()):
        body["system"] = draw(text)
    if draw(st.booleans()):
        body["tools"] = [{"name": "read", "input_schema": {"type": "object"}}]
    if draw(st.booleans()):
        body["metadata"] = {"user_id": draw(st.sampled_from(["u-7", "u-8"]))}
    return body


@pytest.fixture(scope="module")
def proxy(fake_server: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from server.serve_support import ServerThread

    from policyroute.server.app import ServeConfig

    records = tmp_path_factory.mktemp("serve") / "r.jsonl"
    config = ServeConfig(
        policy=policyroute.loads(POLICY),
        upstream=fake_server.base_url,
        records=records,
        log_prompts=True,
    )
    with ServerThread(config) as server:
        yield server


def _last_record(path: Path) -> TrafficItem:
    line = path.read_text().splitlines()[-1]
    item = parse_line(line, Location(str(path), 1))
    assert isinstance(item, TrafficItem)
    return item


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies())
def test_records_of_every_front_end_replay_to_the_live_decision(
    fake: FakeAnthropic, proxy: Any, tmp_path: Path, body: dict[str, Any]
) -> None:
    from server.serve_support import read_records

    policy = policyroute.loads(POLICY)
    path = tmp_path / f"r{id(body)}.jsonl"
    live: list[tuple[str, str]] = []

    r = Router(
        policy,
        anthropic.Anthropic(base_url=fake.base_url, api_key=SECRET_KEY),
        records=path,
        log_prompts=True,
    ).create(**body)
    live.append((r.decision.tier, r.decision.rule))
    replayed = [_last_record(path)]

    async def run_async() -> Any:
        client = anthropic.AsyncAnthropic(base_url=fake.base_url, api_key=SECRET_KEY)
        return await AsyncRouter(policy, client, records=path, log_prompts=True).create(**body)

    a = asyncio.run(run_async())
    live.append((a.decision.tier, a.decision.rule))
    replayed.append(_last_record(path))

    mw = RoutingMiddleware(policy, records=path, log_prompts=True)
    client = anthropic.Anthropic(base_url=fake.base_url, api_key=SECRET_KEY, middleware=[mw])
    client.messages.create(model="auto", **body)
    replayed.append(_last_record(path))
    live.append(live[0])

    served = anthropic.Anthropic(base_url=proxy.url, api_key=SECRET_KEY, max_retries=0)
    m = served.messages.with_raw_response.create(model="auto", **body)
    # What the rules chose: a continuation may have been raised to its conversation's tier.
    tier = m.headers.get("x-policyroute-sticky-from") or m.headers["x-policyroute-tier"]
    live.append((tier, m.headers["x-policyroute-rule"]))
    record = read_records(proxy)[-1]
    item = parse_line(json.dumps(record), Location("serve", 1))
    assert isinstance(item, TrafficItem)
    replayed.append(item)

    assert len(set(live)) == 1  # every front end decided alike
    for item, (tier, rule) in zip(replayed, live, strict=True):
        decision = policy.decide(item.request)
        assert (decision.tier, decision.rule) == (tier, rule)
