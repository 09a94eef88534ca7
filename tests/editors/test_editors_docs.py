"""docs/editors.md: every set-up block is checked by what reads it.

JSON and TOML blocks parse and start `policyroute lsp`; Lua blocks compile (`luac -p`, the
Debian lua5.4 package .ci/run installs); the pre-commit configurations run with pre-commit
itself on a scratch repository, this checkout standing in for the published repository."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "editors.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)


def blocks(lang: str) -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    return [body for kind, body in BLOCK.findall(text) if kind == lang]


def test_every_block_is_checked_here() -> None:
    kinds = {kind for kind, _ in BLOCK.findall(PAGE.read_text(encoding="utf-8"))}
    assert kinds <= {"sh", "json", "lua", "toml", "yaml"}


def test_json_settings_parse_and_start_the_server() -> None:
    (vscode,) = blocks("json")
    settings = json.loads(vscode)
    assert settings["policyroute.server.command"][-1] == "lsp"
    manifest = json.loads((ROOT / "editors" / "vscode" / "package.json").read_text())
    assert "policyroute.server.command" in manifest["contributes"]["configuration"]["properties"]


def test_helix_languages_toml() -> None:
    (helix,) = blocks("toml")
    config = tomllib.loads(helix)
    server = config["language-server"]["policyroute"]
    assert [server["command"], *server["args"]] == ["policyroute", "lsp"]
    assert config["language"][0]["file-types"] == ["route"]


@pytest.mark.parametrize("index", [0, 1])
def test_neovim_lua_compiles(index: int, tmp_path: Path) -> None:
    luac = shutil.which("luac5.4") or shutil.which("luac")
    if luac is None:
        pytest.fail("luac is needed to check the Neovim set-up: apt-get install lua5.4")
    script = tmp_path / "init.lua"
    script.write_text(blocks("lua")[index], encoding="utf-8")
    done = subprocess.run([luac, "-p", str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert '"policyroute", "lsp"' in blocks("lua")[index]


def test_pre_commit_configurations_run(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "policies", repo / "policies")
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PRE_COMMIT_HOME"] = str(tmp_path / "home")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    configs = blocks("yaml")
    assert len(configs) == 2
    for config in configs:
        parsed = yaml.safe_load(config)
        (entry,) = parsed["repos"]
        assert entry["repo"] == "https://github.com/policyroute/policyroute"
        entry["repo"], entry["rev"] = str(ROOT), head
        (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(parsed), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "pre_commit", "run", "--all-files"],
            cwd=repo,
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.count("Passed") == len(entry["hooks"])
