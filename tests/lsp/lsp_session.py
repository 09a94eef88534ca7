"""A real LSP client (pygls's) driving `policyroute lsp` as a subprocess over stdio.

The client runs on an event loop in a thread of its own, so tests stay plain functions:
`session.request(...)` sends a request and waits for its answer, `session.diagnostics(uri)`
waits for the next publication for a document.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

T = TypeVar("T")
TIMEOUT = 60.0


def uri(path: Path) -> str:
    out = from_fs_path(str(path))
    assert out is not None
    return out


class Session:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.published: dict[str, list[list[types.Diagnostic]]] = {}
        self.cond: asyncio.Condition | None = None
        self.client = self.run(self._start())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(TIMEOUT)

    async def _start(self) -> LanguageClient:
        self.cond = asyncio.Condition()
        client = LanguageClient("policyroute-tests", "1")

        @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        async def published(params: types.PublishDiagnosticsParams) -> None:
            assert self.cond is not None
            async with self.cond:
                self.published.setdefault(params.uri, []).append(list(params.diagnostics))
                self.cond.notify_all()

        await client.start_io(
            sys.executable, "-m", "policyroute.cli", "lsp", "--stdio", cwd=str(self.root)
        )
        await client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(),
                root_uri=uri(self.root),
                workspace_folders=[types.WorkspaceFolder(uri(self.root), "root")],
            )
        )
        client.initialized(types.InitializedParams())
        return client

    def count(self, doc: str) -> int:
        return len(self.published.get(doc, []))

    def diagnostics(self, doc: str, after: int = 0) -> list[types.Diagnostic]:
        """The diagnostics of the first publication for `doc` past the first `after`."""

        async def wait() -> list[types.Diagnostic]:
            assert self.cond is not None
            async with self.cond:
                await self.cond.wait_for(lambda: self.count(doc) > after)
                return self.published[doc][after]

        return self.run(asyncio.wait_for(wait(), TIMEOUT))

    def open(self, path: Path, text: str | None = None) -> str:
        doc = uri(path)
        text = path.read_text(encoding="utf-8") if text is None else text
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(types.TextDocumentItem(doc, "route", 1, text))
        )
        return doc

    def change(self, doc: str, text: str, version: int = 2) -> None:
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(version, doc),
                [types.TextDocumentContentChangeWholeDocument(text)],
            )
        )

    def save(self, doc: str) -> None:
        self.client.text_document_did_save(
            types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(doc))
        )

    def close_doc(self, doc: str) -> None:
        self.client.text_document_did_close(
            types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(doc))
        )

    def request(self, method: str, params: Any) -> Any:
        async def send() -> Any:
            return await self.client.protocol.send_request_async(method, params)

        return self.run(send())

    def close(self) -> None:
        async def stop() -> None:
            await self.client.shutdown_async(None)
            self.client.exit(None)
            await self.client.stop()

        try:
            self.run(stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
