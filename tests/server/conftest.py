"""Fixtures of the serve tests: the fake Anthropic API and the proxy in front of it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fake_anthropic import FakeAnthropic

import policyroute
from policyroute.server.app import ServeConfig

from .serve_support import POLICY_TEXT, ServerThread


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeAnthropic) -> FakeAnthropic:
    fake_server.reset()
    fake_server.streams_aborted = 0
    return fake_server


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
