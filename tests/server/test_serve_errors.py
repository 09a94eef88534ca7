"""Every error the proxy answers itself has the API's shape and status; no input gives a 500."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from fake_anthropic import FakeAnthropic, Reply
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policyroute
from policyroute.server.app import ServeConfig
from policyroute.server.auth import redact

from .serve_support import HAIKU, ServerThread

KEY = "sk-ant-api03-secret-key-abcdef0123456789"
H = {"x-api-key": KEY, "content-type": "application/json"}


def _error(r: httpx2.Response, status: int, kind: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == kind
    assert "Traceback" not in r.text
    return str(body["error"]["message"])


def _post(
    proxy: ServerThread, content: bytes | str, headers: dict[str, str] | None = None
) -> httpx2.Response:
    return httpx2.post(proxy.url + "/v1/messages", content=content, headers=headers or H)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "empty"),
        (b"{bad", "not valid JSON"),
        (b"\xff\xfe{}", "UTF-8"),
        (b"[1, 2]", "JSON object"),
        (b'"auto"', "JSON object"),
        (json.dumps({"model": "auto", "max_tokens": "many", "messages": []}), "max_tokens"),
        (json.dumps({"model": "auto", "stream": "yes", "messages": []}), "stream"),
        (json.dumps({"model": "auto", "messages": {"role": "user"}}), "messages"),
        (json.dumps({"model": "auto", "messages": [{"role": "robot", "content": "x"}]}), "role"),
        (json.dumps({"model": "auto", "messages": [{"role": "user", "content": 3}]}), "content"),
        (json.dumps({"model": "auto", "messages": [], "route": "fast"}), "route"),
        (json.dumps({"model": "auto", "messages": [], "route": {"colour": "red"}}), "colour"),
        (json.dumps({"model": "auto", "messages": [], "route": {"files": "many"}}), "files"),
        (json.dumps({"model": "auto", "messages": [], "metadata": {"user_id": 3}}), None),
    ],
)
def test_malformed_bodies_are_400(
    proxy: ServerThread, fake: FakeAnthropic, content: bytes | str, says: str | None
) -> None:
    r = _post(proxy, content)
    if says is None:  # a body the policy can read: the upstream judges the rest
        assert r.status_code == 200
        return
    message = _error(r, 400, "invalid_request_error")
    assert says in message
    assert not fake.requests  # nothing malformed goes upstream


def test_route_header_must_be_a_json_object(proxy: ServerThread, fake: FakeAnthropic) -> None:
    body = json.dumps({"model": "auto", "max_tokens": 5, "messages": []})
    for value, says in (("{task: review}", "not valid JSON"), ('["review"]', "JSON object")):
        r = _post(proxy, body, {**H, "x-policyroute-route": value})
        assert says in _error(r, 400, "invalid_request_error")


def test_unknown_paths_and_methods(proxy: ServerThread, fake: FakeAnthropic) -> None:
    _error(httpx2.get(proxy.url + "/nope"), 404, "not_found_error")
    _error(httpx2.post(proxy.url + "/healthz", headers=H), 405, "invalid_request_error")
    # Other /v1 paths and methods are the upstream's to answer.
    _error(httpx2.get(proxy.url + "/v1/messages", headers=H), 404, "not_found_error")


def test_body_size_limit(fake: FakeAnthropic, tmp_path: Path) -> None:
    policy = policyroute.loads('tier h = "claude-haiku-4-5" { input 1 output 5 }\ndefault -> h\n')
    config = ServeConfig(policy=policy, upstream=fake.base_url, max_body_bytes=2048)
    with ServerThread(config) as proxy:
        big = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "x" * 4000}]})
        _error(_post(proxy, big), 413, "request_too_large")

        def chunks() -> Any:  # no content-length: counted while reading
            for _ in range(10):
                yield b" " * 1000

        r = httpx2.post(proxy.url + "/v1/messages", content=chunks(), headers=H)
        _error(r, 413, "request_too_large")
        small = json.dumps(
            {"model": "auto", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
        )
        assert _post(proxy, small).status_code == 200
    assert not fake.requests[:-1]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.one_of(
        st.binary(max_size=64),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=6), inner, max_size=3)
            ),
            max_leaves=8,
        ).map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries(
            {
                "model": st.just("auto"),
                "messages": st.lists(
                    st.fixed_dictionaries(
                        {
                            "role": st.sampled_from(["user", "assistant", "system", 3]),
                            "content": st.one_of(
                                st.text(max_size=10),
                                st.integers(),
                                st.lists(
                                    st.dictionaries(
                                        st.sampled_from(["type", "text"]), st.text(max_size=5)
                                    ),
                                    max_size=2,
                                ),
                            ),
                        }
                    ),
                    max_size=3,
                ),
            },
            optional={
                "max_tokens": st.one_of(st.integers(-5, 5000), st.text(max_size=3)),
                "route": st.dictionaries(
                    st.sampled_from(["task", "files", "user", "x"]),
                    st.integers() | st.text(max_size=4),
                    max_size=2,
                ),
            },
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_no_body_gives_a_500(shared_proxy: ServerThread, body: bytes) -> None:
    r = _post(shared_proxy, body)
    assert r.status_code < 500, r.text
    assert "Traceback" not in r.text
    if r.status_code != 200:
        assert r.json()["type"] == "error"


@pytest.fixture(scope="module")
def shared_proxy(fake_server: FakeAnthropic, policy: policyroute.Policy) -> Any:
    with ServerThread(ServeConfig(policy=policy, upstream=fake_server.base_url)) as server:
        yield server


# -- keys ---------------------------------------------------------------------------------


def test_held_key_requires_a_client_token(
    fake: FakeAnthropic, policy: policyroute.Policy, tmp_path: Path
) -> None:
    server_key = "sk-ant-api03-server-held-key-987654321"
    config = ServeConfig(
        policy=policy,
        upstream=fake.base_url,
        api_key=server_key,
        client_tokens=("tok-one-123", "tok-two-456"),
        records=tmp_path / "r.jsonl",
    )
    body = json.dumps(
        {"model": "auto", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    )
    with ServerThread(config) as proxy:
        _error(
            _post(proxy, body, {"content-type": "application/json"}), 401, "authentication_error"
        )
        msg = _error(_post(proxy, body, {"x-api-key": "tok-wrong"}), 401, "authentication_error")
        assert "tok-" not in msg
        # The SDK's own key settings carry the token: x-api-key or a bearer token.
        with anthropic.Anthropic(base_url=proxy.url, api_key="tok-one-123", max_retries=0) as c:
            c.messages.create(
                model="auto", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
            )
        with anthropic.Anthropic(base_url=proxy.url, auth_token="tok-two-456", max_retries=0) as c:
            c.messages.create(
                model=HAIKU, max_tokens=5, messages=[{"role": "user", "content": "hi"}]
            )
    for seen in fake.requests:
        assert seen.headers["x-api-key"] == server_key
        assert "authorization" not in seen.headers
        assert "tok-" not in json.dumps(seen.headers)
    assert server_key not in (tmp_path / "r.jsonl").read_text()


def test_pass_through_mode_token_header(fake: FakeAnthropic, policy: policyroute.Policy) -> None:
    config = ServeConfig(policy=policy, upstream=fake.base_url, client_tokens=("gate-123456",))
    body = json.dumps(
        {"model": "auto", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    )
    with ServerThread(config) as proxy:
        _error(_post(proxy, body), 401, "authentication_error")
        r = _post(proxy, body, {**H, "x-policyroute-token": "gate-123456"})
        assert r.status_code == 200
    assert fake.requests[-1].headers["x-api-key"] == KEY
    assert "x-policyroute-token" not in fake.requests[-1].headers


def test_keys_never_reach_errors_records_or_logs(
    policy: policyroute.Policy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # An upstream nobody listens on: every attempt fails to connect.
    config = ServeConfig(policy=policy, upstream="http://127.0.0.1:9", records=tmp_path / "r.jsonl")
    body = json.dumps(
        {"model": "auto", "max_tokens": 5, "messages": [{"role": "user", "content": "hi " + KEY}]}
    )
    with caplog.at_level(logging.DEBUG), ServerThread(config) as proxy:
        r = _post(proxy, body, {**H, "authorization": "Bearer " + KEY})
        message = _error(r, 502, "api_error")
        assert r.headers["x-policyroute-attempts"] == "3"  # haiku, sonnet, opus: each refused
        r = httpx2.get(proxy.url + "/v1/models", headers=H)
        _error(r, 502, "api_error")
    assert KEY not in message and KEY not in r.text
    records = (tmp_path / "r.jsonl").read_text()
    assert KEY not in records and json.loads(records)["outcome"] == "failed"
    assert KEY not in caplog.text


def test_redact_is_the_runtimes() -> None:
    assert redact(f"failed with {KEY} in it") == "failed with [REDACTED] in it"
    assert redact("token tok-12345678 leaked", ["tok-12345678"]) == "token [REDACTED] leaked"


def test_upstream_errors_come_back_as_they_are(proxy: ServerThread, fake: FakeAnthropic) -> None:
    fake.script(HAIKU, [Reply(status=400, text="messages: roles must alternate")])
    body = json.dumps(
        {"model": "auto", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    )
    r = _post(proxy, body)
    assert "roles must alternate" in _error(r, 400, "invalid_request_error")
    assert r.headers["x-policyroute-attempts"] == "1"  # a 400 is not retried on another tier
    assert len(fake.requests) == 1
