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
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from fake_anthropic import FakeAnthropic
from processes import START_TIMEOUT, free_port, kill_group

import policyroute

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "serve.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC, re.S)


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
        start_new_session=True,  # its own process group, for kill_group
    )
    url = f"http://127.0.0.1:{port}"
    # Generous: `--workers N` spawns N interpreters, slow on a loaded machine.
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            try:
                httpx2.get(url + "/healthz", timeout=1)
                break
            except httpx2.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    if proc.poll() is None:
                        kill_group(proc)
                    _, err = proc.communicate(timeout=15)
                    raise RuntimeError(f"{command!r} did not serve: {err}") from None
                time.sleep(0.05)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                kill_group(proc)  # then fail: serve must stop on SIGTERM
                raise


def _commands(block: str) -> list[str]:
    """Shell commands of a block, continuation lines joined."""
    return [c.strip() for c in block.replace("\\\n", " ").splitlines() if c.strip()]


@pytest.fixture
def quickstart(fake: FakeAnthropic) -> Iterator[tuple[str, int, dict[str, str]]]:
    (install, serve) = _commands(blocks("sh")[0])
    assert install == "pip install 'policyroute[serve]'"  # what CI's `.[test]` install pulls
    port = free_port()
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
    port = free_port()
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


def _nginx_t(conf: str, tmp_path: Path) -> None:
    nginx = shutil.which("nginx")
    if nginx is None:
        pytest.skip("nginx is not installed: the configuration's syntax is not checked")
    path = tmp_path / "nginx.conf"
    path.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\naccess_log off;\n{conf}}}\n"
    )
    r = subprocess.run([nginx, "-t", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_state_example(fake: FakeAnthropic) -> None:
    """The "across replicas" command, with its Redis replaced by a real one on loopback."""
    from redis_server import RedisServer

    (serve,) = _commands(next(b for b in blocks("sh") if "--state" in b))
    with RedisServer() as redis:
        command = serve.replace("redis://10.0.0.5:6379/0", redis.url)
        port = free_port()
        with serving(command, port, _env(fake)) as url:
            body = {"model": "auto", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
            r = httpx2.post(url + "/v1/messages", json=body, headers={"x-api-key": "k"})
            assert r.status_code == 200
            assert "policyroute_state_up" in httpx2.get(url + "/metrics").text


def test_nginx_example(tmp_path: Path) -> None:
    conf = blocks("nginx")[0]
    assert "$http_x_policyroute_conversation" in conf and "consistent" in conf
    _nginx_t(conf, tmp_path)


def test_nginx_in_front_example(tmp_path: Path) -> None:
    """The production server block, with a self-signed certificate in place of the paths."""
    conf = blocks("nginx")[1]
    assert "proxy_buffering off" in conf and "client_max_body_size 32m" in conf
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=claude-proxy.internal", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    conf = conf.replace("/etc/ssl/certs/claude-proxy.pem", str(cert))
    conf = conf.replace("/etc/ssl/private/claude-proxy.key", str(key))
    _nginx_t(conf, tmp_path)


# -- the production section ----------------------------------------------------------------


def _production(index: int) -> list[str]:
    """The commands of the production section's `sh` blocks, counted from its heading."""
    section = DOC[DOC.index("\n## Production\n") :]
    return _commands(re.findall(r"```sh\n(.*?)```", section, re.S)[index])


def _to_fake(command: str, fake: FakeAnthropic) -> str:
    """The command against the fake API; leading `VAR=value` assignments go through `env`
    (`serving` execs the command, so that SIGTERM reaches serve itself)."""
    command = command.replace("https://api.anthropic.com", fake.base_url)
    first = command.split()[0]
    return f"env {command}" if "=" in first else command


def _probe(env: dict[str, str], assignments: str) -> list[str]:
    probe = (
        "import os, anthropic\n"
        "c = anthropic.Anthropic()\n"
        "m = [{'role': 'user', 'content': 'Find the deadlock in the scheduler'}]\n"
        "print(c.messages.create(model=os.environ['ANTHROPIC_MODEL'], max_tokens=64, messages=m).model)\n"
    )
    r = subprocess.run(
        ["bash", "-c", f'{assignments} {sys.executable} -c "$PROBE"'],
        env={**env, "PROBE": probe},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_claude_code_without_a_loop(fake: FakeAnthropic) -> None:
    serve, client = _production(0)
    assert "--upstream https://api.anthropic.com" in serve and client.endswith(" claude")
    port = free_port()
    env = _env(fake)
    # The shell that also exported ANTHROPIC_BASE_URL for Claude Code: the explicit
    # upstream wins, so this serve still forwards to the API and not to itself.
    env["ANTHROPIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    with serving(_to_fake(serve, fake), port, env):
        assignments = _local(client.removesuffix(" claude"), port)
        assert _probe(env, assignments) == ["claude-opus-4-7"]
    # Without --upstream, the same shell is refused before it listens.
    plain = serve.split(" --upstream")[0]
    r = subprocess.run(
        ["bash", "-c", f"exec {plain} --port {port}"], env=env, capture_output=True, text=True
    )
    assert r.returncode == 2 and "own address" in r.stderr


def test_held_key_health_and_metrics_example(fake: FakeAnthropic) -> None:
    lines = _production(1)
    exports = [x for x in lines if x.startswith("export ")]
    (serve,) = [x for x in lines if x.startswith("policyroute serve")]
    curls = [x for x in lines if x.startswith("curl ")]
    assert "--workers 2" in serve and len(curls) == 2
    env = _env(fake)
    port = free_port()
    setup = "; ".join(e.replace("sk-ant-...", "sk-ant-held-by-proxy") for e in exports)
    with serving(f"bash -c '{setup}; exec {serve} --port {port}'", port, env) as url:
        assert httpx2.get(url + "/readyz").status_code == 401
        ready, metrics = (
            subprocess.run(
                ["bash", "-c", _local(c, port)], env=env, capture_output=True, text=True, timeout=30
            ).stdout
            for c in curls
        )
        assert json.loads(ready) == {"status": "ready", "reasons": []}
        assert "policyroute_in_flight_requests" in metrics


def test_config_example(fake: FakeAnthropic, tmp_path: Path) -> None:
    from policyroute.cli.serve_settings import resolve

    (toml,) = blocks("toml")
    example = (ROOT / "examples" / "serve" / "serve.toml").read_text()
    for line in toml.strip().splitlines():
        assert line.split("=")[0].strip() in example
    # The block as a file in the example's place (its policy path is relative to it).
    (tmp_path / "examples" / "serve").mkdir(parents=True)
    (tmp_path / "policies").symlink_to(ROOT / "policies")
    (tmp_path / "examples" / "serve" / "serve.toml").write_text(toml)
    settings, where = resolve({}, str(tmp_path / "examples" / "serve" / "serve.toml"), {})
    assert Path(settings.policy or "").is_file() and settings.workers == 2
    assert where["max_concurrency"].endswith("serve.toml:4: max_concurrency")
    (command,) = _production(2)
    port = free_port()
    with serving(_to_fake(command, fake), port, _env(fake)) as url:
        body = {"model": "auto", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
        r = httpx2.post(url + "/v1/messages", json=body, headers={"x-api-key": "sk-ant-x"})
        assert r.status_code == 200
    assert fake.requests  # the variable's upstream won over the file's


def test_traces_example(fake: FakeAnthropic) -> None:
    from .otlp_receiver import Receiver

    (command,) = _production(3)
    with Receiver() as receiver:
        command = command.replace("http://127.0.0.1:4318", receiver.url)
        port = free_port()
        with serving(_to_fake(command, fake), port, _env(fake)) as url:
            body = {
                "model": "auto",
                "max_tokens": 8,
                "messages": [{"role": "user", "content": "hi"}],
            }
            r = httpx2.post(url + "/v1/messages", json=body, headers={"x-api-key": "sk-ant-x"})
            assert r.status_code == 200
        spans = receiver.spans()
    assert {s["service"] for s in spans} == {"policyroute-proxy"}
    assert {s["name"] for s in spans} == {"chat auto", "chat claude-haiku-4-5"}
