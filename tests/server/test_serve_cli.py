"""`policyroute serve` as a user runs it: flags, refusals, hot reload, SIGTERM.

Refusals run in-process (serve_refusal.py); the SIGTERM test runs the installed command, and
test_serve_startup.py refuses one start through it."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from fake_anthropic import FakeAnthropic, Reply
from processes import free_port

from policyroute.cli.serve import _is_loopback
from policyroute.server.app import ServeConfig

from .serve_refusal import refuse_serve
from .serve_support import HAIKU, POLICY_TEXT, ServerThread

KEY = "sk-ant-api03-cli-test-0123456789"
EXE = str(Path(sys.executable).with_name("policyroute"))


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "serve.route"
    path.write_text(POLICY_TEXT)
    return path


def test_refuses_a_public_bind_without_client_auth(policy_file: Path) -> None:
    r = refuse_serve(str(policy_file), "--host", "0.0.0.0")
    assert r.returncode == 2
    assert "--client-tokens-env" in r.stderr and "Traceback" not in r.stderr


def test_held_key_needs_tokens_and_the_variable(policy_file: Path) -> None:
    r = refuse_serve(
        str(policy_file), "--api-key-env", "PR_TEST_KEY", env={"PR_TEST_KEY": "sk-ant-x"}
    )
    assert r.returncode == 2 and "client tokens" in r.stderr
    r = refuse_serve(str(policy_file), "--api-key-env", "PR_TEST_UNSET_VARIABLE")
    assert r.returncode == 2 and "PR_TEST_UNSET_VARIABLE" in r.stderr


def test_usage_errors_and_broken_policy(policy_file: Path, tmp_path: Path) -> None:
    assert refuse_serve(str(policy_file), "--port", "70000").returncode == 2
    assert refuse_serve(str(policy_file), "--upstream", "ftp://x").returncode == 2
    r = refuse_serve(str(policy_file), "--workers", "2")
    assert r.returncode == 2 and "sticky" in r.stderr  # sticky state is per process
    broken = tmp_path / "broken.route"
    broken.write_text("tier haiku = \n")
    r = refuse_serve(str(broken))
    assert r.returncode == 1 and "error[" in r.stderr and "Traceback" not in r.stderr
    assert refuse_serve(str(tmp_path / "missing.route")).returncode == 2


def test_loopback_detection() -> None:
    assert _is_loopback("127.0.0.1") and _is_loopback("localhost") and _is_loopback("::1")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("10.1.2.3")


@pytest.fixture
def served(policy_file: Path, fake: FakeAnthropic) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    proc = subprocess.Popen(
        [EXE, "serve", str(policy_file), "--port", str(port), "--upstream", fake.base_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90  # a loaded machine starts slowly
    while True:
        try:
            if httpx2.get(url + "/healthz").status_code == 200:
                break
        except httpx2.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(
                "serve did not start: " + (proc.stderr.read() if proc.stderr else "")
            )
        time.sleep(0.05)
    try:
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_sigterm_finishes_in_flight_and_refuses_new(
    served: tuple[subprocess.Popen[str], str], fake: FakeAnthropic
) -> None:
    proc, url = served
    fake.script(HAIKU, [Reply(text="slow answer", delay=1.5)])
    result: dict[str, object] = {}

    def slow() -> None:
        body = {"model": "auto", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
        r = httpx2.post(url + "/v1/messages", json=body, headers={"x-api-key": KEY}, timeout=10)
        result["status"], result["text"] = r.status_code, r.json()["content"][0]["text"]

    t = threading.Thread(target=slow)
    t.start()
    deadline = time.monotonic() + 5
    while not fake.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.requests, "the request never reached the upstream"
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(httpx2.TransportError):
        httpx2.get(url + "/healthz", timeout=2)
    t.join(10)
    assert result == {"status": 200, "text": "slow answer"}
    # uvicorn re-raises the signal once drained, so the exit status says "ended by SIGTERM",
    # as service managers expect.
    assert proc.wait(10) in (0, -signal.SIGTERM)
    assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")


def test_hot_reload_keeps_the_last_good_policy(policy_file: Path, fake: FakeAnthropic) -> None:
    config = ServeConfig(policy=str(policy_file), upstream=fake.base_url, poll=True)
    with ServerThread(config) as proxy:
        first = httpx2.get(proxy.url + "/healthz").json()
        assert first["policy"] == "serve-test" and first["last_reload_error"] is None
        policy_file.write_text(POLICY_TEXT.replace('"serve-test"', '"serve-test-2"'))
        deadline = time.monotonic() + 10
        while httpx2.get(proxy.url + "/healthz").json()["revision"] == first["revision"]:
            assert time.monotonic() < deadline, "the edit was never loaded"
            time.sleep(0.05)
        second = httpx2.get(proxy.url + "/healthz").json()
        assert second["policy"] == "serve-test-2"
        policy_file.write_text(POLICY_TEXT + "\nrule broken: prompt contains -> nowhere\n")
        while httpx2.get(proxy.url + "/healthz").json()["last_reload_error"] is None:
            assert time.monotonic() < deadline + 10, "the broken edit was never noticed"
            time.sleep(0.05)
        health = httpx2.get(proxy.url + "/healthz").json()
        assert health["revision"] == second["revision"]
        body = {"model": "auto", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
        r = httpx2.post(proxy.url + "/v1/messages", json=body, headers={"x-api-key": KEY})
        assert r.status_code == 200 and r.headers["x-policyroute-revision"] == second["revision"]
        metrics = httpx2.get(proxy.url + "/metrics").text
        assert 'policyroute_policy_reloads_total{result="rejected"} 1.0' in metrics
        assert 'policyroute_policy_reloads_total{result="ok"} 1.0' in metrics


def test_a_reload_whose_inline_tests_fail_is_refused(
    policy_file: Path, fake: FakeAnthropic
) -> None:
    # No skip when the option is missing: serve must refuse such an edit, so the test fails.
    config = ServeConfig(policy=str(policy_file), upstream=fake.base_url, poll=True)
    with ServerThread(config) as proxy:
        first = httpx2.get(proxy.url + "/healthz").json()
        failing = POLICY_TEXT + '\ntest "hi is cheap" { prompt = "hi" } -> opus\n'
        policy_file.write_text(failing)
        deadline = time.monotonic() + 10
        while httpx2.get(proxy.url + "/healthz").json()["last_reload_error"] is None:
            assert time.monotonic() < deadline, "the failing edit was never noticed"
            time.sleep(0.05)
        assert httpx2.get(proxy.url + "/healthz").json()["revision"] == first["revision"]
