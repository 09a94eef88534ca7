"""The model's side of a coding agent's conversation, for the fake Messages API.

`agent_reply` answers a request the way a model answers Claude Code, enough to drive the real
CLI through its loop: a prompt that asks to read a file gets a `Read` tool call, the turn
that carries the tool's result gets a closing answer, and a request with thinking on gets a
signed thinking block first. Every answer names the model that wrote it, so a test can see
which tier answered each turn from the CLI's own output.
"""

from __future__ import annotations

import re
from typing import Any

from fake_anthropic import Reply

READ = re.compile(r"\bread the file (/\S+?)[.,;:]?(?:\s|$)", re.IGNORECASE)
REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.DOTALL)


def last_user_turn(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The content blocks of the last `user` message (a string becomes one text block);
    `system` messages inside `messages` (Claude Code's mid-conversation system) are skipped."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return [{"type": "text", "text": content}]
            return [b for b in content or [] if isinstance(b, dict)]
    return []


def typed_text(blocks: list[dict[str, Any]]) -> str:
    """What the person typed: the text blocks without Claude Code's `<system-reminder>`s."""
    texts = [str(b.get("text", "")) for b in blocks if b.get("type") == "text"]
    return REMINDER.sub("", "\n".join(texts)).strip()


def agent_reply(body: dict[str, Any]) -> Reply:
    model = str(body.get("model", ""))
    blocks = last_user_turn(body)
    thinking = body.get("thinking")
    thought = (
        "Working out what the person asked."
        if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
        else None
    )
    if any(b.get("type") == "tool_result" for b in blocks):
        return Reply(
            text=f"Done, from the file's contents. [answered by {model}]", thinking=thought
        )
    wanted = READ.search(typed_text(blocks))
    if wanted:
        call = {"name": "Read", "input": {"file_path": wanted.group(1)}}
        return Reply(
            text="I'll read that file first.",
            tool_uses=(call,),
            stop_reason="tool_use",
            thinking=thought,
        )
    return Reply(text=f"Here is the change. [answered by {model}]", thinking=thought)
