"""Document symbols: the outline of one file, a symbol per statement."""

from __future__ import annotations

from collections.abc import Callable

from lsprotocol import types

from ..syntax import ast
from ..syntax.source import Source, Span

K = types.SymbolKind


def _entry(stmt: ast.Statement) -> tuple[str, str, types.SymbolKind, Span]:
    """(name, detail, kind, selection span) of a statement."""
    if isinstance(stmt, ast.PolicyDecl):
        return stmt.name.value, "policy", K.Namespace, stmt.name.span
    if isinstance(stmt, ast.Import):
        return stmt.path.value, "import", K.File, stmt.path.span
    if isinstance(stmt, ast.TierDecl):
        return stmt.name.name, f"tier = {stmt.model.value}", K.Class, stmt.name.span
    if isinstance(stmt, ast.KeywordsDecl):
        return stmt.name.name, f"keywords ({len(stmt.phrases)})", K.Array, stmt.name.span
    if isinstance(stmt, ast.ClassifierDecl):
        return stmt.name.name, f"classifier using {stmt.tier.name}", K.Interface, stmt.name.span
    if isinstance(stmt, ast.RuleDecl):
        return stmt.name.name, f"rule -> {stmt.tier.name}", K.Function, stmt.name.span
    if isinstance(stmt, ast.DefaultDecl):
        return "default", f"-> {stmt.tier.name}", K.Function, stmt.span
    if isinstance(stmt, ast.EscalateDecl):
        on = ", ".join(t.name.name for t in stmt.triggers)
        return "escalate", f"on {on}", K.Event, stmt.span
    if isinstance(stmt, ast.TestDecl):
        return stmt.name.value, f"test -> {stmt.tier.name}", K.Method, stmt.name.span
    if isinstance(stmt, ast.ShadowDecl):
        return "shadow", f"{stmt.tier.name} sample {stmt.percent.value}%", K.Event, stmt.span
    return "sticky", "conversations", K.Property, stmt.span


def outline(
    source: Source, module: ast.Module, to_range: Callable[[Source, Span], types.Range]
) -> list[types.DocumentSymbol]:
    out = []
    for stmt in module.statements:
        name, detail, kind, selection = _entry(stmt)
        whole = to_range(source, stmt.span)
        chosen = to_range(source, selection)
        out.append(types.DocumentSymbol(name or "(unnamed)", kind, whole, chosen, detail))
    return out
