"""Values, conditions and expressions printed as `.route` text (the formatter's pieces).

Each function prints one AST node the one way `policyroute fmt` writes it; learn uses the
same functions for the policies it writes. The layout of whole statements and files, with
their alignment, is formatter.py's.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import ast

INDENT = "  "


def fmt_str(value: str) -> str:
    out = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{out}"'


def fmt_num(num: ast.Num) -> str:
    if num.text:
        return num.text  # the author's spelling (60k, 60_000) parses to the same value
    v = num.value
    return str(v) if isinstance(v, int) else repr(v)


def fmt_value(v: ast.Value) -> str:
    if isinstance(v, ast.Str):
        return fmt_str(v.value)
    if isinstance(v, ast.Bool):
        return "true" if v.value else "false"
    return fmt_num(v)


def fmt_regex(r: ast.Regex) -> str:
    # The AST holds the pattern with `\/` unescaped; escape every bare slash again, leaving
    # other escape pairs (`\\`, `\d`) untouched.
    out: list[str] = []
    i = 0
    p = r.pattern
    while i < len(p):
        c = p[i]
        if c == "\\" and i + 1 < len(p):
            out.append(p[i : i + 2])
            i += 2
            continue
        out.append("\\/" if c == "/" else c)
        i += 1
    return "/" + "".join(out) + "/" + r.flags


def _list(items: Sequence[str]) -> str:
    return "[" + ", ".join(items) + "]"


def fmt_condition(c: ast.Condition) -> str:
    a = c.attr.dotted
    if isinstance(c, ast.Compare):
        return f"{a} {c.op} {fmt_value(c.value)}"
    if isinstance(c, ast.In):
        return f"{a} {'not in' if c.negated else 'in'} {_list([fmt_value(v) for v in c.values])}"
    if isinstance(c, ast.Contains):
        t = c.target
        if isinstance(t, ast.Str):
            return f"{a} contains {fmt_str(t.value)}"
        shown = t.name if isinstance(t, ast.Ident) else _list([fmt_str(p.value) for p in t.phrases])
        return f"{a} contains {c.mode} {shown}"
    if isinstance(c, ast.Matches):
        return f"{a} matches {fmt_regex(c.regex)}"
    if isinstance(c, ast.Has):
        return f"has {a}"
    return a


def fmt_expr(e: ast.Expr) -> str:
    """One line, with only the parentheses the AST needs to read back identically."""
    if isinstance(e, ast.Or):
        return " or ".join(_operand(x, i, ast.Or) for i, x in enumerate(e.operands))
    if isinstance(e, ast.And):
        return " and ".join(_operand(x, i, ast.And) for i, x in enumerate(e.operands))
    if isinstance(e, ast.Not):
        inner = e.operand
        shown = fmt_expr(inner)
        return f"not ({shown})" if isinstance(inner, (ast.And, ast.Or)) else f"not {shown}"
    return fmt_condition(e)


def _operand(x: ast.Expr, index: int, parent: type) -> str:
    shown = fmt_expr(x)
    # `a or (b or c)` is a nested Or in the AST (the parser flattens only the left side), so
    # a later operand of the parent's own kind keeps its parentheses; `or` inside `and` too.
    if isinstance(x, ast.Or) and (parent is ast.And or index > 0):
        return f"({shown})"
    if isinstance(x, ast.And) and parent is ast.And and index > 0:
        return f"({shown})"
    return shown


def wrap_expr(e: ast.Expr, width: int) -> list[str]:
    """Lines of a condition that does not fit in `width`: break before top-level `or`, then
    before the `and`s of an operand that is still too long."""
    one = fmt_expr(e)
    if len(one) <= width:
        return [one]
    if isinstance(e, ast.Or):
        lines: list[str] = []
        for i, x in enumerate(e.operands):
            piece = _operand(x, i, ast.Or)
            prefix = "" if i == 0 else "or "
            if isinstance(x, ast.And) and len(prefix + piece) > width:
                sub = _and_lines(x)
                lines.append(prefix + sub[0])
                lines.extend(" " * len(prefix) + INDENT + s for s in sub[1:])
            else:
                lines.append(prefix + piece)
        return lines
    if isinstance(e, ast.And):
        return _and_lines(e)
    return [one]


def _and_lines(e: ast.And) -> list[str]:
    return [("" if i == 0 else "and ") + _operand(x, i, ast.And) for i, x in enumerate(e.operands)]


def fmt_options(options: Sequence[ast.RuleOption]) -> str:
    out: list[str] = []
    for o in options:
        if isinstance(o, ast.MaxTokensOption):
            out.append(f"max_tokens {fmt_num(o.value)}")
        elif isinstance(o, ast.EscalateNeverOption):
            out.append("escalate never")
        else:
            out.append(f"escalate max {fmt_num(o.value)}")
    return "".join(" " + s for s in out)
