"""The two states behave alike: spend counters by window, sticky floors, the shadow cap;
and a Redis that is down or slow never fails a call, and is used again once it is back."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

import pytest
from redis_server import RedisServer, free_port

from policyroute.runtime.redis_state import RedisState
from policyroute.runtime.state import LocalState, SpendRead, State, open_state, window_of

AT = datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC).timestamp()
ORDER = ["haiku", "sonnet", "opus"]


def reads(ident: str = "u1", scope: str = "user") -> list[SpendRead]:
    return [SpendRead(f"spend.{scope}.{w}", scope, ident, w) for w in ("hour", "day", "month")]


@pytest.fixture(params=["local", "redis"])
def state(request: pytest.FixtureRequest) -> State:
    if request.param == "local":
        return LocalState()
    server: RedisServer = request.getfixturevalue("redis_server")
    s = RedisState(server.url)
    request.addfinalizer(s.close)
    return s


def test_windows_are_utc_calendar_windows() -> None:
    assert window_of("hour", AT) == ("2026123123", datetime(2027, 1, 1, tzinfo=UTC).timestamp())
    assert window_of("day", AT) == ("20261231", datetime(2027, 1, 1, tzinfo=UTC).timestamp())
    assert window_of("month", AT) == ("202612", datetime(2027, 1, 1, tzinfo=UTC).timestamp())
    feb = datetime(2028, 2, 10, 5, tzinfo=UTC).timestamp()
    assert window_of("month", feb) == ("202802", datetime(2028, 3, 1, tzinfo=UTC).timestamp())
    with pytest.raises(ValueError, match="unknown spend window"):
        window_of("week", AT)


def test_spend_adds_up_per_owner_and_window(state: State) -> None:
    assert state.read_spend(reads(), AT) == {
        "spend.user.hour": 0.0,
        "spend.user.day": 0.0,
        "spend.user.month": 0.0,
    }
    state.add_spend({"user": "u1", "policy": "p"}, 0.25, AT)
    state.add_spend({"user": "u1"}, 0.5, AT)
    state.add_spend({"user": "u2"}, 1.0, AT)
    # the next hour (and day, and month: AT is the year's last minute) starts at zero
    state.add_spend({"user": "u1"}, 2.0, AT + 60)
    assert state.flush()
    assert state.read_spend(reads(), AT) == {
        "spend.user.hour": 0.75,
        "spend.user.day": 0.75,
        "spend.user.month": 0.75,
    }
    assert state.read_spend(reads(), AT + 60) == {
        "spend.user.hour": 2.0,
        "spend.user.day": 2.0,
        "spend.user.month": 2.0,
    }
    got = state.read_spend(reads("p", "policy"), AT)
    assert got is not None and got["spend.policy.day"] == 0.25


def test_sticky_floor_keeps_the_higher_fresher_tier(state: State) -> None:
    assert state.floor("c1", 60) is None
    state.remember("c1", "sonnet", 60, ORDER)
    state.flush()
    assert state.floor("c1", 60) == "sonnet"
    state.remember("c1", "haiku", 60, ORDER)  # a turn that finished late, lower: kept higher
    state.flush()
    assert state.floor("c1", 60) == "sonnet"
    state.remember("c1", "opus", 60, ORDER)
    state.flush()
    assert state.floor("c1", 60) == "opus"


def test_sticky_floor_ends_with_its_window(state: State) -> None:
    state.remember("c2", "opus", 0.2, ORDER)
    state.flush()
    assert state.floor("c2", 0.2) == "opus"
    time.sleep(0.35)
    assert state.floor("c2", 0.2) is None


def test_the_shadow_cap_holds_and_settles_to_the_real_cost(state: State) -> None:
    assert state.reserve_shadow("p", 0.6, 1.0, AT)
    assert not state.reserve_shadow("p", 0.6, 1.0, AT)  # 1.2 would pass the cap
    state.settle_shadow("p", 0.6, 0.1, AT)
    state.flush()
    assert state.shadow_spent("p", AT) == pytest.approx(0.1)
    assert state.reserve_shadow("p", 0.6, 1.0, AT)
    got = state.read_spend(reads("p", "shadow"), AT)
    assert got is not None and got["spend.shadow.month"] == pytest.approx(0.7)


def test_counters_expire_at_their_windows_end(redis_server: RedisServer) -> None:
    s = RedisState(redis_server.url)
    now = time.time()
    s.add_spend({"user": "u"}, 1.0, now)
    s.flush()
    with redis_server.client() as c:
        keys = sorted(c.keys("policyroute:spend:user:u:*"))
        assert len(keys) == 3
        for key in keys:
            window = key.split(":")[4]
            assert c.expiretime(key) == pytest.approx(window_of(window, now)[1], abs=1)
    s.close()


def test_open_state() -> None:
    assert isinstance(open_state(None), LocalState)
    local = LocalState()
    assert open_state(local) is local
    assert isinstance(open_state("redis://127.0.0.1:1/0"), RedisState)
    with pytest.raises(ValueError, match="unknown state"):
        open_state("memcached://x")
    for bad, why in (
        ("redis://:6379/0", "no host"),
        ("redis://h:port/0", "port must be a number"),
        ("redis://h:6379/x", "database must be a number"),
    ):
        with pytest.raises(ValueError, match=why):
            open_state(bad)


def test_a_redis_that_is_down_reads_missing_at_once_and_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = RedisServer(free_port())
    s = RedisState(server.url, timeout=0.05)
    s.health.backoff = 0.2
    caplog.set_level(logging.WARNING, "policyroute.state")
    # down: nothing raises, reads are missing, the cap refuses, writes are dropped and counted
    start = time.perf_counter()
    assert s.read_spend(reads()) is None
    assert s.floor("c", 60) is None
    assert not s.reserve_shadow("p", 0.1, 1.0)
    s.add_spend({"user": "u1"}, 0.5)
    s.flush()
    assert time.perf_counter() - start < 1.0
    assert s.health.failures >= 1 and not s.health.up
    assert s.health.dropped_usd == pytest.approx(0.5)
    for _ in range(50):  # many failures, one message a minute
        s.read_spend(reads())
    assert sum("failed" in r.getMessage() for r in caplog.records) == 1
    with server:
        deadline = time.monotonic() + 5
        while s.read_spend(reads()) is None:
            assert time.monotonic() < deadline, "did not recover"
            time.sleep(0.05)
        assert s.health.up
        s.add_spend({"user": "u1"}, 0.5)
        assert s.flush()
        assert s.read_spend(reads()) == {
            "spend.user.hour": 0.5,
            "spend.user.day": 0.5,
            "spend.user.month": 0.5,
        }
        assert any("answering again" in r.getMessage() for r in caplog.records)
        # stopped mid-run and started again: the counters are gone (no persistence), the
        # state goes on
        server.stop()
        assert s.read_spend(reads()) is None
        server.start()
        deadline = time.monotonic() + 5
        while s.read_spend(reads()) is None:
            assert time.monotonic() < deadline, "did not recover after a restart"
            time.sleep(0.05)
    s.close()


def test_a_slow_redis_costs_at_most_the_timeout(redis_server: RedisServer) -> None:
    s = RedisState(redis_server.url, timeout=0.05)
    s.read_spend(reads())  # connected
    with redis_server.client() as c:
        t = threading.Thread(target=c.execute_command, args=("DEBUG", "SLEEP", "0.5"))
        t.start()
        time.sleep(0.05)
        start = time.perf_counter()
        assert s.read_spend(reads()) is None
        took = time.perf_counter() - start
        t.join()
    assert took < 0.25
    assert s.health.failures == 1
    s.close()
