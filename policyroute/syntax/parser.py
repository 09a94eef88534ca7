"""Text -> AST. Lark parses (this module); a transformer builds typed nodes with spans
(to_ast.py); errors become diagnostics (messages.py).

All errors of a file are reported in one run: when the whole file does not parse, it is cut
into statements and each statement is parsed alone (recovery.py), so one broken rule does
not hide the next.
"""

from __future__ import annotations

import itertools
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark
from lark.exceptions import (
    UnexpectedInput,
    VisitError,
)

from . import ast
from .diagnostics import Diagnostic
from .messages import _problem_from, _SyntaxProblem
from .recovery import (
    _DECLARES,
    STATEMENT_SCAN,
    _bounded,
    _code_length,
    _nesting_problem,
    _statement_starts,
)
from .source import Source, Span
from .to_ast import _ToAst, _ToAstFlat, number_problem, parse_number


def _grammar_text() -> str:
    # Installed: the wheel carries the grammar inside the package. From a checkout (or an
    # editable install), it is the repository's grammar/route.lark.
    packaged = resources.files("policyroute").joinpath("_grammar/route.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parents[2] / "grammar" / "route.lark").read_text("utf-8")


def _cache_path(kind: str) -> str | bool:
    """Where Lark keeps its analysed grammar between runs: building the LALR tables takes
    about 0.2 s, most of a `check`'s start-up, and loading them takes a few milliseconds.

    Lark stamps the file with a hash of the grammar, options and Lark version and rebuilds on
    any mismatch. The file is a pickle, so it lives in the user's own cache folder, never in
    the shared temporary folder; without a writable one there is no cache.
    """
    import os

    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(root, "policyroute")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return False
    if not os.access(folder, os.W_OK):
        return False
    return os.path.join(folder, f"grammar-{kind}.lark-cache")


@cache
def _lark() -> Lark:
    return Lark(
        _grammar_text(),
        parser="lalr",
        lexer="contextual",
        start=["start", "statement"],
        maybe_placeholders=True,
        cache=_cache_path("statement"),
    )


@cache
def _lark_direct() -> Lark:
    # The whole-file fast path: the transformer runs inside the LALR parser, so no parse tree
    # is built (about twice as fast on large policies). Offsets need no shift there.
    return Lark(
        _grammar_text(),
        parser="lalr",
        lexer="contextual",
        start="start",
        maybe_placeholders=True,
        transformer=_ToAst(base=0),
        cache=_cache_path("direct"),
    )


def _parse_chunk(
    source: Source, start: int, end: int, rule: str
) -> tuple[Any, _SyntaxProblem | None]:
    chunk = source.text[start:end]
    try:
        if rule == "start":
            return _lark_direct().parse(chunk), None
        tree = _lark().parse(chunk, start=rule)
        return _ToAstFlat(base=start).transform(tree), None
    except UnexpectedInput as e:
        # A statement cut short ends where its code ends, not at the end of the file.
        code_end = start + _code_length(chunk)
        problem = _problem_from(e, source.text[: max(code_end, start)], start)
        if source.text[end:].strip() and problem.message.startswith("unexpected end of file"):
            problem.message = "the statement ends early" + problem.message[22:]
        return None, problem
    except _SyntaxProblem as e:
        return None, e
    except VisitError as e:
        if isinstance(e.orig_exc, _SyntaxProblem):
            return None, e.orig_exc
        if isinstance(e.orig_exc, RecursionError):
            return None, _SyntaxProblem("E006", "expression nested too deep", start, start + 1)
        raise
    except RecursionError:
        return None, _SyntaxProblem("E006", "expression nested too deep", start, start + 1)


def parse(source: Source) -> tuple[ast.Module, list[Diagnostic]]:
    """Parse a file: the statements that parsed, and a diagnostic for each that did not."""
    text = source.text

    def diag(p: _SyntaxProblem) -> Diagnostic:
        return Diagnostic(p.code, p.message, source, Span(p.start, max(p.end, p.start)), p.hint)

    nesting = _nesting_problem(text)
    if nesting is not None:
        return ast.Module(()), [diag(nesting)]
    module, whole = _parse_chunk(source, 0, len(text), "start")
    if whole is None:
        assert isinstance(module, ast.Module)
        return _bounded(module, [], diag)
    # Recovery: parse statement by statement and keep every statement that parses.
    starts = _statement_starts(text)
    bounds = [0, *starts, len(text)] if not starts or starts[0] != 0 else [*starts, len(text)]
    statements: list[ast.Statement] = []
    diagnostics: list[Diagnostic] = []
    broken: list[tuple[str, str]] = []
    for lo, hi in itertools.pairwise(bounds):
        chunk = text[lo:hi]
        if not chunk.strip() or not re.sub(r"#[^\n]*", "", chunk).strip():
            continue
        node, problem = _parse_chunk(source, lo, hi, "statement")
        if problem is not None:
            diagnostics.append(diag(problem))
            named = _DECLARES.search(re.sub(r"#[^\n]*", "", chunk))
            if named is not None:
                broken.append((named.group(1), named.group(2)))
        elif node is not None:
            statements.append(node)
    if not diagnostics:  # the whole-file error did not reproduce per statement
        diagnostics.append(diag(whole))
    return _bounded(ast.Module(tuple(statements), broken=tuple(broken)), diagnostics, diag)


__all__ = [
    "STATEMENT_SCAN",
    "number_problem",
    "parse",
    "parse_number",
]
