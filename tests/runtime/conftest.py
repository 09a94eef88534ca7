"""Fixtures for the runtime tests: a fake Anthropic server, SDK clients pointed at it, a policy."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest
from fake_anthropic import FakeAnthropic
from runtime_support import POLICY_TEXT, TIMEOUT

import policyroute


@pytest.fixture(scope="session")
def policy() -> policyroute.Policy:
    return policyroute.loads(POLICY_TEXT)


@pytest.fixture
def client(fake: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    c = anthropic.Anthropic(base_url=fake.base_url, api_key="test", max_retries=0, timeout=TIMEOUT)
    yield c
    c.close()


@pytest.fixture
def async_client(fake: FakeAnthropic) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=fake.base_url, api_key="test", max_retries=0, timeout=TIMEOUT
    )
