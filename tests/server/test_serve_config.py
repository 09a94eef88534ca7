"""`serve --config FILE`, `POLICYROUTE_*` and flags: one set of keys, precedence flag >
environment > file > default, errors naming the key and where it was set."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import httpx2
import pytest
from fake_anthropic import FakeAnthropic
from hypothesis import given
from hypothesis import strategies as st

from policyroute.cli import make_parser
from policyroute.cli.common import UsageError
from policyroute.cli.serve_settings import KEYS, ServeSettings, env_name, resolve

from .serve_process import BODY, Served, free_port, run_serve
from .serve_refusal import refuse_serve

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "serve" / "serve.toml"


def _serve_parser() -> argparse.ArgumentParser:
    sub = next(a for a in make_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["serve"]  # type: ignore[no-any-return]


def test_every_flag_is_a_key_and_the_example_sets_every_key() -> None:
    dests = {a.dest for a in _serve_parser()._actions} - {"help", "config"}
    assert dests == set(KEYS)
    shown = set(re.findall(r"^#?\s*([a-z_]+)\s*=", EXAMPLE.read_text(), re.M))
    assert shown == set(KEYS)
    settings, _ = resolve({}, str(EXAMPLE), {})
    assert Path(settings.policy or "").is_file()  # relative to the file's folder


@given(
    file=st.none() | st.integers(1024, 65535),
    env=st.none() | st.integers(1024, 65535),
    flag=st.none() | st.integers(1024, 65535),
)
def test_precedence_flag_then_environment_then_file(
    tmp_path_factory: pytest.TempPathFactory, file: int | None, env: int | None, flag: int | None
) -> None:
    config = tmp_path_factory.mktemp("precedence") / "serve.toml"
    config.write_text(f"port = {file}\n" if file is not None else "")
    environ = {env_name("port"): str(env)} if env is not None else {}
    flags = {"port": flag} if flag is not None else {}
    settings, where = resolve(flags, str(config), environ)
    expected = next((v for v in (flag, env, file) if v is not None), 8787)
    assert settings.port == expected
    if flag is not None:
        assert where["port"] == "--port"
    elif env is not None:
        assert where["port"] == "$POLICYROUTE_PORT"


def _error(flags: dict[str, object], text: str | None, environ: dict[str, str], tmp: Path) -> str:
    path = None
    if text is not None:
        path = tmp / "serve.toml"
        path.write_text(text)
    with pytest.raises(UsageError) as e:
        resolve(flags, str(path) if path else None, environ)
    return str(e.value)


def test_errors_name_the_key_and_where(tmp_path: Path) -> None:
    text = 'host = "127.0.0.1"\n\nworkers = "many"\n'
    assert _error({}, text, {}, tmp_path).startswith(f"{tmp_path / 'serve.toml'}:3: workers:")
    msg = _error({}, "prot = 8787\n", {}, tmp_path)
    assert ":1: 'prot' is not a setting of serve; did you mean 'port'?" in msg
    assert "not valid TOML" in _error({}, "port = = 1\n", {}, tmp_path)
    assert "line 1" in _error({}, "port = = 1\n", {}, tmp_path)
    assert _error({}, None, {"POLICYROUTE_BODY_TIMEOUT": "soon"}, tmp_path).startswith(
        "$POLICYROUTE_BODY_TIMEOUT:"
    )
    assert _error({"log_format": "xml"}, None, {}, tmp_path).startswith("--log-format:")


def test_a_missing_config_file_and_the_real_command(tmp_path: Path) -> None:
    r = refuse_serve("--config", str(tmp_path / "missing.toml"))  # in-process: serve_refusal.py
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "serve.toml").write_text("max_body_bytes = 10\n")
    r = run_serve("--config", str(tmp_path / "serve.toml"))
    assert r.returncode == 2 and f"{tmp_path / 'serve.toml'}:1: max_body_bytes:" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_the_example_file_serves_with_the_environment_over_it(fake: FakeAnthropic) -> None:
    # The example forwards to the real API; the environment points it at the fake instead.
    env = {env_name("upstream"): fake.base_url, env_name("log_format"): "text"}
    with Served("--config", str(EXAMPLE), env=env, port=free_port()) as s:
        r = httpx2.post(s.url + "/v1/messages", json=BODY, headers={"x-api-key": "sk-ant-x"})
        assert r.status_code == 200 and r.headers["x-policyroute-tier"] == "haiku"
    assert fake.requests and "coding-assistant" in s.stderr
    assert "{" not in s.stderr.splitlines()[-1]  # text logs: the environment won


def test_the_defaults_are_the_documented_ones() -> None:
    defaults = ServeSettings()
    assert (defaults.host, defaults.port, defaults.workers) == ("127.0.0.1", 8787, 1)
    assert defaults.max_body_bytes == 32 * 1024 * 1024 and defaults.upstream_timeout == 600
