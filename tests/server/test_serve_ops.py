"""Operating `policyroute serve`: probes, reload logs, metrics across workers, protected
operator endpoints and the concurrency limit, against the real process."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx2
import pytest
from fake_anthropic import FakeAnthropic, Reply
from processes import START_TIMEOUT

from .serve_process import BODY, Served, metric
from .serve_support import HAIKU, POLICY_TEXT

KEY = "sk-ant-api03-ops-0123456789"
PROBES = ("/livez", "/readyz", "/healthz", "/metrics")


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "serve.route"
    path.write_text(POLICY_TEXT)
    return path


def _wait(check: object, what: str, limit: float = 15) -> None:
    deadline = time.monotonic() + limit
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_probes_reload_log_and_the_error_cleared_by_the_next_good_load(
    policy_file: Path, fake: FakeAnthropic
) -> None:
    args = (str(policy_file), "--upstream", fake.base_url, "--poll", "--log-format", "json")
    with Served(*args) as s:
        assert httpx2.get(s.url + "/livez").json() == {"status": "alive"}
        ready = httpx2.get(s.url + "/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ready", "reasons": []}
        first = httpx2.get(s.url + "/healthz").json()
        assert first["ready"] and first["last_reload_error"] is None
        policy_file.write_text(POLICY_TEXT + "\nrule broken: prompt contains -> nowhere\n")
        _wait(
            lambda: httpx2.get(s.url + "/healthz").json()["last_reload_error"],
            "the broken edit was never noticed",
        )
        broken = httpx2.get(s.url + "/healthz").json()
        assert broken["revision"] == first["revision"] and broken["last_reload_error_at"]
        # Still ready: the last good policy serves.
        assert httpx2.get(s.url + "/readyz").status_code == 200
        policy_file.write_text(POLICY_TEXT.replace('"serve-test"', '"serve-test-2"'))
        _wait(
            lambda: httpx2.get(s.url + "/healthz").json()["revision"] != first["revision"],
            "the fixed edit was never loaded",
        )
        fixed = httpx2.get(s.url + "/healthz").json()
        assert fixed["policy"] == "serve-test-2"
        assert fixed["last_reload_error"] is None and fixed["last_reload_error_at"] is None
    lines = [json.loads(x) for x in s.stderr.splitlines() if x.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= set(x) for x in lines)
    reloads = [x for x in lines if x.get("event") == "reload"]
    assert [(x["old_revision"], x["new_revision"]) for x in reloads] == [
        (first["revision"], fixed["revision"])
    ]
    assert "cleared" in reloads[0]["message"]
    rejected = [x for x in lines if x.get("event") == "reload_rejected"]
    assert len(rejected) == 1 and rejected[0]["old_revision"] == first["revision"]


def test_operator_endpoints_want_the_client_token_in_held_key_mode(
    policy_file: Path, fake: FakeAnthropic
) -> None:
    env = {"PR_HELD": KEY, "PR_TOKENS": "tok-a tok-b"}
    args = (str(policy_file), "--upstream", fake.base_url)
    held = ("--api-key-env", "PR_HELD", "--client-tokens-env", "PR_TOKENS")
    token = {"x-policyroute-token": "tok-b"}
    with Served(*args, *held, env=env, probe_headers=token) as s:
        for path in PROBES:
            r = httpx2.get(s.url + path)
            assert r.status_code == 401, path
            assert r.json()["error"]["type"] == "authentication_error"
            assert httpx2.get(s.url + path, headers={"x-api-key": "wrong"}).status_code == 401
            assert httpx2.get(s.url + path, headers=token).status_code == 200, path
            bearer = {"authorization": "Bearer tok-a"}
            assert httpx2.get(s.url + path, headers=bearer).status_code == 200, path
    with Served(*args, *held, "--public-metrics", env=env) as s:
        for path in PROBES:
            assert httpx2.get(s.url + path).status_code == 200, path
        assert httpx2.post(s.url + "/v1/messages", json=BODY).status_code == 401


def test_metrics_add_up_across_two_workers(tmp_path: Path, fake: FakeAnthropic) -> None:
    # Sticky state is per process, so a multi-worker policy is not sticky.
    policy = tmp_path / "workers.route"
    policy.write_text(POLICY_TEXT.replace("sticky conversations 10 minutes\n", ""))
    n = 24
    with Served(str(policy), "--upstream", fake.base_url, "--workers", "2") as s:
        # Served returns once one worker answers; the other may still be importing (seconds
        # on a loaded machine), and until it accepts, the first takes every connection.
        pids: set[str] = set()
        deadline = time.monotonic() + START_TIMEOUT
        while len(pids) < 2 and time.monotonic() < deadline:
            with httpx2.Client() as client:
                pids.add(str(client.get(s.url + "/healthz").json()["pid"]))
            time.sleep(0.05)  # leave the starting worker the CPU
        assert len(pids) == 2, "the second worker never answered"
        for _ in range(n):
            # A new connection each: the kernel spreads them over both workers' accepts.
            with httpx2.Client() as client:
                r = client.post(s.url + "/v1/messages", json=BODY, headers={"x-api-key": KEY})
                assert r.status_code == 200
        line = 'policyroute_requests_total{outcome="ok",rule="quick",tier="haiku"}'
        scrapes = []
        for _ in range(6):
            with httpx2.Client() as client:
                scrapes.append(metric(client.get(s.url + "/metrics").text, line))
    assert scrapes == [float(n)] * 6


def test_at_the_concurrency_limit_readyz_says_no_and_requests_get_529(
    policy_file: Path, fake: FakeAnthropic
) -> None:
    fake.script(HAIKU, [Reply(text="slow", delay=2.0)])
    args = (str(policy_file), "--upstream", fake.base_url, "--max-concurrency", "1")
    with Served(*args) as s:
        done: dict[str, int] = {}

        def slow() -> None:
            r = httpx2.post(
                s.url + "/v1/messages", json=BODY, headers={"x-api-key": KEY}, timeout=20
            )
            done["status"] = r.status_code

        t = threading.Thread(target=slow)
        t.start()
        _wait(lambda: fake.requests, "the slow request never reached the upstream")
        ready = httpx2.get(s.url + "/readyz")
        assert ready.status_code == 503 and "concurrency limit" in ready.json()["reasons"][0]
        r = httpx2.post(s.url + "/v1/messages", json=BODY, headers={"x-api-key": KEY})
        assert r.status_code == 529 and r.json()["error"]["type"] == "overloaded_error"
        t.join(20)
        assert done == {"status": 200}
        assert httpx2.get(s.url + "/readyz").status_code == 200
