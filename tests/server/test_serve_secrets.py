"""No key in any answer: an upstream that quotes every header it received, in every mode
(the client's own key, a held key; routed and passed through; streamed and not), against
the real `policyroute serve` process. Neither the answer nor the record holds a key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from fake_anthropic import FakeAnthropic, Fault, Reply

from .serve_process import Served
from .serve_support import HAIKU, OPUS, POLICY_TEXT, SONNET

CLIENT_KEY = "sk-ant-api03-client-own-key-0123456789abcdef"
HELD_KEY = "sk-ant-api03-held-by-the-proxy-9876543210"
TOKEN = "team-token-0123456789"
PINNED = {"task": "pinned"}  # `-> haiku escalate never`: the echo is the final answer


@pytest.fixture(scope="module")
def policy_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "serve.route"
    path.write_text(POLICY_TEXT)
    return path


@pytest.fixture(scope="module", params=["pass-through", "held-key"])
def mode(
    request: pytest.FixtureRequest, policy_path: Path, fake_server: FakeAnthropic
) -> Iterator[tuple[Served, dict[str, str], list[str]]]:
    records = policy_path.parent / f"{request.param}.jsonl"
    args = [str(policy_path), "--upstream", fake_server.base_url, "--records", str(records)]
    if request.param == "held-key":
        env = {"PR_HELD": HELD_KEY, "PR_TOKENS": TOKEN}
        args += ["--api-key-env", "PR_HELD", "--client-tokens-env", "PR_TOKENS"]
        headers, secrets = {"x-api-key": TOKEN}, [HELD_KEY, TOKEN]
    else:
        env, headers, secrets = {}, {"x-api-key": CLIENT_KEY}, [CLIENT_KEY]
    with Served(*args, env=env, probe_headers=headers) as served:
        served.records = records  # type: ignore[attr-defined]
        yield served, headers, secrets


def _body(model: str, stream: bool) -> dict[str, object]:
    return {
        "model": model,
        "max_tokens": 8,
        "stream": stream,
        "route": PINNED,
        "messages": [{"role": "user", "content": "hi"}],
    }


# An error status (401: not retried; 500: climbs the ladder first) to a JSON or stream
# request, and a 200 stream whose `error` event quotes the headers.
@pytest.mark.parametrize(
    ("status", "stream"), [(401, False), (401, True), (500, False), (500, True), (200, True)]
)
@pytest.mark.parametrize("model", ["auto", SONNET])
def test_an_upstream_that_echoes_headers_never_shows_a_key(
    mode: tuple[Served, dict[str, str], list[str]],
    fake: FakeAnthropic,
    model: str,
    stream: bool,
    status: int,
) -> None:
    served, headers, secrets = mode
    for m in (HAIKU, SONNET, OPUS):
        fake.script(m, [Reply(status=status, fault=Fault(echo_headers=True))] * 3)
    r = httpx2.post(served.url + "/v1/messages", json=_body(model, stream), headers=headers)
    text = r.text
    assert "x-api-key" in text  # the upstream did quote the headers...
    for secret in secrets:  # ...and no key got through
        assert secret not in text, text
    assert "sk-ant-" not in text, text
    for seen in fake.requests:
        assert seen.headers.get("x-api-key") in (CLIENT_KEY, HELD_KEY)
    record_text = served.records.read_text() if served.records.exists() else ""  # type: ignore[attr-defined]
    for secret in secrets:
        assert secret not in record_text
    assert "sk-ant-" not in served.log()
