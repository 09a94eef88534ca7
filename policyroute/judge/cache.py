"""Judgements remembered by a hash of their content, so no pair is ever judged twice.

The key is the SHA-256 of the exact judge request (model, prompts, limits): the same pair
judged the same way by the same model hits the cache, in this run or any later one, while a
new rubric or judge model asks again. SQLite (standard library) keeps the file consistent
when a run is interrupted, and lets two runs share it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def content_key(params: Mapping[str, Any]) -> str:
    canonical = json.dumps(params, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def default_cache_path() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "policyroute" / "judge-cache.sqlite"


class JudgeCache:
    """key -> the judge's answer: {"text", "input_tokens", "output_tokens", "cost_usd", ...}."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS judgements (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        self._db.commit()
        self._lock = threading.Lock()  # online judging writes from several threads

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM judgements WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        value: dict[str, Any] = json.loads(row[0])
        return value

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO judgements (key, value) VALUES (?, ?)",
                (key, json.dumps(dict(value))),
            )
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()
