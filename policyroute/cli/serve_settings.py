"""The settings of `policyroute serve`, from three places: a TOML file (`--config serve.toml`),
`POLICYROUTE_*` environment variables and flags. A flag wins over the environment, which wins
over the file, which wins over the default. Every flag has a key of the same name (dashes
become underscores: `--max-body-bytes` is `max_body_bytes`, `$POLICYROUTE_MAX_BODY_BYTES`).

Validated with pydantic; an error names the key and where it came from (the file and line,
the variable, or the flag). Secrets never appear here: `api_key_env` and `client_tokens_env`
name the variables that hold them.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .common import UsageError

ENV_PREFIX = "POLICYROUTE_"


class ServeSettings(BaseModel):
    """Every setting of `serve`, with its default (the flags' help says what each does)."""

    model_config = ConfigDict(extra="forbid")

    policy: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(8787, ge=1, le=65535)
    upstream: str | None = Field(None, pattern=r"^https?://")
    records: str | None = None
    log_prompts: bool = False
    workers: int = Field(1, ge=1, le=256)
    api_key_env: str | None = None
    client_tokens_env: str | None = None
    allow_unauthenticated: bool = False
    public_metrics: bool = False
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    body_timeout: float = Field(60.0, gt=0, allow_inf_nan=False)
    upstream_timeout: float = Field(600.0, gt=0, allow_inf_nan=False)
    shutdown_timeout: float = Field(30.0, ge=0, allow_inf_nan=False)
    max_concurrency: int = Field(0, ge=0)
    sticky_max: int = Field(100_000, ge=1)
    poll: bool = False
    access_log: bool = False
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    # Shared state (sticky floors, spend): a redis:// URL; its read timeout in milliseconds.
    state: str | None = None
    state_timeout: float = Field(50.0, gt=0, allow_inf_nan=False)
    # The policy's shadow statements: on only with both a daily budget and a pairs file.
    shadow_budget: float | None = Field(None, ge=0, allow_inf_nan=False)
    pairs: str | None = None


KEYS = tuple(ServeSettings.model_fields)
# Keys whose value is a path: in a file, relative to the file's folder.
PATH_KEYS = ("policy", "records", "pairs")


def env_name(key: str) -> str:
    return ENV_PREFIX + key.upper()


def _line_of(text: str, key: str) -> int | None:
    pattern = re.compile(rf"""^\s*["']?{re.escape(key)}["']?\s*=""")
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return number
    return None


def _unknown(key: str, where: str) -> UsageError:
    close = difflib.get_close_matches(key.replace("-", "_"), KEYS, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; the keys are {', '.join(KEYS)}"
    return UsageError(f"{where}: {key!r} is not a setting of serve{hint}")


def from_file(path: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The file's settings and, for each key, where it is (`FILE:LINE`)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"--config {path}: cannot be read ({e})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: not valid TOML: {e}") from None
    values: dict[str, Any] = {}
    where: dict[str, str] = {}
    for raw_key, value in data.items():
        line = _line_of(text, raw_key)
        at = f"{path}:{line}" if line else path
        key = raw_key.replace("-", "_")
        if key not in KEYS:
            raise _unknown(raw_key, at)
        if key in PATH_KEYS and isinstance(value, str):
            value = str((p.parent / value).resolve()) if value else value
        values[key] = value
        where[key] = f"{at}: {raw_key}"
    return values, where


def from_env(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    where: dict[str, str] = {}
    for key in KEYS:
        name = env_name(key)
        if name in environ:
            values[key] = environ[name]
            where[key] = f"${name}"
    return values, where


def _flag(key: str) -> str:
    return "POLICY" if key == "policy" else "--" + key.replace("_", "-")


def resolve(
    flags: Mapping[str, Any], config: str | None, environ: Mapping[str, str] | None = None
) -> tuple[ServeSettings, dict[str, str]]:
    """The settings by precedence flag > environment > file > default, validated; and where
    each set key came from."""
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    where: dict[str, str] = {}
    if config is not None:
        values, at = from_file(config)
        merged.update(values)
        where.update(at)
    values, at = from_env(environ)
    merged.update(values)
    where.update(at)
    for key, value in flags.items():
        if key in KEYS and value is not None:
            merged[key] = value
            where[key] = _flag(key)
    try:
        settings = ServeSettings.model_validate(merged)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            key = str(err["loc"][0]) if err["loc"] else "?"
            shown = where.get(key, key)
            problems.append(f"{shown}: {err['msg']} (got {err.get('input')!r})")
        raise UsageError("; ".join(problems)) from None
    return settings, where
