"""Two `policyroute serve` processes sharing one real redis-server, as a fleet runs: a
conversation keeps its tier whichever replica serves the next turn, spend counted on one
routes on the other, and Redis stopped mid-run and started again never fails a request."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fake_anthropic import FakeAnthropic
from processes import START_TIMEOUT, stop_group
from redis_server import RedisServer, free_port

EXE = str(Path(sys.executable).with_name("policyroute"))
HAIKU, SONNET, OPUS = "claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-7"
# A default fake answer (10 input, 5 output tokens) costs $0.000105 on sonnet.
POLICY = f"""
policy "fleet"
tier haiku  = "{HAIKU}"  {{ input 1.00  output 5.00 }}
tier sonnet = "{SONNET}" {{ input 3.00  output 15.00 }}
tier opus   = "{OPUS}"   {{ input 5.00  output 25.00 }}
keywords hard = ["deadlock"]
rule hard:   prompt contains any hard        -> opus
rule spent:  spend.user.day > 0.0001         -> haiku
default                                      -> sonnet
sticky conversations 10 minutes
"""
KEY = {"x-api-key": "sk-ant-test-fleet", "anthropic-version": "2023-06-01"}


class Serve:
    def __init__(self, policy: Path, upstream: str, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [EXE, "serve", str(policy), "--port", str(self.port), "--upstream", upstream, *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, for stop_group
        )
        deadline = time.monotonic() + START_TIMEOUT  # --workers: each process imports on its own
        while True:
            try:
                if httpx2.get(self.url + "/healthz").json()["status"] == "ok":
                    return
            except (httpx2.TransportError, ValueError):
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise RuntimeError(f"serve did not start: {err}")
            time.sleep(0.05)

    def post(self, messages: list[dict[str, Any]], user_id: str | None = None) -> httpx2.Response:
        body: dict[str, Any] = {"model": "auto", "max_tokens": 50, "messages": messages}
        if user_id is not None:
            body["metadata"] = {"user_id": user_id}
        r = httpx2.post(self.url + "/v1/messages", json=body, headers=KEY, timeout=30)
        assert r.status_code == 200, r.text
        return r

    def metric(self, name: str) -> float:
        text = httpx2.get(self.url + "/metrics").text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )

    def stop(self) -> None:
        stop_group(self.proc, 15)


@pytest.fixture(scope="module")
def running_fleet(
    tmp_path_factory: pytest.TempPathFactory,
    fake_server: FakeAnthropic,
    redis_session: RedisServer,
) -> Iterator[tuple[Serve, Serve]]:
    """Two replicas for the whole module: starting a serve process is most of what these
    tests cost. What they share lives in Redis, which `redis_server` empties before each."""
    policy = tmp_path_factory.mktemp("fleet") / "fleet.route"
    policy.write_text(POLICY)
    a = Serve(policy, fake_server.base_url, "--state", redis_session.url)
    try:
        b = Serve(policy, fake_server.base_url, "--state", redis_session.url)
    except BaseException:
        a.stop()
        raise
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture
def fleet(
    running_fleet: tuple[Serve, Serve], fake: FakeAnthropic, redis_server: RedisServer
) -> tuple[Serve, Serve]:
    for replica in running_fleet:
        assert replica.proc.poll() is None, "a replica of the fleet exited"
    return running_fleet


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def tier(r: httpx2.Response) -> str:
    return r.headers["x-policyroute-tier"]


def wait_for_counter(server: RedisServer, pattern: str) -> None:
    deadline = time.monotonic() + 10
    with server.client() as c:
        while not c.keys(pattern):
            assert time.monotonic() < deadline, f"no counter {pattern} written"
            time.sleep(0.02)


def wait_for_floor(server: RedisServer) -> None:
    wait_for_counter(server, "policyroute:sticky:*")


def test_a_conversation_keeps_its_tier_across_replicas(
    fleet: tuple[Serve, Serve], redis_server: RedisServer
) -> None:
    a, b = fleet
    first = [user("Find the deadlock between these two pools")]
    assert tier(a.post(first)) == "opus"
    wait_for_floor(redis_server)
    # the next turn is easy, and lands on the other replica: it stays on opus
    turn2 = [*first, {"role": "assistant", "content": "Look at the lock order."}, user("thanks")]
    r = b.post(turn2)
    assert tier(r) == "opus"
    assert r.headers["x-policyroute-sticky-from"] == "sonnet"
    # a new conversation on B is not raised
    assert tier(b.post([user("hello there")])) == "sonnet"


def test_spend_counted_on_one_replica_routes_on_the_other(
    fleet: tuple[Serve, Serve], redis_server: RedisServer
) -> None:
    a, b = fleet
    assert tier(a.post([user("question one")], user_id="alice")) == "sonnet"
    wait_for_counter(redis_server, "policyroute:spend:user:alice:day:*")
    r = b.post([user("question two")], user_id="alice")
    assert (tier(r), r.headers["x-policyroute-rule"]) == ("haiku", "spent")
    assert tier(b.post([user("question three")], user_id="bob")) == "sonnet"


def test_redis_stopped_mid_run_and_started_again(
    fleet: tuple[Serve, Serve], redis_server: RedisServer
) -> None:
    a, b = fleet
    assert tier(a.post([user("before")], user_id="carol")) == "sonnet"
    wait_for_counter(redis_server, "policyroute:spend:user:carol:day:*")
    redis_server.stop()
    # every request is still decided and answered; spend reads as missing
    for server in (a, b, a, b):
        r = server.post([user("during")], user_id="carol")
        assert r.headers["x-policyroute-rule"] == "default"
    assert a.metric("policyroute_state_failures") >= 1
    assert b.metric("policyroute_state_up") == 0
    redis_server.start()  # same port, empty: no persistence
    deadline = time.monotonic() + 15
    while True:  # recovers by itself: a's spend is counted again, and b reads it
        a.post([user("after")], user_id="dave")
        with redis_server.client() as c:
            if c.keys("policyroute:spend:user:dave:day:*"):
                break
        assert time.monotonic() < deadline, "the state did not recover"
        time.sleep(0.2)
    # b recovers on its own clock (its last failed read may be more recent than a's), so it
    # is given the same deadline to read what a counted.
    while b.post([user("after")], user_id="dave").headers["x-policyroute-rule"] != "spent":
        assert time.monotonic() < deadline, "b did not read the recovered state"
        time.sleep(0.2)
    assert b.metric("policyroute_state_up") == 1


def test_workers_share_sticky_state_through_redis(
    tmp_path: Path, fake: FakeAnthropic, redis_server: RedisServer
) -> None:
    policy = tmp_path / "fleet.route"
    policy.write_text(POLICY)
    served = Serve(policy, fake.base_url, "--state", redis_server.url, "--workers", "2")
    try:
        first = [user("Find the deadlock here")]
        assert tier(served.post(first)) == "opus"
        wait_for_floor(redis_server)
        turn = [*first, {"role": "assistant", "content": "ok"}, user("thanks")]
        # whichever worker takes each turn, the conversation stays on opus
        assert {tier(served.post(turn)) for _ in range(6)} == {"opus"}
    finally:
        served.stop()
