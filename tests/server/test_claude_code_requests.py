"""Claude Code's captured requests (tests/fixtures/claude-code/) through the proxy.

Every request the real CLI sent, in the order it sent them, goes to `serve` with the
coding-agent policy: each is accepted, routed by what the person typed, answered by a model
the response names, and `?beta=true` reaches the upstream. The end-to-end run with the CLI
itself is tests/server/test_claude_code.py; this one needs no CLI and pins the shapes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fake_agent import agent_reply
from fake_anthropic import FakeAnthropic

import policyroute
from policyroute.server.app import ServeConfig

from .serve_support import HAIKU, OPUS, SONNET, ServerThread

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "claude-code"
POLICY = ROOT / "policies" / "coding-agent.route"
TIER_MODELS = {HAIKU, SONNET, OPUS}
KEY = "sk-ant-api03-fixture-replay-0000000000"

# (version, scenario) -> the models the routed main turns must reach, in order.
EXPECTED = {
    "rename": [HAIKU],
    "thinking": [HAIKU],
    # "Read the file ... and tell me what it says": nothing hard, nothing mechanical; the
    # tool-result turn continues on the tier that called the tool.
    "tool-loop": [SONNET, SONNET],
    "context": [],
}


def _captures() -> list[tuple[str, str]]:
    return sorted((p.parent.name, p.stem) for p in FIXTURES.glob("*/*.json") if p.stem in EXPECTED)


def _load(version: str, scenario: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((FIXTURES / version / f"{scenario}.json").read_text())
    return data


@pytest.fixture
def agent_proxy(fake: FakeAnthropic, tmp_path: Path) -> Iterator[ServerThread]:
    fake.responders["*"] = agent_reply
    config = ServeConfig(
        policy=policyroute.load(POLICY), upstream=fake.base_url, records=tmp_path / "r.jsonl"
    )
    with ServerThread(config) as server:
        yield server


def test_every_capture_is_checked() -> None:
    assert len(_captures()) == 4 * len({v for v, _ in _captures()}) >= 8


def _send(proxy: ServerThread, captured: dict[str, Any]) -> tuple[int, str, dict[str, str]]:
    headers = {**captured["headers"], "x-api-key": KEY}
    body = json.dumps(captured["body"]).encode()
    with httpx2.Client(timeout=30) as client:
        r = client.post(proxy.url + captured["path"], content=body, headers=headers)
        return r.status_code, r.text, dict(r.headers)


def _answer_model(text: str) -> str | None:
    """The model a JSON answer or an SSE stream's `message_start` names."""
    for line in text.splitlines():
        if line.startswith("data: "):
            event = json.loads(line[6:])
            if event.get("type") == "message_start":
                return str(event["message"]["model"])
    try:
        return str(json.loads(text).get("model"))
    except ValueError:
        return None


@pytest.mark.parametrize(("version", "scenario"), _captures())
def test_a_capture_through_the_proxy(
    version: str, scenario: str, agent_proxy: ServerThread, fake: FakeAnthropic
) -> None:
    routed: list[str] = []
    for i, captured in enumerate(_load(version, scenario)):
        before = len(fake.requests)
        status, text, headers = _send(agent_proxy, captured)
        where = f"{version}/{scenario}.json request {i} ({captured['path']})"
        assert status == 200, f"{where}: {status} {text[:500]}"
        upstream = fake.requests[before:]
        assert len(upstream) == 1, where
        seen = upstream[0]
        # The query (`?beta=true`: the betas in `anthropic-beta` apply) goes upstream as sent.
        assert seen.path == captured["path"], where
        if captured["body"].get("model") != "auto":
            assert seen.model == captured["body"]["model"], f"{where}: not passed through"
            continue
        assert seen.model in TIER_MODELS, where
        assert headers.get("x-policyroute-routed") == "true", where
        if "count_tokens" in captured["path"]:
            continue
        routed.append(seen.model)
        assert _answer_model(text) == seen.model, f"{where}: the answer must name its model"
        # Everything the CLI sent but the model goes upstream untouched (the tier's cap and
        # a thinking budget that must fit under it aside).
        sent = {k: v for k, v in seen.body.items() if k not in ("model", "max_tokens", "thinking")}
        original = captured["body"]
        assert sent == {k: v for k, v in original.items() if k in sent}, where
        assert set(original) - set(seen.body) <= {"route"}, where
    assert routed == EXPECTED[scenario]


def test_the_rename_capture_is_what_the_policy_tests_say() -> None:
    """The coding-agent policy's inline tests give attribute values; these are the ones the
    real requests carry (so the tests are about requests Claude Code really sends)."""
    policy = policyroute.load(POLICY)
    for version in sorted({v for v, _ in _captures()}):
        body = _load(version, "rename")[0]["body"]
        request = policyroute.Request.from_anthropic(body)
        assert request.prompt == "Rename the variable tmp to total in utils.py", version
        assert request.has_tools and request.output_tokens == 32000
        tokens = request.estimated_context_tokens()
        # System, tools and messages: 10k to 20k tokens (the tool schemas alone 8k to 16k).
        assert tokens is not None and 10_000 < tokens < 25_000, (version, tokens)
        decision = policy.decide(request)
        assert (decision.tier, decision.rule) == ("haiku", "mechanical"), version


PRICES = {"claude-sonnet-4-5-20250929": 3.0, "claude-haiku-4-5-20251001": 1.0, HAIKU: 1.0}
WARMUPS = {
    "command execution specialist": "Bash",
    "software architect and planning specialist": "Plan",
    "file search specialist": "Explore",
}


def _estimate(body: dict[str, Any]) -> int:
    """docs/serve.md's estimate: 4 characters a token over the system text, the tool
    definitions and the messages (as JSON)."""
    system = body.get("system")
    if not isinstance(system, str):
        system = "".join(str(b.get("text", "")) for b in system or [])
    tools, messages = json.dumps(body.get("tools") or []), json.dumps(body.get("messages"))
    return (len(system) + len(tools) + len(messages)) // 4


def test_the_documented_background_costs() -> None:
    """docs/serve.md's table of Claude Code's background calls, computed from the captures."""
    doc = (ROOT / "docs" / "serve.md").read_text(encoding="utf-8")
    rows = []
    for captured in _load("2.0.77", "rename"):
        body = captured["body"]
        if body["model"] == "auto":
            continue
        (agent,) = [a for phrase, a in WARMUPS.items() if phrase in json.dumps(body["system"])]
        tokens, price = _estimate(body), PRICES[body["model"]]
        cost, first = tokens * price / 1e6, tokens * price * 1.25 / 1e6
        rows.append(
            f"| `Warmup`, {agent} sub-agent | 2.0.77, every start | `{body['model']}` "
            f"| {tokens / 1000:.1f}k | ${cost:.3f} | ${first:.3f} |"
        )
    assert len(rows) == 3
    for version, parts in (("2.0.77", 10), ("2.1.197", 15), ("2.1.332", 26)):
        context = _load(version, "context")
        assert sum("count_tokens" in c["path"] for c in context) == parts, version
    probes = [c["body"] for c in _load("2.0.77", "context") if c["body"].get("max_tokens") == 1]
    tokens = sum(_estimate(b) for b in probes)
    cost = tokens * PRICES[HAIKU] / 1e6
    rows.append(f"| {tokens / 1000:.1f}k in all | ${cost:.3f} | ${cost:.3f} |")
    for row in rows:
        assert row in doc, row
