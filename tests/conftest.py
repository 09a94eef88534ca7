"""Fixtures every test folder shares: the fake Anthropic server and a real redis-server, both
on 127.0.0.1.

One fake server per session (it starts a thread and a socket); `fake` resets it before each
test, so a test sees only its own requests and replies. The real SDK is pointed at it;
nothing reaches the network. Likewise one redis-server per session, started by the first
test that asks for `redis_server` and emptied before each. Folder conftests add their own
clients and policies on top.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from fake_anthropic import FakeAnthropic

if TYPE_CHECKING:
    from redis_server import RedisServer


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeAnthropic) -> FakeAnthropic:
    fake_server.reset()
    return fake_server


@pytest.fixture(scope="session")
def redis_session() -> Iterator[RedisServer]:
    # Imported here: only the tests that use Redis pay for the client library.
    from redis_server import RedisServer

    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_server(redis_session: RedisServer) -> RedisServer:
    if redis_session.proc is None:  # a test stopped it
        redis_session.start()
    redis_session.flush()
    return redis_session
