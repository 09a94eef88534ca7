"""Sticky conversations in the Router, the AsyncRouter and the SDK middleware: the same rule
as the server (a later turn never goes to a cheaper tier within the window)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import anthropic
from fake_anthropic import FakeAnthropic, Reply
from hypothesis import given, settings
from hypothesis import strategies as st
from runtime_support import HAIKU, OPUS, SONNET

import policyroute
from policyroute.runtime import AsyncRouter, Router, RoutingMiddleware
from policyroute.runtime.sticky import StickyTable, conversation_key

STICKY = f"""
tier haiku  = "{HAIKU}"  {{ input 1 output 5   max_tokens 4096 }}
tier sonnet = "{SONNET}" {{ input 3 output 15  max_tokens 8192 }}
tier opus   = "{OPUS}"   {{ input 5 output 25  max_tokens 16384 }}
rule hard:  prompt contains "deadlock" -> opus
rule quick: length < 100               -> haiku max_tokens 1000
default                                -> sonnet
escalate on error, max_tokens max 1
sticky conversations 5 minutes
"""

SYSTEM = "You review code."


def _turns(first: str, *later: str) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = [{"role": "user", "content": first}]
    for text in later:
        msgs += [{"role": "assistant", "content": "ok"}, {"role": "user", "content": text}]
    return msgs


def test_router_keeps_a_conversation_on_its_tier(fake: FakeAnthropic, tmp_path: Path) -> None:
    policy = policyroute.loads(STICKY)
    client = anthropic.Anthropic(base_url=fake.base_url, api_key="k", max_retries=0)
    router = Router(policy, client, records=tmp_path / "r.jsonl")
    first = "Where is the deadlock?"
    one = router.create(system=SYSTEM, max_tokens=50, messages=_turns(first))
    assert one.tier == "opus"
    two = router.create(system=SYSTEM, max_tokens=50, messages=_turns(first, "thanks"))
    assert two.tier == "opus" and two.decision.rule == "quick"
    assert fake.requests[-1].model == OPUS
    other = router.create(system=SYSTEM, max_tokens=50, messages=_turns("hello"))
    assert other.tier == "haiku"
    lines = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [r.get("sticky_from") for r in lines] == [None, "haiku", None]


def test_router_explicit_conversation_header(fake: FakeAnthropic) -> None:
    policy = policyroute.loads(STICKY)
    client = anthropic.Anthropic(base_url=fake.base_url, api_key="k", max_retries=0)
    router = Router(policy, client)
    h = {"x-policyroute-conversation": "c-1"}
    assert (
        router.create(max_tokens=5, messages=_turns("a deadlock"), extra_headers=h).tier == "opus"
    )
    assert router.create(max_tokens=5, messages=_turns("hi"), extra_headers=h).tier == "opus"
    assert router.create(max_tokens=5, messages=_turns("hi")).tier == "haiku"


def test_async_router_remembers_the_escalated_tier(fake: FakeAnthropic) -> None:
    policy = policyroute.loads(STICKY)
    fake.script(HAIKU, [Reply(stop_reason="max_tokens")])

    async def go() -> list[str]:
        client = anthropic.AsyncAnthropic(base_url=fake.base_url, api_key="k", max_retries=0)
        router = AsyncRouter(policy, client)
        a = await router.create(system=SYSTEM, max_tokens=5, messages=_turns("short"))
        b = await router.create(system=SYSTEM, max_tokens=5, messages=_turns("short", "more"))
        await client.close()
        return [a.tier, b.tier]

    assert asyncio.run(go()) == ["sonnet", "sonnet"]


def test_middleware_is_sticky_too(fake: FakeAnthropic) -> None:
    policy = policyroute.loads(STICKY)
    middleware = RoutingMiddleware(policy, max_retries=0)
    client = anthropic.Anthropic(
        base_url=fake.base_url, api_key="k", max_retries=0, middleware=[middleware]
    )
    first = "the deadlock again"
    assert (
        client.messages.create(
            model="auto", max_tokens=5, system=SYSTEM, messages=_turns(first)
        ).model
        == OPUS
    )
    later = client.messages.create(
        model="auto", max_tokens=5, system=SYSTEM, messages=_turns(first, "ok thanks")
    )
    assert later.model == OPUS
    fresh = client.messages.create(model="auto", max_tokens=5, messages=_turns("new"))
    assert fresh.model == HAIKU


def test_policy_without_sticky_is_unchanged(fake: FakeAnthropic) -> None:
    policy = policyroute.loads(STICKY.replace("sticky conversations 5 minutes", ""))
    client = anthropic.Anthropic(base_url=fake.base_url, api_key="k", max_retries=0)
    router = Router(policy, client)
    router.create(max_tokens=5, messages=_turns("a deadlock"))
    assert router.create(max_tokens=5, messages=_turns("a deadlock", "thanks")).tier == "haiku"


# -- the pieces -------------------------------------------------------------------------------


def test_raised_keeps_the_rules_options() -> None:
    policy = policyroute.loads(STICKY)
    quick = policy.decide(prompt="hi")
    assert (quick.tier, quick.max_tokens) == ("haiku", 1000)
    up = policy.raised(quick, "sonnet")
    assert (up.tier, up.rule, up.max_tokens) == ("sonnet", "quick", 1000)
    assert [t.name for t in up.ladder] == ["opus"]  # escalate max 1 from sonnet
    assert policy.raised(up, "haiku") is up  # never down
    assert policy.raised(quick, "gone") is quick  # a tier a reload removed
    top = policy.raised(quick, "opus")
    assert top.ladder == ()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_table_window_and_bound() -> None:
    clock = Clock()
    table = StickyTable(max_entries=2, clock=clock)
    order = ["haiku", "sonnet", "opus"]
    table.remember("a", "opus", 60, order)
    clock.now = 59
    assert table.floor("a", 60) == "opus"
    table.remember("a", "haiku", 60, order)  # a fresh higher tier is kept
    assert table.floor("a", 60) == "opus"
    clock.now = 200
    assert table.floor("a", 60) is None  # expired
    table.remember("b", "sonnet", 60, order)
    table.remember("c", "sonnet", 60, order)
    table.remember("d", "sonnet", 60, order)
    assert len(table) == 2 and table.floor("b", 60) is None  # least recently used went first


@settings(max_examples=200, deadline=None)
@given(
    system=st.one_of(st.none(), st.text(max_size=20)),
    first=st.text(max_size=20),
    later=st.lists(st.text(max_size=10), max_size=4),
    marks=st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_key_is_stable_across_turns_and_cache_marks(
    system: str | None, first: str, later: list[str], marks: list[bool]
) -> None:
    """Every turn of one conversation has the key of its first; cache_control marks (which
    clients move from turn to turn) and string-vs-block content do not change it."""

    def blocks(text: str, mark: bool) -> Any:
        block: dict[str, Any] = {"type": "text", "text": text}
        if mark:
            block["cache_control"] = {"type": "ephemeral"}
        return [block] if mark else text

    base: dict[str, Any] = {"messages": [{"role": "user", "content": first}]}
    if system is not None:
        base["system"] = system
    key = conversation_key(base)
    params: dict[str, Any] = {
        "messages": [{"role": "user", "content": blocks(first, marks[0])}],
    }
    if system is not None:
        params["system"] = blocks(system, marks[1])
    for i, text in enumerate(later):
        params["messages"] += [
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": blocks(text, marks[(i + 2) % 8])},
        ]
    assert conversation_key(params) == key
    assert conversation_key(params, scope="another caller") != key
    assert conversation_key({"messages": [{"role": "user", "content": first + "!"}]}) != (
        conversation_key({"messages": [{"role": "user", "content": first}]})
    )


# No sticky statement: only the continuation keeps a tier. The tool result says "deadlock",
# so the rules, reading all the text, would send the tool-result turn to opus.
CONTINUING = f"""
tier haiku  = "{HAIKU}"  {{ input 1 output 5 }}
tier sonnet = "{SONNET}" {{ input 3 output 15 }}
tier opus   = "{OPUS}"   {{ input 5 output 25 }}
rule deep: text contains "deadlock" -> opus
default                              -> haiku
"""

FIRST = [{"role": "user", "content": "read notes.txt"}]
TOOL_TURN = [
    *FIRST,
    {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "Read", "input": {}}]},
    {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "t", "content": "a deadlock"}],
    },
]


def test_a_tool_result_turn_keeps_the_callers_tier_exactly_in_every_front_end(
    fake: FakeAnthropic, tmp_path: Path
) -> None:
    """Not at least the tier that issued the tool call, that tier: each front end serves the
    tool-result turn on haiku though the rules say opus, and records it as a continuation
    whose `sticky_from` is the rules' choice, so replay decides what the rules chose."""
    from server.serve_support import ServerThread, read_records

    from policyroute.server.app import ServeConfig

    policy = policyroute.loads(CONTINUING)
    assert policy.decide(policyroute.Request.from_anthropic({"messages": TOOL_TURN})).tier == "opus"
    records = tmp_path / "r.jsonl"
    served: list[str] = []
    router = Router(policy, anthropic.Anthropic(base_url=fake.base_url, api_key="k"), records)
    for messages in (FIRST, TOOL_TURN):
        served.append(router.create(max_tokens=50, messages=messages).tier)
    mw = RoutingMiddleware(policy, records=records)
    client = anthropic.Anthropic(base_url=fake.base_url, api_key="k", middleware=[mw])
    for messages in (FIRST, TOOL_TURN):
        served.append(client.messages.create(model="auto", max_tokens=50, messages=messages).model)
    config = ServeConfig(policy=policy, upstream=fake.base_url, records=tmp_path / "s.jsonl")
    with ServerThread(config) as proxy:
        proxied = anthropic.Anthropic(base_url=proxy.url, api_key="k", max_retries=0)
        for messages in (FIRST, TOOL_TURN):
            m = proxied.messages.create(model="auto", max_tokens=50, messages=messages)
            served.append(m.model)
        lines = read_records(proxy)
    assert served == ["haiku", "haiku", HAIKU, HAIKU, HAIKU, HAIKU]
    lines = [json.loads(x) for x in records.read_text().splitlines()] + lines
    for first, second in (lines[0:2], lines[2:4], lines[4:6]):
        assert (first["tier"], first.get("continuation")) == ("haiku", None)
        assert (second["tier"], second["rule"]) == ("haiku", "deep")
        assert second["continuation"] is True and second["sticky_from"] == "opus"
