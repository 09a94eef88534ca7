"""The upstream honours the environment's proxy variables, read once when it is made."""

from __future__ import annotations

import pytest

from policyroute.server.upstream import Upstream, env_proxy


@pytest.mark.parametrize(
    ("env", "url", "expected"),
    [
        ({}, "https://api.anthropic.com", None),
        ({"HTTPS_PROXY": "http://proxy:3128"}, "https://api.anthropic.com", "http://proxy:3128"),
        ({"https_proxy": "http://proxy:3128"}, "https://api.anthropic.com", "http://proxy:3128"),
        ({"HTTP_PROXY": "http://proxy:3128"}, "https://api.anthropic.com", None),
        ({"ALL_PROXY": "http://proxy:1080"}, "https://api.anthropic.com", "http://proxy:1080"),
        (
            {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "anthropic.com"},
            "https://api.anthropic.com",
            None,
        ),
        ({"HTTP_PROXY": "http://proxy:3128", "NO_PROXY": "*"}, "http://10.0.0.5:8080", None),
    ],
)
def test_env_proxy(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], url: str, expected: str | None
) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert env_proxy(url) == expected
    assert Upstream(url).proxy == expected
