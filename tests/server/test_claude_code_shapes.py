"""Every documented Messages API request shape as HTTP through a real `policyroute serve`
process, in front of the fake API: each is accepted, routed, and forwarded untouched (only
the model replaced; the policy names no cap, so nothing else is changed). A routed
`count_tokens` is counted in /metrics as routed, not as pass-through.

The shapes are the request mapping's table (tests/request/test_messages.py), so the mapping
and the proxy are held to the same list.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from fake_anthropic import FakeAnthropic
from request.test_messages import SHAPES

from .serve_process import Served, metric
from .serve_support import HAIKU, SONNET

KEY = "sk-ant-api03-shapes-0000000000000000"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}

# No tier and no rule names a max_tokens: a routed request leaves with the model replaced
# and nothing else changed (caps and a thinking budget fitted under them are the ladder's).
POLICY_TEXT = f"""
policy "shapes"

tier haiku  = "{HAIKU}"  {{ input 1.00  output 5.00 }}
tier sonnet = "{SONNET}" {{ input 3.00  output 15.00 }}

rule weather: prompt contains "weather" -> sonnet
default                                  -> haiku
"""


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, fake_server: FakeAnthropic
) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("shapes")
    policy = folder / "shapes.route"
    policy.write_text(POLICY_TEXT)
    args = (str(policy), "--upstream", fake_server.base_url, "--records", str(folder / "r.jsonl"))
    with Served(*args) as s:
        yield s


def _post(served: Served, path: str, body: dict[str, Any]) -> httpx2.Response:
    raw = json.dumps(body).encode()
    return httpx2.post(served.url + path, content=raw, headers=HEADERS, timeout=30)


@pytest.mark.parametrize("shape", SHAPES, ids=[f"shape-{i}" for i in range(len(SHAPES))])
def test_every_documented_shape_is_forwarded_untouched(
    served: Served, fake: FakeAnthropic, shape: dict[str, Any]
) -> None:
    body = {"model": "auto", "max_tokens": 64, **shape}
    r = _post(served, "/v1/messages?beta=true", body)
    assert r.status_code == 200, r.text[:500]
    assert r.headers["x-policyroute-routed"] == "true"
    [seen] = fake.requests
    assert seen.model in (HAIKU, SONNET) and seen.model == r.json()["model"]
    assert seen.path == "/v1/messages?beta=true"
    assert seen.body == {**body, "model": seen.model}  # everything else as it was sent


@pytest.mark.parametrize("shape", SHAPES, ids=[f"shape-{i}" for i in range(len(SHAPES))])
def test_every_documented_shape_passes_through_byte_for_byte(
    served: Served, fake: FakeAnthropic, shape: dict[str, Any]
) -> None:
    body = {"model": HAIKU, "max_tokens": 64, **shape}
    r = _post(served, "/v1/messages", body)
    assert r.status_code == 200, r.text[:500]
    assert r.headers["x-policyroute-routed"] == "false"
    [seen] = fake.requests
    assert seen.body == body


def test_a_routed_count_tokens_is_counted_as_routed(served: Served, fake: FakeAnthropic) -> None:
    def scrape() -> str:
        return httpx2.get(served.url + "/metrics", timeout=10).text

    routed_line = (
        'policyroute_count_tokens_requests_total{rule="weather",status="200",tier="sonnet"}'
    )
    passed_line = 'policyroute_passthrough_requests_total{endpoint="count_tokens",status="200"}'
    before = scrape()
    weather = {"model": "auto", "messages": [{"role": "user", "content": "weather in Oslo?"}]}
    r = _post(served, "/v1/messages/count_tokens?beta=true", weather)
    assert r.status_code == 200 and r.json()["input_tokens"] > 0
    assert r.headers["x-policyroute-tier"] == "sonnet"
    assert fake.requests[-1].model == SONNET
    after = scrape()
    assert metric(after, routed_line) == metric(before, routed_line) + 1
    assert metric(after, passed_line) == metric(before, passed_line)  # not pass-through
    r = _post(served, "/v1/messages/count_tokens", {**weather, "model": HAIKU})
    assert r.status_code == 200 and "x-policyroute-tier" not in r.headers
    last = scrape()
    assert metric(last, passed_line) == metric(after, passed_line) + 1
    assert metric(last, routed_line) == metric(after, routed_line)

