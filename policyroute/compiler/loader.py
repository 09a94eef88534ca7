"""Files -> checked statements: reading, parsing, and resolving imports.

Imports are relative to the importing file, confined to the main policy's folder, and may
not form a cycle. An imported file contributes its `tier`, `keywords` and `classifier`
declarations (and those of its own imports), at the place of the import.
"""

from __future__ import annotations

import errno
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..syntax import ast
from ..syntax.diagnostics import Diagnostic, did_you_mean, hint_budget
from ..syntax.limits import MAX_FILE_BYTES, MAX_FILES, MAX_IMPORTS_PER_FILE, MAX_POLICY_BYTES
from ..syntax.parser import parse
from ..syntax.source import Source, Span, UnreadableFile, read_regular_file
from .check import Located

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
    # Shared too: `.route` names per folder, for did-you-mean hints (listed once per load,
    # not once per missing import), and the characters read so far.
    listings: dict[Path, list[str]] = field(default_factory=dict)
    total_chars: list[int] = field(default_factory=lambda: [0])

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
        return None, _too_large(name)
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


def _too_large(name: str) -> Diagnostic:
    return Diagnostic(
        "E005",
        f"file is larger than {MAX_FILE_BYTES:,} bytes, the most a policy may be",
        Source("", name),
        Span(0, 0),
        "split it with import",
    )


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


def source_of(path: Path, data: bytes) -> Source | None:
    """What `read(path)` gives when the file holds `data` (None if that is not a policy's
    text): the store checks what a load compiled against bytes it read itself."""
    source, _ = decode(data, _display(path))
    if source is not None:
        source.path = path
    return source


def _read(path: Path, name: str) -> tuple[Source | None, Diagnostic | None]:
    try:
        data = read_regular_file(path, MAX_FILE_BYTES)
    except UnreadableFile as e:
        if e.errno == errno.EFBIG:
            return None, _too_large(name)
        reason = e.strerror or str(e)
        return None, Diagnostic(
            "E005", f"cannot read {name}: {reason}", Source("", name), Span(0, 0)
        )
    return decode(data, name)


def _resolve(path: Path) -> Path:
    """`path` made absolute with symlinks resolved; one that cannot be (a symlink loop, a
    name too long) is kept as given, and reading it reports why."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):  # RuntimeError: a symlink loop before 3.13
        return Path(os.path.abspath(path))


def load_text(text: str, name: str = "<string>", base_dir: Path | None = None) -> Loaded:
    loaded = Loaded()
    source = Source(text, name)
    with hint_budget():
        _load_source(source, _resolve(base_dir or Path.cwd()), None, loaded, [])
    return loaded


def load_path(path: Path) -> Loaded:
    loaded = Loaded()
    path = _resolve(path)
    source, problem = read(path)
    if source is None:
        assert problem is not None
        loaded.diagnostics.append(problem)
        loaded.files.append(path)
        return loaded
    with hint_budget():
        _load_source(source, path.parent, path, loaded, [])
    return loaded


def _load_source(
    source: Source, root: Path, path: Path | None, loaded: Loaded, stack: list[Path]
) -> None:
    if path is not None:
        loaded.files.append(path)
        loaded.seen.add(path)
    loaded.sources.append(source)
    loaded.total_chars[0] += len(source.text)
    module, diagnostics = parse(source)
    loaded.diagnostics.extend(diagnostics)
    loaded.broken.extend(module.broken)
    here = path.parent if path is not None else root
    imports = 0
    for stmt in module.statements:
        if isinstance(stmt, ast.Import):
            imports += 1
            if imports > MAX_IMPORTS_PER_FILE:
                if imports == MAX_IMPORTS_PER_FILE + 1:
                    loaded.diagnostics.append(
                        Diagnostic(
                            "E008",
                            f"more than {MAX_IMPORTS_PER_FILE} imports in one file",
                            source,
                            stmt.path.span,
                            "gather shared declarations into fewer files",
                        )
                    )
                continue
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

    shown = _shorten(stmt.path.value)
    try:
        target = (here / stmt.path.value).resolve()
    except (OSError, RuntimeError, ValueError) as e:
        # A symlink loop (RuntimeError before Python 3.13), a name too long for the system.
        reason = "a symbolic link loop" if isinstance(e, RuntimeError) else _reason(e)
        problem("E401", f"cannot import '{shown}': {reason}", None)
        return
    if not target.is_relative_to(root):
        problem(
            "E402",
            f"import '{shown}' leaves the policy's folder",
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
    if len(loaded.seen) >= MAX_FILES:
        problem("E008", f"more than {MAX_FILES} files in one policy", "import fewer files")
        return
    try:
        exists = target.exists()
    except (OSError, ValueError) as e:
        problem("E401", f"cannot import '{shown}': {_reason(e)}", None)
        return
    if not exists:
        problem(
            "E401",
            f"imported file '{shown}' not found",
            did_you_mean(target.name, _siblings(target.parent, loaded))
            or "the path is relative to the importing file",
        )
        return
    imported, err = read(target)
    if imported is None:
        assert err is not None
        loaded.diagnostics.append(err)
        problem("E401", f"cannot import '{shown}': see the error in that file")
        return
    if loaded.total_chars[0] + len(imported.text) > MAX_POLICY_BYTES:
        problem(
            "E008",
            f"with this import the policy is larger than {MAX_POLICY_BYTES:,} characters",
            "a policy and its imports together stay under that",
        )
        return
    sub = Loaded(seen=loaded.seen, listings=loaded.listings, total_chars=loaded.total_chars)
    _load_source(imported, root, target, sub, chain)
    loaded.files.extend(sub.files)
    loaded.sources.extend(sub.sources)
    loaded.diagnostics.extend(sub.diagnostics)
    loaded.broken.extend(sub.broken)
    for located in sub.statements:
        if isinstance(located.node, IMPORTABLE):
            loaded.statements.append(Located(located.source, located.node, imported=True))


def _siblings(folder: Path, loaded: Loaded) -> list[str]:
    names = loaded.listings.get(folder)
    if names is None:
        try:
            with os.scandir(folder) as entries:
                # A hint needs only a few candidates; a huge folder is not listed whole.
                names = [e.name for _, e in zip(range(1_000), entries, strict=False)]
        except OSError:
            names = []
        names = [n for n in names if n.endswith(".route")]
        loaded.listings[folder] = names
    return names


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror[:1].lower() + e.strerror[1:]
    return str(e)


def _shorten(text: str, width: int = 80) -> str:
    """A user's string quoted in a message: long ones cut, so a message stays a line."""
    return text if len(text) <= width else text[: width - 1] + "\N{HORIZONTAL ELLIPSIS}"
