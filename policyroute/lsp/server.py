"""The language server: pygls wiring, and the diagnostics every open document publishes.

A document's check reports problems in the files it imports too; those are published under
the imported file's URI. Each open document owns what it reported, so closing it, or fixing
the imported file, clears exactly its share; two documents importing one broken file show
that file's problem once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO

from lsprotocol import types
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer

from .. import __version__
from ..compiler.loader import load_path
from ..syntax.diagnostics import Diagnostic, PolicyError, unique
from ..syntax.formatter import format_source
from ..syntax.source import Source, Span
from .complete import complete
from .fixes import fix_for
from .hover import hover_text
from .index import Index, Occurrence, build_index, import_target
from .outline import outline
from .positions import offset, span_range
from .publish import diagnostic_json, publication, shares
from .snapshot import Snapshot, path_of, snapshot_of

# A workspace is searched for references across at most this many `.route` files.
MAX_WORKSPACE_FILES = 2_000
# The protocol's kinds for completion.complete's plain kind names.
_ITEM_KINDS = {
    "keyword": types.CompletionItemKind.Keyword,
    "variable": types.CompletionItemKind.Variable,
    "class": types.CompletionItemKind.Class,
    "constant": types.CompletionItemKind.Constant,
    "function": types.CompletionItemKind.Function,
    "event": types.CompletionItemKind.Event,
    "field": types.CompletionItemKind.Field,
}


class PolicyServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("policyroute", __version__)
        self.snapshots: dict[str, Snapshot] = {}
        # owner document -> {URI diagnostics are shown in -> diagnostics}
        self.owned: dict[str, dict[str, list[Diagnostic]]] = {}
        # Snapshots the early start took, adopted when pygls sees the same documents open.
        self.ready: dict[str, Snapshot] = {}

    @property
    def encoding(self) -> str:
        return str(self.workspace.position_encoding or types.PositionEncodingKind.Utf16)

    # -- diagnostics ------------------------------------------------------------------------

    def uri_of(self, source: Source, owner: str = "") -> str:
        """The URI of a file: an open document's as the editor sent it, else from its path
        (`owner` for a text that has no path)."""
        if source.path is None:
            return owner
        for snap in self.snapshots.values():
            if snap.source.path == source.path:
                return snap.uri
        return source.path.as_uri()

    def refresh(self, uri: str) -> None:
        doc = self.workspace.get_text_document(uri)
        ready = self.ready.pop(uri, None)
        if ready is not None and ready.source.text == doc.source:
            self.adopt(ready)
        else:
            self.adopt(snapshot_of(uri, doc.source))

    def replay(
        self,
        messages: list[dict[str, Any]],
        snapshots: list[Snapshot],
        pending: dict[str, Any] | None,
        stdout: BinaryIO,
    ) -> None:
        """Take over from the early start (`early`): the messages it answered are handled
        again, so pygls knows the client and the open documents, but nothing is sent (their
        answers and diagnostics went out already) and its snapshots are reused, not checked
        again; the message it left unanswered is answered now."""
        self.ready = {s.uri: s for s in snapshots}
        self.protocol.set_writer(_Discard())
        for message in messages:
            self.protocol.handle_message(self.protocol.structure_message(message))
        self.protocol.set_writer(StdoutWriter(stdout))
        if pending is not None:
            self.protocol.handle_message(self.protocol.structure_message(pending))

    def adopt(self, snap: Snapshot) -> None:
        """Make `snap` the document's state and publish what changed."""
        self.snapshots[snap.uri] = snap
        before = self.owned.get(snap.uri, {})
        mine = shares(snap.diagnostics, lambda src: self.uri_of(src, snap.uri), snap.uri)
        self.owned[snap.uri] = mine
        for target in {*before, *mine}:
            self.publish(target)

    def forget(self, uri: str) -> None:
        self.snapshots.pop(uri, None)
        for target in self.owned.pop(uri, {uri: []}):
            self.publish(target)

    def publish(self, target: str) -> None:
        found = unique(d for share in self.owned.values() for d in share.get(target, ()))
        message = publication(target, [self.diagnostic_json(d, target) for d in found])
        params = self.protocol._converter.structure(
            message["params"], types.PublishDiagnosticsParams
        )
        self.text_document_publish_diagnostics(params)

    def diagnostic_json(self, d: Diagnostic, shown_in: str) -> dict[str, Any]:
        return diagnostic_json(d, lambda src: self.uri_of(src, shown_in), self.encoding)

    def lsp_diagnostic(self, d: Diagnostic, shown_in: str) -> types.Diagnostic:
        converter = self.protocol._converter
        return converter.structure(self.diagnostic_json(d, shown_in), types.Diagnostic)

    def range(self, source: Source, span: Span) -> types.Range:
        return self.protocol._converter.structure(
            span_range(source, span, self.encoding), types.Range
        )

    # -- lookups ----------------------------------------------------------------------------

    def at(self, uri: str, pos: types.Position) -> tuple[Snapshot, Occurrence] | None:
        snap = self.snapshots.get(uri)
        if snap is None:
            return None
        at = offset(snap.source, pos.line, pos.character, self.encoding)
        occ = snap.index.at(snap.source, at)
        return (snap, occ) if occ is not None else None

    def location(self, occ: Occurrence, owner: str) -> types.Location:
        return types.Location(self.uri_of(occ.source, owner), self.range(occ.source, occ.span))

    def workspace_indexes(self) -> list[Index]:
        """An index of every `.route` file of the workspace: open ones as the editor holds
        them, the others as on disk."""
        out = [s.index for s in self.snapshots.values()]
        open_paths = {s.path for s in self.snapshots.values() if s.path is not None}
        roots = [path_of(f.uri) for f in self.workspace.folders.values()]
        if not roots and self.workspace.root_uri:
            roots = [path_of(self.workspace.root_uri)]
        seen = 0
        for root in filter(None, roots):
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "node_modules"]
                for f in filenames:
                    path = Path(dirpath, f).resolve()
                    if not f.endswith(".route") or path in open_paths:
                        continue
                    seen += 1
                    if seen > MAX_WORKSPACE_FILES:
                        return out
                    out.append(build_index(load_path(path)))
        return out

    def references(self, snap: Snapshot, occ: Occurrence, with_decl: bool) -> list[types.Location]:
        found: dict[tuple[str, int, int], types.Location] = {}

        def add(o: Occurrence) -> None:
            loc = self.location(o, snap.uri)
            found.setdefault((loc.uri, o.span.start, o.span.end), loc)

        if occ.kind == "import":
            target = import_target(occ)
            for index in self.workspace_indexes():
                for o in index.uses():
                    if o.kind == "import" and import_target(o) == target:
                        add(o)
            return list(found.values())
        decl = snap.index.definition(occ)
        if decl is None:
            return []
        if with_decl:
            add(decl)
        indexes = [snap.index] if occ.kind == "rule" else self.workspace_indexes()
        for index in indexes:
            for o in index.uses():
                if o.kind != occ.kind or o.name != occ.name:
                    continue
                d2 = index.definition(o)
                if d2 is not None and d2.source.path == decl.source.path and (d2.span == decl.span):
                    add(o)
        return list(found.values())


def make_server() -> PolicyServer:
    server = PolicyServer()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: PolicyServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: PolicyServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: PolicyServer, params: types.DidSaveTextDocumentParams) -> None:
        # Every open document reads the saved file from disk if it imports it.
        for uri in list(ls.snapshots):
            ls.refresh(uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: PolicyServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.forget(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: PolicyServer, params: types.HoverParams) -> types.Hover | None:
        found = ls.at(params.text_document.uri, params.position)
        if found is None:
            return None
        snap, occ = found
        text = hover_text(snap, occ)
        if text is None:
            return None
        return types.Hover(
            types.MarkupContent(types.MarkupKind.Markdown, text), ls.range(occ.source, occ.span)
        )

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: PolicyServer, params: types.DefinitionParams) -> types.Location | None:
        found = ls.at(params.text_document.uri, params.position)
        if found is None:
            return None
        snap, occ = found
        if occ.kind == "import":
            target = import_target(occ)
            if target is None or not target.is_file():
                return None
            start = types.Position(0, 0)
            return types.Location(target.as_uri(), types.Range(start, start))
        decl = snap.index.definition(occ)
        return ls.location(decl, snap.uri) if decl is not None else None

    @server.feature(types.TEXT_DOCUMENT_REFERENCES)
    def references(ls: PolicyServer, params: types.ReferenceParams) -> list[types.Location]:
        found = ls.at(params.text_document.uri, params.position)
        if found is None:
            return []
        snap, occ = found
        return ls.references(snap, occ, params.context.include_declaration)

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=[".", ">"]),
    )
    def completion(ls: PolicyServer, params: types.CompletionParams) -> types.CompletionList:
        snap = ls.snapshots.get(params.text_document.uri)
        if snap is None:
            return types.CompletionList(False, [])
        doc = ls.workspace.get_text_document(params.text_document.uri)
        source = Source(doc.source)
        pos = params.position
        before = doc.source[: offset(source, pos.line, pos.character, ls.encoding)]
        items = [
            types.CompletionItem(
                i.label, kind=_ITEM_KINDS[i.kind], detail=i.detail, insert_text=i.insert
            )
            for i in complete(snap.index, before)
        ]
        return types.CompletionList(False, items)

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def symbols(ls: PolicyServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
        snap = ls.snapshots.get(params.text_document.uri)
        if snap is None or not snap.index.modules:
            return []
        source, module = snap.index.modules[0]
        return outline(source, module, ls.range)

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    def formatting(
        ls: PolicyServer, params: types.DocumentFormattingParams
    ) -> list[types.TextEdit] | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        try:
            formatted = format_source(doc.source, params.text_document.uri)
        except PolicyError:
            return None  # `fmt` refuses a file with syntax errors; so does the editor
        if formatted == doc.source:
            return []
        source = Source(doc.source)
        end = ls.range(source, Span(len(doc.source), len(doc.source))).end
        return [types.TextEdit(types.Range(types.Position(0, 0), end), formatted)]

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
    )
    def code_actions(ls: PolicyServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        snap = ls.snapshots.get(uri)
        if snap is None:
            return []
        out = []
        for d in snap.diagnostics:
            if d.source is not snap.source:
                continue
            fix = fix_for(d)
            if fix is None:
                continue
            where = ls.range(d.source, d.span)
            if not _overlaps(where, params.range):
                continue
            edit = types.TextEdit(ls.range(d.source, fix.span), fix.text)
            out.append(
                types.CodeAction(
                    fix.title,
                    kind=types.CodeActionKind.QuickFix,
                    diagnostics=[ls.lsp_diagnostic(d, uri)],
                    edit=types.WorkspaceEdit(changes={uri: [edit]}),
                    is_preferred=True,
                )
            )
        return out

    return server


class _Discard:
    """A writer for the replay: the client has had these answers."""

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


def _overlaps(a: types.Range, b: types.Range) -> bool:
    def key(p: types.Position) -> tuple[int, int]:
        return (p.line, p.character)

    return key(a.start) <= key(b.end) and key(b.start) <= key(a.end)
