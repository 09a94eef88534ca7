"""One open document, checked exactly as `policyroute check` checks the file.

A snapshot is taken on open, change and save; every answer to the editor reads the latest
one. The document's text is the editor's (unsaved edits included); files it imports are read
from disk, as `check` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from ..cli.check import check_loaded
from ..compiler.inline_tests import InlineResult, run_tests
from ..compiler.loader import Loaded, load_text
from ..policy import Policy
from ..syntax.diagnostics import Diagnostic, unique
from ..syntax.source import Source
from .index import Index, build_index


@dataclass(slots=True)
class Snapshot:
    uri: str
    path: Path | None
    loaded: Loaded
    source: Source
    diagnostics: list[Diagnostic]
    library: bool
    policy: Policy | None
    index: Index
    _results: list[InlineResult] | None = None

    @property
    def results(self) -> list[InlineResult]:
        """The inline tests' results (run on first use: hover is the only reader)."""
        if self._results is None:
            self._results = run_tests(self.policy) if self.policy is not None else []
        return self._results


def display_name(path: Path) -> str:
    """How `check` names a file: relative to the working folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def path_of(uri: str) -> Path | None:
    """The file a `file:` URI names (None for an unsaved buffer's `untitled:` and the like)."""
    if not uri.startswith("file:"):
        return None
    parsed = urlparse(uri)
    return Path(url2pathname(unquote(parsed.path)))


def snapshot_of(uri: str, text: str) -> Snapshot:
    path = path_of(uri)
    return take(uri, text, path, display_name(path) if path is not None else uri)


def take(uri: str, text: str, path: Path | None, name: str) -> Snapshot:
    loaded = load_text(text, name, path=path)
    diagnostics, library, policy = check_loaded(loaded)
    source = loaded.sources[0] if loaded.sources else Source(text, name, path)
    return Snapshot(
        uri, path, loaded, source, unique(diagnostics), library, policy, build_index(loaded)
    )
