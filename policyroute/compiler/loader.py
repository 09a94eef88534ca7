"""Files -> checked statements: reading, parsing, and resolving imports.

Imports are relative to the importing file, confined to the main policy's folder, and may
not form a cycle. An imported file contributes its `tier`, `keywords` and `classifier`
declarations (and those of its own imports), at the place of the import.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from ..syntax import ast
from ..syntax.diagnostics import Diagnostic, did_you_mean
from ..syntax.parser import parse
from ..syntax.source import Source, Span
from .checker import Located

MAX_FILE_BYTES = 2 * 1024 * 1024
IMPORTABLE = (ast.TierDecl, ast.KeywordsDecl, ast.ClassifierDecl)


@dataclass(slots=True)
class Loaded:
    statements: list[Located] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    # Shared by nested loads: a file reached along two import paths is read once.
    seen: set[Path] = field(default_factory=set)
    # (kind, name) of declarations that did not parse, in any file loaded.
    broken: list[tuple[str, str]] = field(default_factory=list)

    def imports_failed(self) -> bool:
        return any(d.code in ("E401", "E402", "E403") for d in self.diagnostics)

    def revision(self) -> str:
        """A short hash of every file's content and its place relative to the main file, so
        the same policy has the same revision wherever it is loaded from."""
        h = hashlib.sha256()
        root = self.files[0].parent if self.files else None
        for src in self.sources:
            where = src.name
            if src.path is not None and root is not None and src.path.is_relative_to(root):
                where = src.path.relative_to(root).as_posix()
            h.update(where.encode("utf-8", "surrogatepass") + b"\0")
            h.update(src.text.encode("utf-8", "surrogatepass") + b"\0")
        return h.hexdigest()[:12]


def decode(data: bytes, name: str) -> tuple[Source | None, Diagnostic | None]:
    """Bytes -> Source, or a diagnostic saying why the bytes are not a policy."""
    empty = Source("", name)
    if len(data) > MAX_FILE_BYTES:
        return None, Diagnostic(
            "E005",
            f"file is larger than {MAX_FILE_BYTES:,} bytes, the most a policy may be",
            empty,
            Span(0, 0),
            "split it with import",
        )
    if b"\x00" in data:
        return None, Diagnostic(
            "E005",
            "this is a binary file (it contains NUL bytes), not a policy",
            empty,
            Span(0, 0),
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        prefix = data[: e.start].decode("utf-8", "replace")
        src = Source(prefix + "\ufffd", name)
        return None, Diagnostic(
            "E005",
            f"not UTF-8: byte 0x{data[e.start]:02x} cannot start or continue a character",
            src,
            Span(len(prefix), len(prefix) + 1),
            "save the file as UTF-8",
        )
    if text.startswith("\ufeff"):
        text = text[1:]
    return Source(text, name), None


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def read(path: Path) -> tuple[Source | None, Diagnostic | None]:
    name = _display(path)
    source, problem = _read(path, name)
    if source is not None:
        source.path = path
    return source, problem


def _read(path: Path, name: str) -> tuple[Source | None, Diagnostic | None]:
    try:
        if path.is_dir():
            raise IsADirectoryError("is a folder")
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        reason = e.strerror or str(e)
        return None, Diagnostic(
            "E005", f"cannot read {name}: {reason}", Source("", name), Span(0, 0)
        )
    return decode(data, name)


def load_text(text: str, name: str = "<string>", base_dir: Path | None = None) -> Loaded:
    loaded = Loaded()
    source = Source(text, name)
    _load_source(source, (base_dir or Path.cwd()).resolve(), None, loaded, [])
    return loaded


def load_path(path: Path) -> Loaded:
    loaded = Loaded()
    path = path.resolve()
    source, problem = read(path)
    if source is None:
        assert problem is not None
        loaded.diagnostics.append(problem)
        loaded.files.append(path)
        return loaded
    _load_source(source, path.parent, path, loaded, [])
    return loaded


def _load_source(
    source: Source, root: Path, path: Path | None, loaded: Loaded, stack: list[Path]
) -> None:
    if path is not None:
        loaded.files.append(path)
        loaded.seen.add(path)
    loaded.sources.append(source)
    module, diagnostics = parse(source)
    loaded.diagnostics.extend(diagnostics)
    loaded.broken.extend(module.broken)
    here = path.parent if path is not None else root
    for stmt in module.statements:
        if isinstance(stmt, ast.Import):
            _import(stmt, source, root, here, path, loaded, stack)
        else:
            loaded.statements.append(Located(source, stmt, imported=False))


def _import(
    stmt: ast.Import,
    source: Source,
    root: Path,
    here: Path,
    path: Path | None,
    loaded: Loaded,
    stack: list[Path],
) -> None:
    def problem(code: str, message: str, hint: str | None = None) -> None:
        loaded.diagnostics.append(Diagnostic(code, message, source, stmt.path.span, hint))

    target = (here / stmt.path.value).resolve()
    if not target.is_relative_to(root):
        problem(
            "E402",
            f"import '{stmt.path.value}' leaves the policy's folder",
            "imports stay inside the folder of the policy being loaded",
        )
        return
    chain = [*stack, *([path] if path is not None else [])]
    if target in chain:
        cycle = " -> ".join(_display(p) for p in [*chain[chain.index(target) :], target])
        problem("E403", f"import cycle: {cycle}", "move the shared declarations to a third file")
        return
    if target in loaded.seen:
        return  # imported along another path already: its declarations are in
    if not target.is_file():
        siblings = [p.name for p in target.parent.glob("*.route")] if target.parent.is_dir() else []
        problem(
            "E401",
            f"imported file '{stmt.path.value}' not found",
            did_you_mean(target.name, siblings) or "the path is relative to the importing file",
        )
        return
    imported, err = read(target)
    if imported is None:
        assert err is not None
        loaded.diagnostics.append(err)
        problem("E401", f"cannot import '{stmt.path.value}': see the error in that file")
        return
    sub = Loaded(seen=loaded.seen)
    _load_source(imported, root, target, sub, chain)
    loaded.files.extend(sub.files)
    loaded.sources.extend(sub.sources)
    loaded.diagnostics.extend(sub.diagnostics)
    loaded.broken.extend(sub.broken)
    for located in sub.statements:
        if isinstance(located.node, IMPORTABLE):
            loaded.statements.append(Located(located.source, located.node, imported=True))
