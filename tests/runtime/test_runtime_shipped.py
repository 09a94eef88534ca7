"""Every tier of every shipped policy, with the SDK's default client, in every way of calling.

No test-only timeout: the client is what a user makes (`anthropic.Anthropic()` pointed at the
fake server). The shipped Opus tier's 32k `max_tokens` is what made a default client refuse
the call ("Streaming is required ..."); these tests pin that it works, sync and async,
created and streamed, through the Router, the middleware and `ask`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anthropic
import pytest
from fake_anthropic import FakeAnthropic, Reply
from runtime_support import SECRET_KEY, default_async_client, default_client

import policyroute
from policyroute.analysis import witness
from policyroute.runtime import AsyncRouter, Router, RoutingMiddleware

ROOT = Path(__file__).resolve().parents[2]
POLICIES = sorted((ROOT / "policies").glob("*.route"))


def _cases() -> list[tuple[str, str, str]]:
    """(policy file, rule, tier): one witnessed rule per tier of each shipped policy."""
    out = []
    for path in POLICIES:
        policy = policyroute.load(path)
        seen: set[str] = set()
        for rule in policy.rules:
            name = rule if isinstance(rule, str) else rule.name
            w = witness(policy, name)
            if w is None:
                continue
            tier = _decide(policy, w).tier
            if tier not in seen:
                seen.add(tier)
                out.append((path.name, name, tier))
        assert seen == {t.name for t in policy.tiers}, f"{path.name}: tiers without a witness"
    return out


def _split(w: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    params = {k: v for k, v in w.items() if k not in ("route", "classifier_answers")}
    return params, dict(w.get("route") or {}), dict(w.get("classifier_answers") or {})


def _decide(policy: policyroute.Policy, w: dict[str, Any]) -> policyroute.Decision:
    params, route, answers = _split(w)
    from policyroute import Classification, StaticClassifier

    classifier = StaticClassifier(
        {k: Classification(v["label"], v.get("confidence", 1.0)) for k, v in answers.items()}
    )
    request = policyroute.Request.from_anthropic(params, **route)
    return policy.decide(request, classifier=classifier)


CASES = _cases()
IDS = [f"{p}:{t}" for p, _, t in CASES]


def _script_classifiers(fake: FakeAnthropic, policy: policyroute.Policy, rule: str) -> None:
    """The classifier answers the rule's witness needs, queued on each classifier's tier."""
    for name, answer in _split(witness(policy, rule) or {})[2].items():
        fake.script(policy.classifiers[name].tier.model, [Reply.json(answer)])


def _setup(
    fake: FakeAnthropic, file: str, rule: str
) -> tuple[Any, dict[str, Any], dict[str, Any], Any]:
    policy = policyroute.load(ROOT / "policies" / file)
    w = witness(policy, rule)
    assert w is not None
    params, route, _ = _split(w)
    _script_classifiers(fake, policy, rule)
    decision = _decide(policy, w)
    fake.script(decision.model, [Reply(text="answered by " + decision.tier)])
    return policy, params, route, decision


@pytest.mark.parametrize(("file", "rule", "tier"), CASES, ids=IDS)
def test_router_sync_create_and_stream(
    fake: FakeAnthropic, file: str, rule: str, tier: str
) -> None:
    policy, params, route, decision = _setup(fake, file, rule)
    router = Router(policy, default_client(fake.base_url))
    result = router.create(**params, route=route)
    assert (result.tier, result.text) == (tier, "answered by " + tier)
    body = fake.requests[-1].body
    assert body["model"] == decision.model and body["stream"] is True
    assert body["max_tokens"] == decision.max_tokens  # the cap, since the caller gave none
    fake.script(decision.model, [Reply(text="streamed", chunks=3)])
    _script_classifiers(fake, policy, rule)
    with router.stream(**params, route=route) as s:
        assert "".join(s.text_stream) == "streamed"
    assert s.result is not None and s.result.tier == tier


@pytest.mark.parametrize(("file", "rule", "tier"), CASES, ids=IDS)
def test_router_async_create_and_stream(
    fake: FakeAnthropic, file: str, rule: str, tier: str
) -> None:
    policy, params, route, decision = _setup(fake, file, rule)

    async def main() -> tuple[str, str]:
        router = AsyncRouter(policy, default_async_client(fake.base_url))
        result = await router.create(**params, route=route)
        fake.script(decision.model, [Reply(text="streamed", chunks=3)])
        _script_classifiers(fake, policy, rule)
        s = await router.stream(**params, route=route)
        async with s:
            text = "".join([t async for t in s.text_stream])
        return result.tier, text

    assert asyncio.run(main()) == (tier, "streamed")
    assert fake.requests[-1].body["max_tokens"] == decision.max_tokens


@pytest.mark.parametrize(("file", "rule", "tier"), CASES, ids=IDS)
def test_middleware_sync_and_async(fake: FakeAnthropic, file: str, rule: str, tier: str) -> None:
    policy, params, route, decision = _setup(fake, file, rule)
    client = anthropic.Anthropic(
        base_url=fake.base_url, api_key=SECRET_KEY, middleware=[RoutingMiddleware(policy)]
    )
    # A long output goes through `messages.stream`, routed like any call.
    with client.messages.stream(
        model="auto", max_tokens=32_000, **params, extra_body={"route": route}
    ) as s:
        message = s.get_final_message()
    assert message.model == decision.model
    sent = fake.requests[-1].body
    assert sent["max_tokens"] == min(32_000, decision.max_tokens or 32_000)
    assert "route" not in sent

    _setup(fake, file, rule)
    aclient = anthropic.AsyncAnthropic(
        base_url=fake.base_url, api_key=SECRET_KEY, middleware=[RoutingMiddleware(policy)]
    )

    async def main() -> Any:
        return await aclient.messages.create(
            model="auto", max_tokens=1024, **params, extra_body={"route": route}
        )

    assert asyncio.run(main()).model == decision.model
    assert fake.requests[-1].body["max_tokens"] == min(1024, decision.max_tokens or 1024)


def test_ask_reaches_opus_with_default_settings(fake: FakeAnthropic, tmp_path: Path) -> None:
    file, rule, _ = next(c for c in CASES if c[2] == "opus")
    _, params, route, decision = _setup(fake, file, rule)
    request = tmp_path / "req.json"
    request.write_text(json.dumps({**params, "route": route}))
    env = {
        **os.environ,
        "ANTHROPIC_BASE_URL": fake.base_url,
        "ANTHROPIC_API_KEY": SECRET_KEY,
    }
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "policyroute.cli",
            "ask",
            str(ROOT / "policies" / file),
            "--request",
            str(request),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["tier"] == "opus" and out["cost_usd"] > 0
    assert all("cost_usd" in a for a in out["attempts"])
    assert fake.requests[-1].body["max_tokens"] == decision.max_tokens == 32768
