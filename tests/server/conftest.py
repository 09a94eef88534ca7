"""Fixtures of the serve tests: the fake Anthropic API and the proxy in front of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_anthropic import FakeAnthropic

import policyroute
from policyroute.server.app import ServeConfig

from .serve_support import POLICY_TEXT, ServerThread


@pytest.fixture(scope="session")
def policy() -> policyroute.Policy:
    return policyroute.loads(POLICY_TEXT)


@pytest.fixture
def proxy(
    fake: FakeAnthropic, policy: policyroute.Policy, tmp_path: Path
) -> Iterator[ServerThread]:
    config = ServeConfig(policy=policy, upstream=fake.base_url, records=tmp_path / "records.jsonl")
    with ServerThread(config) as server:
        yield server
