"""Every declaration and every use of a name in a loaded policy, with the file it stands in.

Go to definition, find references, hover and rename-free navigation all read this: a use is
resolved to the declaration the checker would bind it to (the main file's own, or one an
import brought in), so a tier used in `policies/a.route` and declared in
`policies/shared/tiers.route` is one symbol.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..compiler.loader import Loaded
from ..syntax import ast
from ..syntax.parser import parse
from ..syntax.source import Source, Span

# Kinds of named things: those a name may be declared as, and attributes and triggers
# (known to the language, declared nowhere).
DECLARED = ("tier", "keywords", "classifier", "rule")


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One name in the text: a declaration (`is_decl`) or a use of it."""

    kind: str  # tier, keywords, classifier, rule, import, attribute, trigger
    name: str
    source: Source
    span: Span
    is_decl: bool = False
    node: ast.Statement | None = None  # the declaring statement, for a declaration


@dataclass(slots=True)
class Index:
    # Declarations the main file sees (its own and imported), by (kind, name): the first one,
    # as the checker binds (a second is an E101).
    decls: dict[tuple[str, str], Occurrence] = field(default_factory=dict)
    # Every occurrence in every file of the policy, per file.
    by_source: dict[int, list[Occurrence]] = field(default_factory=dict)
    modules: list[tuple[Source, ast.Module]] = field(default_factory=list)

    def at(self, source: Source, offset: int) -> Occurrence | None:
        """The innermost occurrence under a character offset of a file."""
        best: Occurrence | None = None
        for occ in self.by_source.get(id(source), ()):
            if occ.span.start <= offset <= occ.span.end and (
                best is None or occ.span.end - occ.span.start < best.span.end - best.span.start
            ):
                best = occ
        return best

    def definition(self, occ: Occurrence) -> Occurrence | None:
        if occ.is_decl:
            return occ
        return self.decls.get((occ.kind, occ.name))

    def uses(self) -> Iterator[Occurrence]:
        for occs in self.by_source.values():
            yield from (o for o in occs if not o.is_decl)

    def names(self, kind: str) -> list[str]:
        return [name for k, name in self.decls if k == kind]


def build_index(loaded: Loaded) -> Index:
    index = Index()
    main = loaded.sources[0] if loaded.sources else None
    for source in loaded.sources:
        module, _ = parse(source)
        index.modules.append((source, module))
        occs: list[Occurrence] = []
        for stmt in module.statements:
            occs.extend(_statement(stmt, source))
        index.by_source[id(source)] = occs
    # The main file's declarations and those of its imports; rules only of the main file.
    for source, _module in index.modules:
        for occ in index.by_source[id(source)]:
            if occ.is_decl and (occ.kind != "rule" or source is main):
                index.decls.setdefault((occ.kind, occ.name), occ)
    # `urgency.label` reads classifier `urgency`: an attribute whose head names a classifier
    # is a use of it.
    classifiers = {name for kind, name in index.decls if kind == "classifier"}
    for occs in index.by_source.values():
        extra = [
            Occurrence("classifier", o.name.split(".")[0], o.source, _head(o))
            for o in occs
            if o.kind == "attribute" and o.name.split(".")[0] in classifiers
        ]
        occs.extend(extra)
    return index


def _head(o: Occurrence) -> Span:
    return Span(o.span.start, o.span.start + len(o.name.split(".")[0]))


def _decl(kind: str, ident: ast.Ident, source: Source, node: ast.Statement) -> Occurrence:
    return Occurrence(kind, ident.name, source, ident.span, True, node)


def _use(kind: str, ident: ast.Ident, source: Source) -> Occurrence:
    return Occurrence(kind, ident.name, source, ident.span)


def _statement(stmt: ast.Statement, source: Source) -> Iterator[Occurrence]:
    if isinstance(stmt, ast.Import):
        yield Occurrence("import", stmt.path.value, source, stmt.path.span)
    elif isinstance(stmt, ast.TierDecl):
        yield _decl("tier", stmt.name, source, stmt)
    elif isinstance(stmt, ast.KeywordsDecl):
        yield _decl("keywords", stmt.name, source, stmt)
    elif isinstance(stmt, ast.ClassifierDecl):
        yield _decl("classifier", stmt.name, source, stmt)
        yield _use("tier", stmt.tier, source)
    elif isinstance(stmt, ast.RuleDecl):
        yield _decl("rule", stmt.name, source, stmt)
        yield from _expr(stmt.condition, source)
        yield _use("tier", stmt.tier, source)
    elif isinstance(stmt, ast.DefaultDecl):
        # The keyword is not in the statement's span (its span starts at the tier).
        at = source.text.rfind("default", 0, stmt.span.start + 1)
        word = Span(at, at + len("default")) if at != -1 else stmt.tier.span
        yield Occurrence("rule", "default", source, word, True, stmt)
        yield _use("tier", stmt.tier, source)
    elif isinstance(stmt, ast.EscalateDecl):
        for trigger in stmt.triggers:
            yield Occurrence("trigger", trigger.name.name, source, trigger.name.span)
    elif isinstance(stmt, ast.TestDecl):
        for ta in stmt.attrs:
            yield Occurrence("attribute", ta.attr.dotted, source, ta.attr.span)
        yield _use("tier", stmt.tier, source)
        if stmt.by_rule is not None:
            yield _use("rule", stmt.by_rule, source)
    elif isinstance(stmt, ast.ShadowDecl):
        yield _use("tier", stmt.tier, source)


def _expr(expr: ast.Expr, source: Source) -> Iterator[Occurrence]:
    if isinstance(expr, (ast.And, ast.Or)):
        for operand in expr.operands:
            yield from _expr(operand, source)
    elif isinstance(expr, ast.Not):
        yield from _expr(expr.operand, source)
    else:
        yield Occurrence("attribute", expr.attr.dotted, source, expr.attr.span)
        if isinstance(expr, ast.Contains) and isinstance(expr.target, ast.Ident):
            yield _use("keywords", expr.target, source)


def import_target(occ: Occurrence) -> Path | None:
    """The file an import names, resolved beside the importing file."""
    if occ.kind != "import" or occ.source.path is None:
        return None
    try:
        return (occ.source.path.parent / occ.name).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
