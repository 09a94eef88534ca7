"""Error recovery: when a file does not parse whole, it is cut into statements at the
language's statement keywords and each is parsed alone, so one broken rule does not hide the
next; statements too deep or too large to go further are dropped and reported."""

from __future__ import annotations

import re
from collections.abc import Callable

from . import ast
from .diagnostics import Diagnostic
from .limits import MAX_CONDITION_TESTS, MAX_NESTING
from .messages import _SyntaxProblem


def _shape_problem(statement: ast.Statement) -> _SyntaxProblem | None:
    """A rule condition nested deeper than MAX_NESTING, or with more tests than
    MAX_CONDITION_TESTS. Walked without recursion; every later stage (checker, atoms,
    diagram, analysis, formatter) recurses over conditions and may rely on both bounds."""
    if not isinstance(statement, ast.RuleDecl):
        return None
    tests = 0
    stack: list[tuple[ast.Expr, int]] = [(statement.condition, 1)]
    while stack:
        expr, depth = stack.pop()
        if depth > MAX_NESTING:
            return _SyntaxProblem(
                "E006",
                f"condition nested more than {MAX_NESTING} deep",
                expr.span.start,
                expr.span.start + 1,
                "split the condition into simpler rules",
            )
        if isinstance(expr, (ast.And, ast.Or)):
            stack.extend((op, depth + 1) for op in reversed(expr.operands))
        elif isinstance(expr, ast.Not):
            stack.append((expr.operand, depth + 1))
        else:
            tests += 1
            if tests > MAX_CONDITION_TESTS:
                return _SyntaxProblem(
                    "E008",
                    f"more than {MAX_CONDITION_TESTS} tests in one condition",
                    expr.span.start,
                    expr.span.end,
                    "split the rule into several rules, or use `in [...]` and keyword sets",
                )
    return None


# Splits a file into statements: skips comments, strings and regexes (which may contain
# keywords), and treats a statement keyword as a start unless it follows a dot (`user.tier`)
# or is the `escalate` of a rule option.
STATEMENT_SCAN = re.compile(
    r"""
    (?P<comment>\#[^\n]*)
  | (?P<string>"(?:\\.|[^"\\\n])*"?)
  | (?P<regex>/(?:\\.|[^/\\\n])*/?)
  | (?P<dotted>\.\s*[A-Za-z_][A-Za-z0-9_]*)
  | (?P<option>\bescalate\s+(?:never|max)\b)
  | (?P<keyword>\b(?:policy|import|tier|keywords|classifier|rule|default|escalate|test|shadow|sticky)\b)
  | (?P<open>[(\[{])
  | (?P<close>[)\]}])
    """,
    re.VERBOSE,
)


def _statement_starts(text: str) -> list[int]:
    starts = []
    for m in STATEMENT_SCAN.finditer(text):
        if m.lastgroup == "keyword":
            starts.append(m.start())
    return starts


def _nesting_problem(text: str) -> _SyntaxProblem | None:
    depth = 0
    for m in STATEMENT_SCAN.finditer(text):
        kind = m.lastgroup
        if kind == "open":
            depth += 1
            if depth > MAX_NESTING:
                return _SyntaxProblem(
                    "E006",
                    f"brackets nested more than {MAX_NESTING} deep",
                    m.start(),
                    m.end(),
                    "split the condition into simpler rules",
                )
        elif kind == "close":
            depth = max(0, depth - 1)
        elif kind == "keyword":
            depth = 0
    for m in re.finditer(rf"(?:\bnot\s+){{{MAX_NESTING + 1},}}", text):
        return _SyntaxProblem(
            "E006", f"more than {MAX_NESTING} 'not' in a row", m.start(), m.end(), None
        )
    return None


def _code_length(chunk: str) -> int:
    """Length of `chunk` without its trailing white space and full-line comments. Linear:
    a regex for this (`(?:\\s+|#.*)*$`) backtracks exponentially on long white space."""
    end = len(chunk)
    while True:
        while end and chunk[end - 1].isspace():
            end -= 1
        start = chunk.rfind("\n", 0, end) + 1
        line = chunk[start:end].lstrip()
        if not line.startswith("#"):
            return end
        end = start


def _bounded(
    module: ast.Module,
    diagnostics: list[Diagnostic],
    diag: Callable[[_SyntaxProblem], Diagnostic],
) -> tuple[ast.Module, list[Diagnostic]]:
    """The module without statements too deep or too large to go further, each reported."""
    kept: list[ast.Statement] = []
    broken = list(module.broken)
    for statement in module.statements:
        problem = _shape_problem(statement)
        if problem is None:
            kept.append(statement)
        else:
            diagnostics.append(diag(problem))
            if isinstance(statement, _DECLARATIONS):  # its uses are not "unknown"
                broken.append((_DECLARED_KIND[type(statement)], statement.name.name))
    if len(kept) == len(module.statements):
        return module, diagnostics
    return ast.Module(tuple(kept), broken=tuple(broken)), diagnostics


# The name a statement that failed to parse declares, so that one mistake is one error.
_DECLARES = re.compile(r"^\s*(tier|keywords|classifier|rule)\s+([A-Za-z_][A-Za-z0-9_]*)")
_DECLARATIONS = (ast.TierDecl, ast.KeywordsDecl, ast.ClassifierDecl, ast.RuleDecl)
_DECLARED_KIND: dict[type, str] = {
    ast.TierDecl: "tier",
    ast.KeywordsDecl: "keywords",
    ast.ClassifierDecl: "classifier",
    ast.RuleDecl: "rule",
}
