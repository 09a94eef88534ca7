"""AST -> canonical `.route` text: `policyroute fmt`.

One layout for every policy, so a review diff shows what changed and never how it was typed:

- statements keep the author's order; nothing is sorted;
- a block of consecutive rules (no other statement between them; blank lines and comments
  do not break it) pads rule
  names so conditions start in one column and aligns `->`; a condition too long for the line
  is wrapped before each top-level `or` (then `and`), continuation lines indented to the
  condition column; when even the last line leaves no room for `->`, the arrow goes on a
  line of its own at the block's arrow column;
- consecutive tiers align their names, models and properties; consecutive keyword sets
  align `=` and wrap their lists under the `[`;
- comments are recovered from the source by position (the AST has none): full-line comments
  stay before the statement they preceded, a trailing comment stays on its statement's last
  line, and a comment inside a statement that is reflowed moves just above the statement
  (inside a test block it stays with its attribute); blank lines between statements
  collapse to at most one.

The printer preserves the AST exactly: `parse(format(text)) == parse(text)` (equality ignores
spans), which the tests check on every policy in `policies/` and on generated ones.

The stages: comments.py recovers the comments, printer.py prints values and conditions,
and this module lays out statements, blocks and the file.
"""

from __future__ import annotations

from . import ast
from .comments import Comment, Item, Stmt, blank_before, item_end, statement_items
from .diagnostics import PolicyError
from .parser import parse
from .printer import (
    INDENT,
    fmt_expr,
    fmt_num,
    fmt_options,
    fmt_regex,
    fmt_str,
    fmt_value,
    wrap_expr,
)
from .source import Source

LINE_LIMIT = 100


def _tier_lines(block: list[ast.TierDecl]) -> list[str]:
    name_w = max(len(t.name.name) for t in block)
    model_w = max(len(fmt_str(t.model.value)) for t in block)
    props = [[f"{p.name.name} {fmt_num(p.value)}" for p in t.props] for t in block]
    cols = max((len(p) for p in props), default=0)
    widths = [max((len(p[j]) for p in props if j < len(p)), default=0) for j in range(cols)]
    out = []
    for t, ps in zip(block, props, strict=True):
        cells = [p.ljust(widths[j]) if j < len(ps) - 1 else p for j, p in enumerate(ps)]
        body = "  ".join(cells)
        braces = "{ " + body + " }" if body else "{ }"
        head = f"tier {t.name.name.ljust(name_w)} = {fmt_str(t.model.value).ljust(model_w)} "
        out.append(head + braces)
    return out


def _keywords_lines(node: ast.KeywordsDecl, name_w: int) -> list[str]:
    head = f"keywords {node.name.name.ljust(name_w)} = ["
    return _fill_list(head, [fmt_str(p.value) for p in node.phrases], "]")


def _fill_list(head: str, items: list[str], close: str) -> list[str]:
    """`head` then the items comma-separated, wrapped under the first item."""
    if not items:
        return [head + close]
    indent = " " * len(head)
    lines: list[str] = []
    cur = head
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 else close)
        if cur not in (head, indent) and len(cur) + 1 + len(piece) > LINE_LIMIT:
            lines.append(cur.rstrip())
            cur = indent
        cur += piece if cur in (head, indent) else " " + piece
    lines.append(cur)
    return lines


def _rule_block(block: list[ast.RuleDecl | ast.DefaultDecl]) -> list[list[str]]:
    heads = [f"rule {n.name.name}:" if isinstance(n, ast.RuleDecl) else "default" for n in block]
    cond_col = max(len(h) for h in heads) + 1
    tails = [f"-> {n.tier.name}{fmt_options(n.options)}" for n in block]
    # The arrow column must leave room for the longest tail, so conditions wrap to fit before
    # it; a last line that still does not fit gets its arrow on a line of its own.
    cap = max(cond_col + 22, min(LINE_LIMIT - len(t) for t in tails))
    conds: list[list[str]] = []
    for n in block:
        if isinstance(n, ast.DefaultDecl):
            conds.append([])
            continue
        conds.append(wrap_expr(n.condition, cap - 2 - cond_col))
    arrow = cond_col
    for lines in conds:
        if lines and cond_col + len(lines[-1]) + 2 <= cap:
            arrow = max(arrow, cond_col + len(lines[-1]) + 2)
    out: list[list[str]] = []
    for head, lines, tail in zip(heads, conds, tails, strict=True):
        if not lines:
            out.append([head.ljust(arrow) + tail])
            continue
        text = [head.ljust(cond_col) + lines[0]]
        text.extend(" " * cond_col + ln for ln in lines[1:])
        if len(text[-1]) + 2 <= arrow:
            text[-1] = text[-1].ljust(arrow) + tail
        else:
            text.append(" " * arrow + tail)
        out.append(text)
    return out


def _classifier_lines(node: ast.ClassifierDecl) -> list[str]:
    lines = [f"classifier {node.name.name} using {node.tier.name}"]
    lines.extend(_fill_list(INDENT + "labels [", [fmt_str(x.value) for x in node.labels], "]"))
    lines.append(f"{INDENT}prompt {fmt_str(node.prompt.value)}")
    return lines


def _escalate_line(node: ast.EscalateDecl) -> str:
    trig = []
    for t in node.triggers:
        if t.op is not None and t.threshold is not None:
            trig.append(f"{t.name.name} {t.op} {fmt_num(t.threshold)}")
        else:
            trig.append(t.name.name)
    tail = f" max {fmt_num(node.max_steps)}" if node.max_steps is not None else ""
    return "escalate on " + ", ".join(trig) + tail


def _test_lines(st: Stmt) -> list[str]:
    node = st.node
    assert isinstance(node, ast.TestDecl)
    by = f" by {node.by_rule.name}" if node.by_rule is not None else ""
    close = f"}} -> {node.tier.name}{by}"
    if not node.attrs and not st.inner:
        return [f"test {fmt_str(node.name.value)} {{ {close}"]
    lines = [f"test {fmt_str(node.name.value)} {{"]
    width = max((len(a.attr.dotted) for a in node.attrs), default=0)
    for k, a in enumerate(node.attrs):
        lines.extend(INDENT + c for c in st.inner.get(k, []))
        line = f"{INDENT}{a.attr.dotted.ljust(width)} = {fmt_value(a.value)}"
        if k in st.inner_trailing:
            line += "  " + st.inner_trailing[k]
        lines.append(line)
    lines.extend(INDENT + c for c in st.inner.get(len(node.attrs), []))
    lines.append(close)
    return lines


def _single(node: ast.Statement) -> list[str]:
    if isinstance(node, ast.PolicyDecl):
        return [f"policy {fmt_str(node.name.value)}"]
    if isinstance(node, ast.Import):
        return [f"import {fmt_str(node.path.value)}"]
    if isinstance(node, ast.ClassifierDecl):
        return _classifier_lines(node)
    if isinstance(node, ast.EscalateDecl):
        return [_escalate_line(node)]
    if isinstance(node, ast.ShadowDecl):
        return [f"shadow {node.tier.name} sample {fmt_num(node.percent)}%"]
    if isinstance(node, ast.StickyDecl):
        unit = f" {node.unit.name}" if node.unit is not None else ""
        return [f"sticky conversations {fmt_num(node.window)}{unit}"]
    raise AssertionError(f"not a single statement: {type(node).__name__}")


# -- the whole file -------------------------------------------------------------------------


def format_module(text: str, module: ast.Module) -> str:
    items = statement_items(text, module)
    # Blocks: runs of statements of one kind with no other statement between them (and, for
    # keyword sets, no blank line).
    out: list[str] = []
    blank = [False] * len(items)
    prev_end: int | None = None
    for i, item in enumerate(items):
        start = item.start
        blank[i] = prev_end is not None and blank_before(text, prev_end, start)
        prev_end = item_end(text, item)
    group_of: dict[int, int] = {}
    groups: list[list[int]] = []
    last_stmt: int | None = None
    for i, item in enumerate(items):
        if isinstance(item, Comment):
            continue
        kind = _block_kind(item.node)
        joined = (
            last_stmt is not None
            and kind is not None
            and _block_kind(_stmt(items[last_stmt]).node) == kind
            and (kind in _SPAN_BLANKS or not any(blank[j] for j in range(last_stmt + 1, i + 1)))
            and not any(isinstance(items[j], Stmt) for j in range(last_stmt + 1, i))
        )
        if joined:
            groups[group_of[last_stmt]].append(i)  # type: ignore[index]
            group_of[i] = group_of[last_stmt]  # type: ignore[index]
        else:
            group_of[i] = len(groups)
            groups.append([i])
        last_stmt = i
    rendered: dict[int, list[str]] = {}
    for g in groups:
        nodes = [_stmt(items[i]).node for i in g]
        first = nodes[0]
        if isinstance(first, ast.TierDecl):
            lines = _tier_lines([n for n in nodes if isinstance(n, ast.TierDecl)])
            rendered.update({i: [ln] for i, ln in zip(g, lines, strict=True)})
        elif isinstance(first, ast.KeywordsDecl):
            kws = [n for n in nodes if isinstance(n, ast.KeywordsDecl)]
            w = max(len(n.name.name) for n in kws)
            rendered.update({i: _keywords_lines(n, w) for i, n in zip(g, kws, strict=True)})
        elif isinstance(first, (ast.RuleDecl, ast.DefaultDecl)):
            rules = [n for n in nodes if isinstance(n, (ast.RuleDecl, ast.DefaultDecl))]
            rendered.update(dict(zip(g, _rule_block(rules), strict=True)))
        elif isinstance(first, ast.TestDecl):
            rendered[g[0]] = _test_lines(_stmt(items[g[0]]))
        else:
            rendered[g[0]] = _single(first)
    for i, item in enumerate(items):
        if blank[i] and out:
            out.append("")
        if isinstance(item, Comment):
            out.append(item.text)
            continue
        out.extend(item.leading)
        lines = list(rendered[i])
        if item.trailing is not None:
            lines[-1] = lines[-1] + "  " + item.trailing
        out.extend(lines)
    return "\n".join(line.rstrip() for line in out) + "\n" if out else ""


def _stmt(item: Item) -> Stmt:
    assert isinstance(item, Stmt)
    return item


# Rules and tiers align across blank lines and comments (a policy's rules read as one
# table); keyword sets align only when written together.
_SPAN_BLANKS = frozenset({"rule", "tier"})


def _block_kind(node: ast.Statement) -> str | None:
    if isinstance(node, (ast.RuleDecl, ast.DefaultDecl)):
        return "rule"
    if isinstance(node, ast.TierDecl):
        return "tier"
    if isinstance(node, ast.KeywordsDecl):
        return "keywords"
    return None


def format_source(text: str, name: str = "<string>") -> str:
    """Canonical text of a policy file. Raises PolicyError when the text does not parse:
    a file that does not parse is never rewritten."""
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n")
    module, diagnostics = parse(Source(text, name))
    if diagnostics:
        raise PolicyError(diagnostics)
    return format_module(text, module)


__all__ = [
    "LINE_LIMIT",
    "fmt_expr",
    "fmt_num",
    "fmt_regex",
    "fmt_str",
    "format_module",
    "format_source",
]
