"""Fixtures of the state tests: a real redis-server, shared by the session and emptied
before each test, and the fake Anthropic API."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fake_anthropic import FakeAnthropic
from redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_session() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_server(redis_session: RedisServer) -> RedisServer:
    if redis_session.proc is None:  # a test stopped it
        redis_session.start()
    redis_session.flush()
    return redis_session


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeAnthropic) -> FakeAnthropic:
    fake_server.reset()
    return fake_server
