"""The early start of `policyroute lsp` (policyroute/lsp/early.py): what it answers before
pygls is loaded must be what pygls would answer, and the hand-over must lose nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.capabilities import ServerCapabilitiesBuilder

from policyroute.lsp.early import CAPABILITIES, SERVER_INFO, read_message, write_message
from policyroute.lsp.positions import choose_encoding
from policyroute.lsp.server import make_server

POLICY = Path(__file__).resolve().parents[2] / "policies" / "coding-assistant.route"
CLIENTS: list[dict[str, Any]] = [
    {},
    {"general": {"positionEncodings": ["utf-8", "utf-16"]}},
    {"general": {"positionEncodings": ["utf-32"]}},
    {"general": {"positionEncodings": ["utf-7", "utf-16"]}},
    {"general": {}},
]


@pytest.mark.parametrize("client", CLIENTS)
def test_the_early_answer_to_initialize_is_pygls_s(client: dict[str, Any]) -> None:
    server = make_server()
    converter = server.protocol._converter
    caps = converter.structure(client, types.ClientCapabilities)
    encoding = ServerCapabilitiesBuilder.choose_position_encoding(caps)
    assert choose_encoding(client) == encoding
    fm = server.protocol.fm
    built = ServerCapabilitiesBuilder(
        caps,
        set({**fm.features, **fm.builtin_features}.keys()),
        fm.feature_options,
        list(fm.commands.keys()),
        server._text_document_sync_kind,
        server._notebook_document_sync,
        encoding,
    ).build()
    assert converter.unstructure(built) == {"positionEncoding": encoding, **CAPABILITIES}
    assert {"name": server.name, "version": server.version} == SERVER_INFO


class Raw:
    """The server over stdio with hand-framed JSON-RPC: exactly the bytes an editor sends."""

    def __init__(self, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "policyroute.cli", "lsp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
        )

    def send(self, *messages: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        for m in messages:
            write_message(self.proc.stdin, {"jsonrpc": "2.0", **m})

    def next(self, **match: Any) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            m = read_message(self.proc.stdout)
            assert m is not None, "the server closed its output"
            if all(m.get(k) == v for k, v in match.items()):
                return m


def test_first_diagnostics_then_pygls_serves_the_rest(tmp_path: Path) -> None:
    shutil.copytree(POLICY.parent, tmp_path / "policies")
    policy = tmp_path / "policies" / POLICY.name
    uri = policy.as_uri()
    raw = Raw(tmp_path)
    item = {"uri": uri, "languageId": "route", "version": 1, "text": policy.read_text()}
    raw.send(
        {
            "id": 1,
            "method": "initialize",
            "params": {"capabilities": {}, "rootUri": tmp_path.as_uri()},
        },
        {"method": "initialized", "params": {}},
        {"method": "textDocument/didOpen", "params": {"textDocument": item}},
    )
    answer = raw.next(id=1)
    assert answer["result"]["capabilities"]["hoverProvider"] is True
    first = raw.next(method="textDocument/publishDiagnostics")
    assert first["params"] == {"uri": uri, "diagnostics": []}
    # After the hand-over: a change is checked and a hover answered, by pygls.
    broken = item["text"].replace("-> opus", "-> opsu", 1)
    raw.send(
        {
            "method": "textDocument/didChange",
            "params": {
                "textDocument": {"uri": uri, "version": 2},
                "contentChanges": [{"text": broken}],
            },
        }
    )
    again = raw.next(method="textDocument/publishDiagnostics")
    assert [d["code"] for d in again["params"]["diagnostics"]] == ["E102"]
    line = broken.splitlines().index(next(s for s in broken.splitlines() if "rule tiny" in s))
    raw.send(
        {
            "id": 2,
            "method": "textDocument/hover",
            "params": {"textDocument": {"uri": uri}, "position": {"line": line, "character": 6}},
        }
    )
    hover = raw.next(id=2)
    assert "rule tiny" in hover["result"]["contents"]["value"]
    raw.send({"id": 3, "method": "shutdown"}, {"method": "exit"})
    assert raw.next(id=3)["result"] is None
    assert raw.proc.wait(30) == 0
    assert raw.proc.stderr is not None
    assert b"Traceback" not in raw.proc.stderr.read()


def test_a_request_before_any_document_is_pygls_s_to_answer(tmp_path: Path) -> None:
    raw = Raw(tmp_path)
    raw.send(
        {"id": 1, "method": "initialize", "params": {"capabilities": {}}},
        {"method": "initialized", "params": {}},
        {"id": 2, "method": "shutdown"},
        {"method": "exit"},
    )
    assert "capabilities" in raw.next(id=1)["result"]
    assert raw.next(id=2)["result"] is None
    assert raw.proc.wait(30) == 0


def test_input_that_ends_at_once_ends_the_server(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "policyroute.cli", "lsp"],
        input=b"",
        capture_output=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert b"Traceback" not in done.stderr
