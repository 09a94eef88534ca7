"""Shared setup for the learn tests: synthetic data in the test's folder, and `learn` run on it
through the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .synth import Synth, write


@pytest.fixture
def synth(tmp_path: Path) -> Callable[..., Synth]:
    """Writes synthetic data into the test's folder: `synth(**kw)` takes `synth.write`'s
    keywords, with the keyword "quantum" planted unless told otherwise."""

    def make(**kw: object) -> Synth:
        kw.setdefault("planted", "quantum")
        return Synth(tmp_path, *write(tmp_path, **kw))  # type: ignore[arg-type]

    return make
