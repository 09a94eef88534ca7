"""Shared constants and helpers of the runtime tests (kept out of conftest so tests can import them)."""

from __future__ import annotations

import anthropic
from anthropic.types import MessageParam

HAIKU, SONNET, OPUS = "claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-7"

POLICY_TEXT = f"""
policy "runtime-test"

tier haiku  = "{HAIKU}"  {{ input 1.00  output 5.00   max_tokens 4096 }}
tier sonnet = "{SONNET}" {{ input 3.00  output 15.00  max_tokens 16384 }}
tier opus   = "{OPUS}"   {{ input 5.00  output 25.00  max_tokens 32768 }}

classifier difficulty using haiku labels ["easy", "hard"] prompt "How hard is this request?"

rule quick:  task == "classify"                          -> haiku max_tokens 1024
rule once:   task == "once"                              -> haiku escalate max 1
rule pinned: task == "never"                             -> haiku escalate never
rule judged: task == "judge" and difficulty.label == "hard" -> opus
rule cheap:  task == "judge"                             -> haiku
rule free:   user.tier == "free"                         -> haiku
default                                                  -> sonnet

escalate on error, timeout, max_tokens, refusal, invalid_json, confidence < 0.7 max 2
"""

# Keep every test fast: a call that has not answered in this long has timed out.
TIMEOUT = 0.5


def user(text: str) -> list[MessageParam]:
    return [{"role": "user", "content": text}]

# A key shaped like a real one: the fault matrix checks it never leaks into errors or records.
SECRET_KEY = "sk-ant-api03-" + "S3CR3T" * 8


def default_client(base_url: str) -> anthropic.Anthropic:
    """A client as a user makes it: default timeout and retries, only pointed at the fake."""
    return anthropic.Anthropic(base_url=base_url, api_key=SECRET_KEY)


def default_async_client(base_url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=base_url, api_key=SECRET_KEY)
