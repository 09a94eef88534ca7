"""Every example in docs/serve.md, run: the commands against a real `policyroute serve` in
front of the fake Anthropic API (the port and the upstream swapped in), the Python as
written, the policy statement through the checker."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from fake_anthropic import FakeAnthropic

import policyroute

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "serve.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC, re.S)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(fake: FakeAnthropic) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANTHROPIC_BASE_URL": fake.base_url,
        "ANTHROPIC_API_KEY": "sk-ant-docs-test-key",
    }


@contextlib.contextmanager
def serving(command: str, port: int, env: dict[str, str]) -> Iterator[str]:
    proc = subprocess.Popen(
        ["bash", "-c", f"exec {command} --port {port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    try:
        while True:
            try:
                httpx2.get(url + "/healthz", timeout=1)
                break
            except httpx2.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{command!r} did not serve: {proc.stderr.read()}") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


def _commands(block: str) -> list[str]:
    """Shell commands of a block, continuation lines joined."""
    return [c.strip() for c in block.replace("\\\n", " ").splitlines() if c.strip()]


@pytest.fixture
def quickstart(fake: FakeAnthropic) -> Iterator[tuple[str, int, dict[str, str]]]:
    (install, serve) = _commands(blocks("sh")[0])
    assert install == "pip install 'policyroute[serve]'"  # what CI's `.[test]` install pulls
    port = _free_port()
    env = _env(fake)
    with serving(serve, port, env) as url:
        yield url, port, env


def _local(text: str, port: int) -> str:
    return text.replace("127.0.0.1:8787", f"127.0.0.1:{port}")


def test_python_example(
    quickstart: tuple[str, int, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, port, env = quickstart
    (code,) = blocks("python")
    monkeypatch.setenv("ANTHROPIC_API_KEY", env["ANTHROPIC_API_KEY"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_local(code, port), "docs/serve.md", "exec"), {})
    assert out.getvalue().split() == ["opus", "hard_words", "claude-opus-4-7"]


def test_curl_example(quickstart: tuple[str, int, dict[str, str]], fake: FakeAnthropic) -> None:
    _, port, env = quickstart
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    r = subprocess.run(
        ["bash", "-c", _local(blocks("sh")[1], port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    assert '"type": "message"' in r.stdout
    assert fake.requests[-1].model == "claude-haiku-4-5"  # free plan -> haiku


def test_claude_code_setup(
    quickstart: tuple[str, int, dict[str, str]], fake: FakeAnthropic, tmp_path: Path
) -> None:
    """The exports, then the real Claude Code CLI (tests/claude_code.py) run with them:
    its main request is routed by the policy, and the answer names the model."""
    import claude_code
    from fake_agent import agent_reply

    _, port, _ = quickstart
    lines = _commands(_local(blocks("sh")[2], port))
    assert lines[-1] == "claude"
    fake.responders["*"] = agent_reply
    version = claude_code.VERSIONS[0]
    env = claude_code.environment("unset", tmp_path / "home")
    for name in ("ANTHROPIC_BASE_URL", "ANTHROPIC_MODEL", "ANTHROPIC_SMALL_FAST_MODEL"):
        env.pop(name, None)  # the doc's exports set them
    env["PATH"] = f"{claude_code.cli(version).parent}{os.pathsep}{env['PATH']}"
    ask = "claude -p 'Find the deadlock in the scheduler' --output-format json"
    script = "\n".join([*lines[:-1], ask])
    r = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads(r.stdout)
    assert result["is_error"] is False and "claude-opus-4-7" in fake.models_called()


def test_held_key_example(fake: FakeAnthropic) -> None:
    lines = _commands(next(b for b in blocks("sh") if "--api-key-env" in b))
    exports, serve = lines[:-1], lines[-1]
    assert "--host 0.0.0.0" in serve
    env = _env(fake)
    port = _free_port()
    setup = "; ".join(e.replace("sk-ant-...", "sk-ant-held-by-proxy") for e in exports)
    with serving(f"bash -c '{setup}; exec {serve} --port {port}'", port, env) as url:
        body = {"model": "auto", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
        assert httpx2.post(url + "/v1/messages", json=body).status_code == 401
        r = httpx2.post(url + "/v1/messages", json=body, headers={"x-api-key": "team-b-token"})
        assert r.status_code == 200
    assert fake.requests[-1].headers["x-api-key"] == "sk-ant-held-by-proxy"


def test_sticky_statement_checks() -> None:
    (statement,) = blocks("route")
    policy = policyroute.loads(
        'tier haiku = "claude-haiku-4-5" { input 1 output 5 }\n' + statement + "default -> haiku\n"
    )
    assert policy.sticky_window == 600


def test_nginx_example(tmp_path: Path) -> None:
    (conf,) = blocks("nginx")
    assert "$http_x_policyroute_conversation" in conf and "consistent" in conf
    nginx = shutil.which("nginx")
    if nginx is None:
        pytest.skip("nginx is not installed: the configuration's syntax is not checked")
    path = tmp_path / "nginx.conf"
    path.write_text("events {}\nhttp {\n" + conf + "}\n")
    r = subprocess.run([nginx, "-t", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_state_example(fake: FakeAnthropic) -> None:
    """The "across replicas" command, with its Redis replaced by a real one on loopback."""
    from redis_server import RedisServer

    (serve,) = _commands(next(b for b in blocks("sh") if "--state" in b))
    with RedisServer() as redis:
        command = serve.replace("redis://10.0.0.5:6379/0", redis.url)
        port = _free_port()
        with serving(command, port, _env(fake)) as url:
            body = {"model": "auto", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
            r = httpx2.post(url + "/v1/messages", json=body, headers={"x-api-key": "k"})
            assert r.status_code == 200
            assert "policyroute_state_up" in httpx2.get(url + "/metrics").text
