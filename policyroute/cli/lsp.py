"""`policyroute lsp`: the language server on stdin/stdout (the `lsp` extra: pygls)."""

from __future__ import annotations

import argparse
from typing import Any

from .common import EXIT_OK, UsageError


def cmd_lsp(args: argparse.Namespace) -> int:
    from importlib.util import find_spec

    missing = [name for name in ("pygls", "lsprotocol") if find_spec(name) is None]
    if missing:
        raise UsageError(
            f"the language server needs the lsp extra ({', '.join(missing)} missing): "
            "pip install 'policyroute[lsp]'"
        )
    from ..lsp.early import serve

    serve()
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser(
        "lsp",
        help="the language server (Language Server Protocol on stdin/stdout) for editors",
        description="Serve diagnostics, hover, go to definition, references, completion, "
        "outline, formatting and quick fixes for .route files to an editor, over stdio.",
    )
    # Editors' LSP clients (vscode-languageclient among them) pass --stdio; stdio is the only
    # transport, so the flag is accepted and changes nothing.
    p.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the default)")
    p.set_defaults(func=cmd_lsp)
