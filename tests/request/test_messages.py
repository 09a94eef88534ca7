"""The one request mapping (policyroute/request/messages.py), pinned on what clients send.

The Claude Code cases are the CLI's own requests, captured (tests/fixtures/claude-code/).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policyroute.request import Request, RequestError
from policyroute.request.messages import claude_code_user, from_messages_api

FIXTURES = Path(__file__).parents[1] / "fixtures" / "claude-code"
VERSIONS = ["2.0.77", "2.1.197"]


def _main_requests(version: str, scenario: str) -> list[dict[str, Any]]:
    requests = json.loads((FIXTURES / version / f"{scenario}.json").read_text())
    return [
        r["body"]
        for r in requests
        if r["path"].startswith("/v1/messages?") and r["body"].get("model") == "auto"
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_claude_code_prompt_is_what_the_person_wrote(version: str) -> None:
    [body] = _main_requests(version, "rename")
    mapped = from_messages_api(body)
    r = mapped.request
    assert r.prompt == "Rename the variable tmp to total in utils.py"
    assert "<system-reminder>" not in (r.prompt or "")
    assert "architecture" in (r.text or "")  # CLAUDE.md is still in the text
    assert r.has_tools and not mapped.continuation
    # The tool schemas are most of the context: counted, not only the words.
    assert r.context_tokens is not None and r.context_tokens > 10_000


@pytest.mark.parametrize("version", VERSIONS)
def test_a_tool_result_turn_continues_the_task(version: str) -> None:
    first, second = _main_requests(version, "tool-loop")
    a, b = from_messages_api(first), from_messages_api(second)
    assert not a.continuation and b.continuation
    assert a.request.prompt == b.request.prompt  # the task's words, not the tool's output
    assert a.conversation == b.conversation is not None  # Claude Code's session
    assert a.request.user_id == b.request.user_id


def test_claude_code_2_1_sends_system_messages_adaptive_thinking_and_new_fields() -> None:
    [body] = _main_requests("2.1.197", "rename")
    assert any(m["role"] == "system" for m in body["messages"])
    assert body["thinking"] == {"type": "adaptive"}
    r = from_messages_api(body).request
    assert r.turns == 1  # a system message is not a turn
    assert "security" in (r.system or "")  # its text is system text, never the prompt
    assert "security" not in (r.prompt or "")


def test_claude_code_user_ids() -> None:
    new = json.dumps({"device_id": "d" * 64, "account_uuid": "acc-1", "session_id": "s-1"})
    assert claude_code_user(new) == ("acc-1", "s-1")
    old = "user_" + "a" * 64 + "_account_0000-11_session_2222-33"
    assert claude_code_user(old) == ("user_" + "a" * 64 + "_account_0000-11", "2222-33")
    assert claude_code_user("plain-user") == ("plain-user", None)
    assert claude_code_user("{not json") == ("{not json", None)


# Every request shape the Messages API documents: routing reads what it needs, the rest is
# left alone (the front ends forward the body as it came).
SHAPES: list[dict[str, Any]] = [
    {"messages": [{"role": "user", "content": "hi"}]},
    {
        "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    },
    {
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
                    },
                    {
                        "type": "document",
                        "source": {"type": "url", "url": "https://example.com/a.pdf"},
                    },
                    {"type": "text", "text": "what is this"},
                ],
            }
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "...", "signature": "sig"},
                    {"type": "tool_use", "id": "t1", "name": "w", "input": {"city": "Oslo"}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}],
            },
        ],
        "tools": [{"name": "w", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto"},
    },
    {
        "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "max_tokens": 4096,
    },
    {
        "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
    },
    {"messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": "agents"}]},
    {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "search_result", "title": "t", "source": "s", "content": []}],
            }
        ],
        "mcp_servers": [{"type": "url", "url": "https://mcp.example", "name": "m"}],
        "service_tier": "auto",
        "stop_sequences": ["END"],
        "temperature": 0.2,
        "top_k": 5,
        "top_p": 0.9,
        "metadata": {"user_id": "u-1"},
        "container": "c-1",
        "a_field_from_next_year": {"anything": [1, 2, 3]},
    },
]


@pytest.mark.parametrize("shape", SHAPES)
def test_every_documented_request_shape_maps(shape: dict[str, Any]) -> None:
    before = json.dumps(shape, sort_keys=True)
    r = from_messages_api(shape).request
    assert isinstance(r, Request)
    assert json.dumps(shape, sort_keys=True) == before  # the body is never changed


def test_deep_tool_results_are_a_request_error_not_a_recursion_error() -> None:
    content: Any = "leaf"
    for _ in range(5000):
        content = [{"type": "tool_result", "tool_use_id": "t", "content": content}]
    with pytest.raises(RequestError, match="deeper"):
        Request.from_anthropic({"messages": [{"role": "user", "content": content}]})


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"messages": "hi"}, "'messages' must be a list"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0]"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]}, "[0][0]"),
        ({"messages": [], "max_tokens": "9"}, "max_tokens"),
    ],
)
def test_what_routing_reads_is_checked_with_where(body: dict[str, Any], where: str) -> None:
    with pytest.raises(RequestError) as info:
        from_messages_api(body)
    assert where in str(info.value)


reminder = st.text(max_size=20).map(lambda t: f"<system-reminder>{t}</system-reminder>")
words = st.text(st.characters(blacklist_characters="<>"), min_size=1, max_size=30).filter(
    lambda t: t.strip() == t and t
)


@given(before=st.lists(reminder, max_size=3), person=words, after=st.lists(reminder, max_size=2))
def test_prompt_never_holds_a_system_reminder(
    before: list[str], person: str, after: list[str]
) -> None:
    blocks = [{"type": "text", "text": t} for t in [*before, person, *after]]
    r = from_messages_api({"messages": [{"role": "user", "content": blocks}]}).request
    assert r.prompt == person
