"""Hostile bodies get 400 in the API's shape, never a 500; slow, vanishing and oversized
senders are handled at the socket, against the real `policyroute serve` process."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fake_anthropic import FakeAnthropic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .serve_process import Served, metric
from .serve_support import POLICY_TEXT

KEY = "sk-ant-api03-hostile-0123456789"
HEADERS = {"x-api-key": KEY, "content-type": "application/json"}
GOOD: dict[str, Any] = {
    "model": "auto",
    "max_tokens": 8,
    "system": "be brief",
    "metadata": {"user_id": "u1"},
    "tools": [{"name": "t", "input_schema": {"type": "object"}}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "how are you"},
    ],
}


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, fake_server: FakeAnthropic
) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("hostile")
    policy = folder / "serve.route"
    policy.write_text(POLICY_TEXT)
    args = (str(policy), "--upstream", fake_server.base_url, "--records", str(folder / "r.jsonl"))
    with Served(*args, "--max-body-bytes", "65536", "--body-timeout", "1") as s:
        yield s


def _post(served: Served, raw: bytes) -> httpx2.Response:
    return httpx2.post(served.url + "/v1/messages", content=raw, headers=HEADERS, timeout=30)


def _bad_request(r: httpx2.Response, *words: str) -> None:
    assert r.status_code == 400, (r.status_code, r.text[:300])
    error = r.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    for w in words:
        assert w in error["error"]["message"], error


def _errors_500(served: Served) -> float:
    return metric(
        httpx2.get(served.url + "/metrics").text, 'policyroute_errors_total{status="500"}'
    )


def test_huge_integers_deep_nesting_surrogates_and_constants(served: Served) -> None:
    huge = "9" * 5000
    _bad_request(
        _post(served, f'{{"model": "auto", "max_tokens": {huge}}}'.encode()), "5000 digits"
    )
    nested = b'{"model": "auto", "metadata": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    _bad_request(_post(served, nested), "nested deeper")
    nested = b'{"model": "auto", "metadata": ' + b"[" * 300 + b"]" * 300 + b"}"
    _bad_request(_post(served, nested), "nested deeper", "1:")
    lone = json.dumps({**GOOD, "messages": [{"role": "user", "content": "x"}]})
    lone = lone.replace('"x"', '"a\\ud800b"')
    _bad_request(_post(served, lone.encode()), "surrogate", "messages[0].content")
    # A key, and a passed-through model: the guard is before routing.
    _bad_request(_post(served, b'{"model": "claude-haiku-4-5", "\\udfff": 1}'), "surrogate")
    _bad_request(_post(served, b'{"model": "auto", "max_tokens": NaN}'), "NaN")
    _bad_request(_post(served, b'{"model": "auto", "temperature": -Infinity}'), "Infinity")
    # A surrogate pair is a character, not a lone surrogate.
    pair = json.dumps({**GOOD, "system": "\U0001f600"}).encode()
    assert b"\\ud83d" in pair
    assert _post(served, pair).status_code == 200
    assert _errors_500(served) == 0


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=6,
    )


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*path, i))


PATHS = [p for p in _paths(GOOD) if p]


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(value[path[0]], path[1:], new)  # type: ignore[index]
    return copy


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(path=st.sampled_from(PATHS), new=_json_values(), stream=st.booleans())
def test_a_wrong_type_anywhere_is_never_a_500(
    served: Served, path: tuple[Any, ...], new: Any, stream: bool
) -> None:
    body = _replace({**GOOD, "stream": stream}, path, new)
    r = _post(served, json.dumps(body).encode())
    assert r.status_code in (200, 400), (path, new, r.status_code, r.text[:300])
    if r.status_code == 400:
        assert r.json()["error"]["type"] == "invalid_request_error"


def _raw(served: Served, head: bytes, body_parts: list[bytes], pause: float = 0.0) -> bytes:
    """What the server answers a client that writes everything before reading (a drip
    that the server cuts off stops sending, as a client whose write fails does)."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as s:
        s.sendall(head)
        try:
            for part in body_parts:
                s.sendall(part)
                time.sleep(pause)
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while the client was still writing
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except ConnectionResetError:
            pass  # a close with unread client bytes resets; what arrived before it stands
        return out


def _head(length: int | None, extra: str = "") -> bytes:
    framing = f"content-length: {length}" if length is not None else "transfer-encoding: chunked"
    return (
        f"POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: {KEY}\r\n"
        f"content-type: application/json\r\n{framing}\r\nconnection: close\r\n{extra}\r\n"
    ).encode()


def test_an_oversized_body_gets_its_413_however_it_is_sent(served: Served) -> None:
    big = b"x" * 1_000_000
    # Declared too large, written whole before reading.
    answer = _raw(served, _head(len(big)), [big[i : i + 65536] for i in range(0, len(big), 65536)])
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"request_too_large"' in answer
    # Chunked, no length: found too large while reading.
    chunks = [b"%x\r\n%s\r\n" % (65536, big[:65536]) for _ in range(15)] + [b"0\r\n\r\n"]
    answer = _raw(served, _head(None), chunks)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # Announced with `expect: 100-continue`: refused before the body is sent.
    answer = _raw(served, _head(len(big), "expect: 100-continue\r\n"), [])
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_a_slow_body_gets_408_and_a_client_that_leaves_is_not_an_error(served: Served) -> None:
    before = _errors_500(served)
    body = json.dumps(GOOD).encode()
    # Dripped: 10 bytes every 0.2 s takes far longer than the 1 s body deadline.
    answer = _raw(served, _head(len(body)), [body[i : i + 10] for i in range(0, 200, 10)], 0.2)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as s:
            s.sendall(_head(len(body)) + body[:50])
            time.sleep(0.02)
        # closed mid-body
    deadline = time.monotonic() + 10
    text = ""
    while time.monotonic() < deadline:
        text = httpx2.get(served.url + "/metrics").text
        gone = metric(text, 'policyroute_client_disconnects_total{stage="body"}')
        if gone >= 20:
            break
        time.sleep(0.1)
    assert metric(text, 'policyroute_client_disconnects_total{stage="body"}') == 20
    assert _errors_500(served) == before == 0
    assert "internal error" not in served.log()


def test_the_records_path_and_log_stay_clean(served: Served, tmp_path: Path) -> None:
    assert "Traceback" not in served.log()
