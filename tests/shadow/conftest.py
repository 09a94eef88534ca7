"""Fixtures for the shadow and judge tests: the fake Anthropic server and SDK clients on it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fake_anthropic import FakeAnthropic


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> FakeAnthropic:
    fake_server.reset()
    # What a user of the CLI sets; the SDK's own defaults (retries, timeouts) stay.
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_server.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test")
    return fake_server
