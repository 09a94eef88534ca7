"""Serve on the engine: shadow statements, deadlines, continuations, the CLI's checks."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cli_in_process import Ran
from fake_anthropic import FakeAnthropic, Fault, Reply
from processes import free_port

import policyroute
from policyroute.runtime.shadowing import ShadowConfig
from policyroute.server.app import ServeConfig

from .serve_refusal import refuse_serve
from .serve_support import HAIKU, POLICY_TEXT, SONNET, ServerThread, read_records

KEY = "sk-ant-api03-engine-test-0123456789"
H = {"x-api-key": KEY}
EXE = str(Path(sys.executable).with_name("policyroute"))

SHADOW_POLICY = f"""
policy "serve-shadow"
tier haiku  = "{HAIKU}"  {{ input 1 output 5 }}
tier sonnet = "{SONNET}" {{ input 3 output 15 }}
default -> sonnet
shadow haiku sample 100%
"""


def _body(text: str, **kw: Any) -> dict[str, Any]:
    return {
        "model": "auto",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": text}],
        **kw,
    }


def test_shadow_statements_run_in_serve_with_a_budget(fake: FakeAnthropic, tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    config = ServeConfig(
        policy=policyroute.loads(SHADOW_POLICY),
        upstream=fake.base_url,
        records=tmp_path / "r.jsonl",
        shadow=ShadowConfig(1.0, pairs=pairs, seed=0),
    )
    fake.script(SONNET, [Reply(text="served")])
    fake.script(HAIKU, [Reply(text="shadowed")])
    with ServerThread(config) as proxy:
        r = httpx2.post(proxy.url + "/v1/messages", json=_body("hi"), headers=H)
        assert r.status_code == 200 and r.json()["content"][0]["text"] == "served"
        deadline = time.monotonic() + 10
        while not pairs.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        [record] = read_records(proxy)
    assert [a["kind"] for a in record["attempts"]] == ["generate", "shadow"]
    assert record["shadow_cost_usd"] > 0
    assert pairs.read_text().count("\n") == 1
    assert sorted(fake.models_called()) == sorted([SONNET, HAIKU])


def test_a_slow_drip_is_cut_at_the_per_try_deadline(fake: FakeAnthropic, tmp_path: Path) -> None:
    config = ServeConfig(
        policy=policyroute.loads(POLICY_TEXT),
        upstream=fake.base_url,
        records=tmp_path / "r.jsonl",
        upstream_timeout=0.5,
    )
    fake.default_reply = Reply(fault=Fault(trickle=0.06))  # one byte every 60 ms, every tier
    with ServerThread(config) as proxy:
        started = time.perf_counter()
        r = httpx2.post(
            proxy.url + "/v1/messages", json=_body("hi", stream=True), headers=H, timeout=20
        )
        elapsed = time.perf_counter() - started
        [record] = read_records(proxy)
    assert r.status_code == 504 and r.json()["type"] == "error"
    assert elapsed < 3  # three tiers at 0.5 s each, not the 600 s read timeout
    assert [a["trigger"] for a in record["attempts"]] == ["timeout"] * 3


def test_a_tool_result_turn_keeps_the_tier_that_called_the_tool(
    fake: FakeAnthropic, tmp_path: Path
) -> None:
    text = POLICY_TEXT.replace("sticky conversations 10 minutes", "")  # no sticky statement
    config = ServeConfig(
        policy=policyroute.loads(text), upstream=fake.base_url, records=tmp_path / "r.jsonl"
    )
    with ServerThread(config) as proxy:
        _tool_loop(fake, proxy)


def _tool_loop(fake: FakeAnthropic, proxy: ServerThread) -> None:
    meta = {"user_id": '{"device_id": "d", "account_uuid": "acc", "session_id": "s-42"}'}
    first = _body("x", metadata=meta)
    fake.script(HAIKU, [Reply(status=529, text="Overloaded")])  # turn 1 climbs to sonnet
    r = httpx2.post(proxy.url + "/v1/messages", json=first, headers=H)
    assert r.headers["x-policyroute-tier"] == "sonnet"
    second = {
        **first,
        "messages": [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "r", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t", "content": "42"}],
            },
        ],
    }
    r = httpx2.post(proxy.url + "/v1/messages", json=second, headers=H)
    assert r.headers["x-policyroute-tier"] == "sonnet"  # the rules say haiku; the task goes on
    record = read_records(proxy)[-1]
    assert record["continuation"] is True and record["sticky_from"] == "haiku"
    assert record["route"] == {} and record["rule"] == "quick"


def _serve(*args: str) -> Ran:
    # In this process (serve_refusal.py): a refusal is decided before anything listens, and a
    # fresh interpreter per case imported the server stack six times over. The start-up case
    # below keeps the real entry point.
    return refuse_serve(*args)


@pytest.mark.parametrize("value", ["nan", "0", "-1", "-inf"])
def test_upstream_timeout_must_be_a_number_above_zero(tmp_path: Path, value: str) -> None:
    policy = tmp_path / "p.route"
    policy.write_text(POLICY_TEXT)
    r = _serve(str(policy), "--upstream-timeout", value)
    assert r.returncode == 2 and "--upstream-timeout" in r.stderr and "Traceback" not in r.stderr


def test_shadow_needs_budget_and_pairs_together(tmp_path: Path) -> None:
    policy = tmp_path / "p.route"
    policy.write_text(SHADOW_POLICY)
    r = _serve(str(policy), "--shadow-budget", "5")
    assert r.returncode == 2 and "--pairs" in r.stderr
    r = _serve(str(policy), "--shadow-budget", "nan", "--pairs", str(tmp_path / "p.jsonl"))
    assert r.returncode == 2 and "--shadow-budget" in r.stderr


def test_serve_says_once_at_start_up_that_shadow_is_off(tmp_path: Path) -> None:
    policy = tmp_path / "p.route"
    policy.write_text(SHADOW_POLICY)
    port = str(free_port())
    proc = subprocess.Popen(
        [EXE, "serve", str(policy), "--port", port], stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline(), proc.stderr.readline()]
    finally:
        proc.terminate()
        proc.wait(10)
    assert sum("shadow statements are off" in line for line in lines) == 1
