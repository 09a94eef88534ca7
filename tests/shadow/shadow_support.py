"""A policy with shadow statements, and helpers to read what the runtime wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from anthropic.types import MessageParam

HAIKU, SONNET, OPUS = "claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-7"


def policy_text(share: str = "100%", extra: str = "") -> str:
    return f"""
policy "shadow-test"
tier haiku  = "{HAIKU}"  {{ input 1.00  output 5.00   max_tokens 4096 }}
tier sonnet = "{SONNET}" {{ input 3.00  output 15.00  max_tokens 16384 }}
tier opus   = "{OPUS}"   {{ input 5.00  output 25.00  max_tokens 32768 }}

rule quick: task == "quick" -> haiku
rule big:   task == "big"   -> opus
default                     -> sonnet

escalate on error, refusal max 1

shadow haiku sample {share}
{extra}
"""


def user(text: str) -> list[MessageParam]:
    return [{"role": "user", "content": text}]


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text("utf-8").splitlines() if x.strip()]
