"""Fixtures every test folder shares: the fake Anthropic server on 127.0.0.1.

One server per session (it starts a thread and a socket); `fake` resets it before each test,
so a test sees only its own requests and replies. The real SDK is pointed at it; nothing
reaches the network. Folder conftests add their own clients and policies on top.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_anthropic import FakeAnthropic


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeAnthropic) -> FakeAnthropic:
    fake_server.reset()
    return fake_server
