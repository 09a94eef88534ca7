"""The real Claude Code CLI, run as the tests need it: pinned, sandboxed, loopback only.

`.ci/install-claude-code` installs each pinned version from npm under `PREFIX` (outside the
project's tree); `cli(version)` finds it, installing it first when it is missing (so plain
`pytest` works on a machine that has npm). `run` starts it with a clean environment: a
throwaway home and config directory, `ANTHROPIC_BASE_URL` on 127.0.0.1, its documented
switches for telemetry, error reports and auto-update off, and every other destination sent to
a closed loopback port through the proxy variables, so nothing it tries can leave the machine.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / ".ci" / "install-claude-code"
PREFIX = Path(
    os.environ.get("POLICYROUTE_CLAUDE_CODE_PREFIX")
    or Path.home() / ".cache" / "policyroute" / "claude-code"
)
# The native-binary release the issue was found with, the last one that ships cli.js, and
# the newest release when this was written (all three install from npm alone).
VERSIONS = ("2.1.197", "2.0.77", "2.1.332")
KEY = "sk-ant-api03-claude-code-e2e-0000000000"
# Port 9 (discard) on loopback: nothing listens, so a request that ignores the base URL
# fails at once instead of reaching the network.
DEAD_PROXY = "http://127.0.0.1:9"

QUIET = {
    # Documented in Claude Code's settings reference: the first one implies the others;
    # they are set one by one too, as older versions read only their own.
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_BUG_COMMAND": "1",
    "DISABLE_COST_WARNINGS": "1",
    "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1",
}


class CliMissing(RuntimeError):
    pass


def executable(version: str) -> Path:
    return PREFIX / version / "node_modules" / ".bin" / "claude"


def cli(version: str) -> Path:
    """The pinned CLI, installed by `.ci/install-claude-code` if it is not there yet."""
    exe = executable(version)
    if exe.exists():
        return exe
    if shutil.which("npm") is None:
        raise CliMissing(f"Claude Code {version} is not installed and npm is not on PATH")
    # pytest-xdist workers may want the same missing version at once: one installs it while
    # the others wait on the lock, then find it there (two npm installs into one prefix
    # would tear it).
    PREFIX.mkdir(parents=True, exist_ok=True)
    with (PREFIX / f".{version}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not exe.exists():
            done = subprocess.run(
                ["bash", str(INSTALL), version], capture_output=True, text=True, timeout=600
            )
            if done.returncode != 0 or not exe.exists():
                raise CliMissing(f"installing Claude Code {version} failed:\n{done.stderr}")
    return exe


def environment(base_url: str, home: Path, **extra: str) -> dict[str, str]:
    """Only what the CLI needs: nothing of the caller's environment leaks in (no real key,
    no real config), and `extra` last (ANTHROPIC_MODEL, MAX_THINKING_TOKENS, ...)."""
    config = home / ".claude"
    config.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(config),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": KEY,
        "HTTP_PROXY": DEAD_PROXY,
        "HTTPS_PROXY": DEAD_PROXY,
        "NO_PROXY": "127.0.0.1,localhost",
        **QUIET,
        **extra,
    }


def run(
    version: str,
    prompt: str,
    *,
    base_url: str,
    home: Path,
    cwd: Path,
    args: tuple[str, ...] = ("--model", "auto"),
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`claude -p PROMPT --output-format json ARGS` in `cwd`, as a person runs it."""
    command = [str(cli(version)), "-p", prompt, "--output-format", "json", *args]
    return subprocess.run(
        command,
        cwd=cwd,
        env=environment(base_url, home, **(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
