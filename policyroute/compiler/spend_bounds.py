"""W012: a bound on a spend attribute that can never hold.

A spend is never below zero, and a calendar hour lies inside its day and a day inside its
month, so for one scope `spend.S.hour <= spend.S.day <= spend.S.month` always. A comparison
below zero, or a conjunction that asks a shorter window for more than it allows a longer one
(`spend.user.hour > 5 and spend.user.day < 2`), never holds: almost always a typo or a
window mixed up, and the rule it stands in is dead or weaker than it reads.
"""

from __future__ import annotations

from ..request.spend import WINDOWS, parse
from ..syntax import ast
from ..syntax.diagnostics import Diagnostic
from ..syntax.source import Source

_LOWER = (">", ">=")
_UPPER = ("<", "<=")


def spend_bounds(expr: ast.Expr, src: Source) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    _walk(expr, src, out)
    return out


def _spend_compare(e: ast.Expr) -> tuple[str, str, str, float] | None:
    """(scope, window, op, value) of a comparison of a spend attribute with a number."""
    if not isinstance(e, ast.Compare) or not isinstance(e.value, ast.Num):
        return None
    got = parse(e.attr.dotted)
    if got is None:
        return None
    return got[0], got[1], e.op, float(e.value.value)


def _text(e: ast.Compare) -> str:
    value = e.value
    shown = value.text if isinstance(value, ast.Num) and value.text else str(value)
    return f"{e.attr.dotted} {e.op} {shown}"


def _walk(expr: ast.Expr, src: Source, out: list[Diagnostic]) -> None:
    stack = [expr]
    while stack:
        e = stack.pop()
        if isinstance(e, ast.And | ast.Or):
            stack.extend(reversed(e.operands))
            if isinstance(e, ast.And):
                _nesting(e, src, out)
        elif isinstance(e, ast.Not):
            stack.append(e.operand)
        elif isinstance(e, ast.Compare):
            got = _spend_compare(e)
            if got is None:
                continue
            _, _, op, v = got
            if (op == "<" and v <= 0) or (op in ("<=", "==") and v < 0):
                out.append(
                    Diagnostic(
                        "W012",
                        f"a spend is never below 0, so '{_text(e)}' never holds",
                        src,
                        e.span,
                        "nothing spent reads 0: to test that, write == 0",
                    )
                )


def _nesting(e: ast.And, src: Source, out: list[Diagnostic]) -> None:
    lower: dict[tuple[str, int], tuple[float, bool, ast.Compare]] = {}
    upper: dict[tuple[str, int], tuple[float, bool, ast.Compare]] = {}
    for operand in e.operands:
        got = _spend_compare(operand)
        if got is None:
            continue
        assert isinstance(operand, ast.Compare)
        scope, window, op, v = got
        at = (scope, WINDOWS.index(window))
        if op in _LOWER or op == "==":
            old = lower.get(at)
            if old is None or v > old[0]:
                lower[at] = (v, op == ">", operand)
        if op in _UPPER or op == "==":
            old = upper.get(at)
            if old is None or v < old[0]:
                upper[at] = (v, op == "<", operand)
    for (scope, short), (a, a_strict, low) in lower.items():
        for (scope2, long), (b, b_strict, high) in upper.items():
            if scope2 != scope or long <= short:
                continue
            if a > b or (a == b and (a_strict or b_strict)):
                out.append(
                    Diagnostic(
                        "W012",
                        f"'{_text(low)}' and '{_text(high)}' never hold together: the "
                        f"{WINDOWS[short]} lies inside the {WINDOWS[long]}, so "
                        f"spend.{scope}.{WINDOWS[short]} is at most spend.{scope}.{WINDOWS[long]}",
                        src,
                        e.span,
                        "check which window each bound means",
                    )
                )
                return
