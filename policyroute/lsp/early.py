"""The first moments of `policyroute lsp`, before pygls is imported.

Importing pygls and lsprotocol (a thousand protocol classes built at import) takes longer
than checking a policy, and an editor shows nothing until the first diagnostics arrive. So
the server starts with the standard library alone: it answers `initialize` (with the
capabilities pygls would compute, kept equal by a test), and on the first `didOpen` checks
the document and publishes its diagnostics. Only then is pygls imported; the messages read
so far are replayed into it, their answers already sent, and pygls serves from there on the
same stdin and stdout.
"""

from __future__ import annotations

import json
import sys
from typing import Any, BinaryIO

from .. import __version__
from ..syntax.diagnostics import unique
from ..syntax.source import Source
from .positions import choose_encoding
from .publish import diagnostic_json, publication, shares, uri_of
from .snapshot import Snapshot, snapshot_of

# What pygls answers `initialize` with for this server's features (test_lsp_early checks it).
CAPABILITIES: dict[str, Any] = {
    "textDocumentSync": {"openClose": True, "change": 2, "save": True},
    "completionProvider": {"triggerCharacters": [".", ">"]},
    "hoverProvider": True,
    "definitionProvider": True,
    "referencesProvider": True,
    "documentSymbolProvider": True,
    "codeActionProvider": {"codeActionKinds": ["quickfix"]},
    "documentFormattingProvider": True,
    "executeCommandProvider": {"commands": []},
    "workspace": {
        "workspaceFolders": {"supported": True, "changeNotifications": True},
        "fileOperations": {},
    },
}
SERVER_INFO = {"name": "policyroute", "version": __version__}
# Notifications that can wait for pygls: read, kept for the replay, not acted on here.
DEFERRED = frozenset(
    {"initialized", "$/setTrace", "$/cancelRequest", "workspace/didChangeConfiguration"}
)


def read_message(stream: BinaryIO) -> dict[str, Any] | None:
    """One JSON-RPC message (None at the end of input or on a malformed frame)."""
    length = None
    while True:
        line = stream.readline()
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("ascii", "replace").partition(":")
        if name.strip().lower() == "content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return None
    if length is None:
        return None
    try:
        message = json.loads(stream.read(length))
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def write_message(stream: BinaryIO, message: dict[str, Any]) -> None:
    body = json.dumps(message).encode("utf-8")
    stream.write(f"Content-Length: {len(body)}\r\n\r\n".encode("ascii") + body)
    stream.flush()


class Early:
    def __init__(self, stdin: BinaryIO, stdout: BinaryIO) -> None:
        self.stdin = stdin
        self.stdout = stdout
        # Messages read and answered here (replayed into pygls silently), and the one that
        # ended this phase unanswered (pygls answers it).
        self.read: list[dict[str, Any]] = []
        self.pending: dict[str, Any] | None = None
        self.snapshots: list[Snapshot] = []
        self.encoding = "utf-16"

    def run(self) -> None:
        """Serve until the first document is checked, or a message pygls must answer."""
        initialized = False
        while True:
            message = read_message(self.stdin)
            if message is None:
                return
            self.read.append(message)
            method = message.get("method")
            params = message.get("params")
            params = params if isinstance(params, dict) else {}
            if method == "initialize" and "id" in message and not initialized:
                self.encoding = choose_encoding(params.get("capabilities"))
                capabilities = {"positionEncoding": self.encoding, **CAPABILITIES}
                result = {"capabilities": capabilities, "serverInfo": SERVER_INFO}
                write_message(
                    self.stdout, {"jsonrpc": "2.0", "id": message["id"], "result": result}
                )
                initialized = True
            elif method in DEFERRED:
                continue
            elif method == "textDocument/didOpen" and initialized:
                try:
                    self.open(params)
                except Exception:  # a bug of ours: pygls handles the message, and reports it
                    self.snapshots.clear()
                    self.pending = self.read.pop()
                return
            else:
                self.pending = self.read.pop()
                return

    def open(self, params: dict[str, Any]) -> None:
        item = params.get("textDocument")
        if not isinstance(item, dict):
            return
        uri, text = item.get("uri"), item.get("text")
        if not isinstance(uri, str) or not isinstance(text, str):
            return
        snap = snapshot_of(uri, text)
        self.snapshots.append(snap)

        def where(source: Source) -> str:
            return uri_of(source, snap.uri, snap.source.path)

        for target, found in shares(snap.diagnostics, where, snap.uri).items():
            shown = [diagnostic_json(d, where, self.encoding) for d in unique(found)]
            write_message(self.stdout, publication(target, shown))


def serve() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    early = Early(stdin, stdout)
    early.run()
    from .server import make_server

    server = make_server()
    server.replay(early.read, early.snapshots, early.pending, stdout)
    server.start_io(stdin, stdout)
