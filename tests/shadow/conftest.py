"""Fixtures for the shadow and judge tests: the fake Anthropic server and SDK clients on it."""

from __future__ import annotations

import pytest
from fake_anthropic import FakeAnthropic


@pytest.fixture
def fake(fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> FakeAnthropic:
    """The root conftest's server, and the environment the CLI reads it from."""
    # What a user of the CLI sets; the SDK's own defaults (retries, timeouts) stay.
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test")
    return fake
