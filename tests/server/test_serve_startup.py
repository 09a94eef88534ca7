"""`policyroute serve` refuses what it can know is wrong before it listens: one line, the
right exit status, no traceback, nothing bound. And no forwarding loop, at start-up or
through a chain of proxies.

Refusals run in-process (serve_refusal.py); the `$ANTHROPIC_BASE_URL` one runs the installed
command, so the entry point and its environment are proved in a real process too."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import httpx2
import pytest
from fake_anthropic import FakeAnthropic

from .serve_process import BODY, Served, free_port, run_serve
from .serve_refusal import StartedInsteadOfRefusing, refuse_serve
from .serve_support import POLICY_TEXT

KEY = "sk-ant-api03-startup-0123456789"


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "serve.route"
    path.write_text(POLICY_TEXT)
    return path


def _refused(r: object, status: int, *words: str) -> str:
    assert r.returncode == status, (r.returncode, r.stderr)  # type: ignore[attr-defined]
    err: str = r.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in err and " on http://" not in err, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("policyroute serve: "), err
    for w in words:
        assert w in err, err
    return err


def test_an_upstream_that_is_the_server_itself_is_refused(policy_file: Path) -> None:
    port = free_port()
    for upstream in (f"http://127.0.0.1:{port}", f"http://localhost:{port}/"):
        r = refuse_serve(str(policy_file), "--port", str(port), "--upstream", upstream)
        _refused(r, 2, "--upstream", "own address", "https://api.anthropic.com")
    # The shell that exports ANTHROPIC_BASE_URL for Claude Code, then starts serve in it.
    env = {"ANTHROPIC_BASE_URL": "http://127.0.0.1:8787"}
    _refused(run_serve(str(policy_file), env=env), 2, "$ANTHROPIC_BASE_URL", "unset")
    # Listening on every interface: a loopback upstream on the same port is this server too.
    r = refuse_serve(
        str(policy_file),
        *("--host", "0.0.0.0", "--allow-unauthenticated", "--port", str(port)),
        env={"ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}"},
    )
    _refused(r, 2, "own address")


def test_the_in_process_refusals_fail_when_serve_would_start(policy_file: Path) -> None:
    """What makes every in-process refusal here able to fail: a start that should have been
    refused stops at uvicorn with an error."""
    with pytest.raises(StartedInsteadOfRefusing):
        refuse_serve(str(policy_file), "--port", str(free_port()))


def test_failing_inline_tests_and_broken_policies_exit_1(policy_file: Path, tmp_path: Path) -> None:
    policy_file.write_text(POLICY_TEXT + '\ntest "hi is cheap" { prompt = "hi" } -> opus\n')
    err = _refused(refuse_serve(str(policy_file)), 1, "hi is cheap", "expects opus", "haiku")
    assert f"{policy_file}:" in err
    broken = tmp_path / "broken.route"
    broken.write_text("tier haiku = \n")
    r = refuse_serve(str(broken))
    assert r.returncode == 1 and "error[" in r.stderr and "Traceback" not in r.stderr


def test_records_port_workers_and_timeouts_exit_2(policy_file: Path, tmp_path: Path) -> None:
    _refused(refuse_serve(str(policy_file), "--records", str(tmp_path)), 2, "is a folder")
    missing = tmp_path / "no" / "records.jsonl"
    _refused(refuse_serve(str(policy_file), "--records", str(missing)), 2, "does not exist")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        _refused(refuse_serve(str(policy_file), "--records", str(locked / "r.jsonl")), 2, "cannot")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        _refused(refuse_serve(str(policy_file), "--port", port), 2, "already in use")
    _refused(refuse_serve(str(policy_file), "--port", "0"), 2, "--port")
    _refused(refuse_serve(str(policy_file), "--workers", "0"), 2, "--workers")
    _refused(refuse_serve(str(policy_file), "--upstream-timeout", "-1"), 2, "--upstream-timeout")
    _refused(refuse_serve(str(policy_file), "--body-timeout", "0"), 2, "--body-timeout")
    _refused(refuse_serve(str(policy_file), "--shutdown-timeout", "-5"), 2, "--shutdown-timeout")


def test_a_request_that_comes_back_through_a_chain_is_answered_508(
    policy_file: Path, fake: FakeAnthropic
) -> None:
    """A -> B -> A: neither upstream is its own server, so only the hop header sees it."""
    port_a, port_b = free_port(), free_port()
    a_args = (str(policy_file), "--upstream", f"http://127.0.0.1:{port_b}")
    b_args = (str(policy_file), "--upstream", f"http://127.0.0.1:{port_a}")
    with Served(*a_args, port=port_a) as a, Served(*b_args, port=port_b):
        for model in ("auto", "claude-haiku-4-5"):
            r = httpx2.post(
                a.url + "/v1/messages", json={**BODY, "model": model}, headers={"x-api-key": KEY}
            )
            assert r.status_code == 508, r.text
            error = r.json()
            assert error["type"] == "error" and error["error"]["type"] == "api_error"
            assert "forwarding loop" in error["error"]["message"]
        r = httpx2.get(a.url + "/v1/models", headers={"x-api-key": KEY})
        assert r.status_code == 508
    assert not fake.requests  # nothing ever reached the API


def test_forwarded_requests_carry_the_hop_header(policy_file: Path, fake: FakeAnthropic) -> None:
    with Served(str(policy_file), "--upstream", fake.base_url) as a:
        r = httpx2.post(a.url + "/v1/messages", json=BODY, headers={"x-api-key": KEY})
        assert r.status_code == 200
        incoming = "abc123"
        r = httpx2.post(
            a.url + "/v1/messages",
            json={**BODY, "model": "claude-haiku-4-5"},
            headers={"x-api-key": KEY, "x-policyroute-via": incoming},
        )
        assert r.status_code == 200
    first, second = (s.headers["x-policyroute-via"] for s in fake.requests)
    assert len(first) == 16 and second == f"{incoming}, {first}"
