"""The real Claude Code CLI through a real `policyroute serve` process, end to end.

Each pinned version (tests/claude_code.py) runs `claude -p ... --output-format json` with
`ANTHROPIC_BASE_URL` at the proxy, which serves policies/coding-agent.route in front of the
fake Messages API answering as a model answers an agent (tests/fake_agent.py). The CLI's own
JSON output, what reached the fake, and the proxy's decision records say what happened; the
records are then replayed and must land where the live requests did.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import claude_code
import httpx2
import pytest
from fake_agent import agent_reply, last_user_turn, typed_text
from fake_anthropic import FakeAnthropic, Seen
from processes import START_TIMEOUT, free_port, stop_group

from .serve_support import HAIKU, OPUS, SONNET

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "policies" / "coding-agent.route"
EXE = str(Path(sys.executable).with_name("policyroute"))
HAIKU_CAP = 4096  # policies/shared/tiers.route: haiku's max_tokens
NOTES = "The build runs two worker pools that share one queue and can deadlock on shutdown.\n"
UTILS = "def add(xs):\n    tmp = 0\n    for x in xs:\n        tmp += x\n    return tmp\n"
CLAUDE_MD = "# Project notes\n\nKeep the architecture notes in docs/ up to date.\n"


@dataclass
class Run:
    """One `claude -p` run: the CLI's JSON result, the requests the fake saw, the records."""

    result: dict[str, Any]
    seen: list[Seen]
    records: list[dict[str, Any]]

    def main_turns(self) -> list[Seen]:
        """The agent's own turns (what the person asked and its tool loop), routed or not;
        the background calls (2.0.77's sub-agent `Warmup`s) left out."""
        return [s for s in self.seen if typed_text(last_user_turn(s.body)) != "Warmup"]


class Agent:
    """A serve process with the coding-agent policy, the fake behind it, a project folder."""

    def __init__(self, version: str, fake: FakeAnthropic, work: Path) -> None:
        self.version, self.fake, self.work = version, fake, work
        self.records = work / "records.jsonl"
        self.project = work / "project"
        self.project.mkdir()
        (self.project / "notes.txt").write_text(NOTES)
        (self.project / "utils.py").write_text(UTILS)
        (self.project / "CLAUDE.md").write_text(CLAUDE_MD)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [EXE, "serve", str(POLICY), "--port", str(self.port)]
        command += ["--upstream", fake.base_url, "--records", str(self.records), "--log-prompts"]
        self.log = (work / "serve.log").open("w")
        self.proc = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if httpx2.get(self.url + "/healthz").status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("serve did not start:\n" + self.serve_log())
            time.sleep(0.05)

    def serve_log(self) -> str:
        return (self.work / "serve.log").read_text(errors="replace")

    def stop(self) -> None:
        stop_group(self.proc, 15)
        self.log.close()

    def read_records(self) -> list[dict[str, Any]]:
        if not self.records.exists():
            return []
        return [json.loads(x) for x in self.records.read_text().splitlines() if x.strip()]

    def claude(self, prompt: str, *args: str, model: str | None = "auto", **env: str) -> Run:
        before_seen, before_records = len(self.fake.requests), len(self.read_records())
        home = self.work / f"home-{before_seen}"
        extra = ("--model", model) if model else ()
        done = claude_code.run(
            self.version,
            prompt,
            base_url=self.url,
            home=home,
            cwd=self.project,
            args=(*extra, *args),
            env={"ANTHROPIC_SMALL_FAST_MODEL": HAIKU, **env},
        )
        assert done.returncode == 0, (
            f"claude exited {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}\n"
            f"serve: {self.serve_log()[-3000:]}"
        )
        result = json.loads(done.stdout)
        assert result["is_error"] is False, result
        # A stream's record is written as the response ends: wait until they are all in.
        deadline = time.monotonic() + 10
        records = self.read_records()[before_records:]
        routed = [s for s in self.fake.requests[before_seen:] if s.model in (HAIKU, SONNET, OPUS)]
        while len(records) < len(routed) and time.monotonic() < deadline:
            time.sleep(0.05)
            records = self.read_records()[before_records:]
        return Run(result, list(self.fake.requests[before_seen:]), records)


@pytest.fixture(scope="module", params=claude_code.VERSIONS)
def agent(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Agent]:
    version = str(request.param)
    claude_code.cli(version)  # installs it if missing (a test here never skips)
    with FakeAnthropic() as fake:
        fake.responders["*"] = agent_reply
        served = Agent(version, fake, tmp_path_factory.mktemp(f"claude-{version}"))
        try:
            yield served
        finally:
            served.stop()


def _models(run: Run) -> list[str]:
    return [s.model for s in run.main_turns()]


def _answered_by(run: Run) -> set[str]:
    """The models the CLI priced (2.1.197 marks its 1M-context default `...[1m]`)."""
    return {m.removesuffix("[1m]") for m in run.result["modelUsage"]}


def test_a_rename_goes_to_the_cheap_tier(agent: Agent) -> None:
    run = agent.claude("Rename the variable tmp to total in utils.py")
    assert _models(run) == [HAIKU]
    # CLAUDE.md says "architecture" and the system prompt "security": neither is the prompt.
    assert [(r["tier"], r["rule"]) for r in run.records] == [("haiku", "mechanical")]
    assert f"[answered by {HAIKU}]" in run.result["result"]


def test_a_deadlock_hunt_goes_to_the_top(agent: Agent) -> None:
    run = agent.claude("Find the deadlock between the two worker pools in utils.py")
    assert _models(run) == [OPUS]
    assert [(r["tier"], r["rule"]) for r in run.records] == [("opus", "hard_words")]
    assert f"[answered by {OPUS}]" in run.result["result"]
    # Claude Code reports (and prices) the model it asked for, whatever the answer names.
    assert _answered_by(run) == {"auto"}


def test_a_tool_loop_keeps_the_tier_that_called_the_tool(agent: Agent) -> None:
    notes = agent.project / "notes.txt"
    run = agent.claude(
        f"Read the file {notes} and rename tmp to total where it says so",
        "--allowedTools",
        "Read",
    )
    turns = run.main_turns()
    assert len(turns) == 2, [typed_text(last_user_turn(s.body)) for s in turns]
    # The second turn carries the file's text ("deadlock") as a tool result: it continues
    # the task the rename started, on the tier that issued the tool call.
    assert any(b.get("type") == "tool_result" for b in last_user_turn(turns[1].body))
    assert "deadlock" in json.dumps(turns[1].body["messages"][-1])
    assert _models(run) == [HAIKU, HAIKU]
    assert [r["tier"] for r in run.records] == ["haiku", "haiku"]
    assert run.result["num_turns"] == 2 and f"[answered by {HAIKU}]" in run.result["result"]


def test_thinking_under_a_tier_cap(agent: Agent) -> None:
    run = agent.claude("Rename the variable tmp to total in utils.py", MAX_THINKING_TOKENS="8000")
    (turn,) = run.main_turns()
    assert turn.model == HAIKU
    body = turn.body
    # The tier's cap holds, and what went upstream is a request the API accepts (the fake
    # refuses a budget at or over max_tokens, as the API does).
    assert body["max_tokens"] <= HAIKU_CAP
    thinking = body.get("thinking") or {}
    if thinking.get("type") == "enabled":
        assert 1024 <= thinking["budget_tokens"] < body["max_tokens"]
    assert [r["outcome"] for r in run.records] == ["ok"]
    assert f"[answered by {HAIKU}]" in run.result["result"]


def test_context_counts_tokens_on_a_routed_tier(agent: Agent) -> None:
    """`/context` counts each part of the context with `count_tokens` and the model `auto`:
    routed, so it is answered, and Claude Code never falls back to its one-token probes."""
    run = agent.claude("/context")
    counts = [s for s in run.seen if "count_tokens" in s.path]
    assert len(counts) >= 10
    assert {s.model for s in counts} <= {HAIKU, SONNET, OPUS}
    assert all(s.path.endswith("?beta=true") for s in counts)
    assert [s for s in run.seen if s.body.get("max_tokens") == 1] == []


def test_the_default_model_passes_through(agent: Agent) -> None:
    run = agent.claude("Rename the variable tmp to total in utils.py", model=None)
    models = set(_models(run))
    assert models and not models & {"auto"}, models
    assert run.records == []  # nothing was routed
    # The CLI's own choice reached the upstream unchanged, and it priced what it asked for.
    assert _answered_by(run) == models


def test_replaying_the_records_lands_where_the_live_requests_did(agent: Agent) -> None:
    if not agent.read_records():
        agent.claude("Rename the variable tmp to total in utils.py")
        agent.claude("Find the deadlock between the two worker pools in utils.py")
    records = agent.read_records()
    assert records and all("text" in (r.get("prompt") or {}) for r in records)
    done = subprocess.run(
        [EXE, "replay", str(POLICY), str(agent.records), "--format", "json", "--strict"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["replayed"] == len(records)
    # Request by request (each record's id to its tier and rule), not counts that could
    # balance out: every replayed decision is the live one.
    decisions = report["served"]["decisions"]
    assert decisions["first_disagreements"] == []
    assert decisions["compared"] == decisions["agree"] == len(records)
