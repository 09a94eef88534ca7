"""Diagnostics as the protocol's JSON: `check`'s diagnostics, per file, for an open document.

Both the early start (before pygls is loaded) and the server publish through these
functions, so the first diagnostics and every later one have one shape.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..syntax.diagnostics import Diagnostic
from ..syntax.source import Source
from .positions import span_range

ERROR, WARNING = 1, 2  # DiagnosticSeverity


def uri_of(source: Source, owner: str, owner_path: Path | None) -> str:
    """The URI a file's diagnostics are shown under, for one document's check: the document's
    own URI as the editor sent it, another file's made from its path."""
    if source.path is None or source.path == owner_path:
        return owner
    return source.path.as_uri()


def diagnostic_json(d: Diagnostic, uri: Callable[[Source], str], encoding: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "range": span_range(d.source, d.span, encoding),
        "severity": ERROR if d.is_error else WARNING,
        "code": d.code,
        "source": "policyroute",
        "message": d.message + (f"\nhint: {d.hint}" if d.hint else ""),
    }
    if d.related:
        out["relatedInformation"] = [
            {
                "location": {
                    "uri": uri(r.source),
                    "range": span_range(r.source, r.span, encoding),
                },
                "message": r.message,
            }
            for r in d.related
        ]
    return out


def shares(
    diagnostics: list[Diagnostic], uri: Callable[[Source], str], owner: str
) -> dict[str, list[Diagnostic]]:
    """A document's diagnostics by the URI each is shown under (its own always present)."""
    out: dict[str, list[Diagnostic]] = {owner: []}
    for d in diagnostics:
        out.setdefault(uri(d.source), []).append(d)
    return out


def publication(uri: str, found: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "method": "textDocument/publishDiagnostics",
        "params": {"uri": uri, "diagnostics": found},
    }
