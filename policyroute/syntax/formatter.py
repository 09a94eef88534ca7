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

Near 500 lines, and kept whole: one layout engine, whose alignment rules (columns,
wrapping, comments) read each other's measurements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from . import ast
from .diagnostics import PolicyError
from .parser import STATEMENT_SCAN, parse
from .source import Source

LINE_LIMIT = 100
INDENT = "  "

# Where statements start and which `#` starts a comment: the parser's own scanner.
_SCAN = STATEMENT_SCAN


# -- values and conditions ------------------------------------------------------------------


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


def _wrap_expr(e: ast.Expr, width: int) -> list[str]:
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


# -- comments and layout of the file --------------------------------------------------------


@dataclass(slots=True)
class _Stmt:
    node: ast.Statement
    start: int  # offset of the statement keyword
    code_end: int  # offset just after its last token
    leading: list[str] = field(default_factory=list)  # interior comments moved above it
    trailing: str | None = None
    # For tests: comments kept inside the block, by attribute index (len(attrs) = before `}`).
    inner: dict[int, list[str]] = field(default_factory=dict)
    inner_trailing: dict[int, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Comment:
    text: str
    start: int


Item = _Stmt | _Comment


def _scan(text: str) -> tuple[list[tuple[int, int]], list[int]]:
    comments: list[tuple[int, int]] = []
    keywords: list[int] = []
    for m in _SCAN.finditer(text):
        if m.lastgroup == "comment":
            comments.append((m.start(), m.end()))
        elif m.lastgroup == "keyword":
            keywords.append(m.start())
    return comments, keywords


def _line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


def _items(text: str, module: ast.Module) -> list[Item]:
    comments, keywords = _scan(text)
    stmts: list[_Stmt] = []
    for node in module.statements:
        start = max((k for k in keywords if k <= node.span.start), default=0)
        stmts.append(_Stmt(node, start, node.span.end))
    # A statement's code ends at its last character that is neither white space nor comment,
    # before the next statement starts.
    masked = list(text)
    for s, e in comments:
        masked[s:e] = " " * (e - s)
    code = "".join(masked)
    for i, st in enumerate(stmts):
        end = stmts[i + 1].start if i + 1 < len(stmts) else len(text)
        st.code_end = len(code[:end].rstrip())
    items: list[Item] = []
    si = 0
    for cs, ce in comments:
        body = text[cs:ce].rstrip()
        while si < len(stmts) and stmts[si].start < cs:
            items.append(stmts[si])
            si += 1
        owner = stmts[si - 1] if si > 0 else None
        full_line = not text[_line_start(text, cs) : cs].strip()
        if owner is not None and cs < owner.code_end:
            _interior(text, owner, body, cs, full_line)
        elif owner is not None and not full_line and cs > owner.start:
            owner.trailing = body  # on the statement's last line
        else:
            items.append(_Comment(body, cs))
    items.extend(stmts[si:])
    return items


def _interior(text: str, st: _Stmt, body: str, pos: int, full_line: bool) -> None:
    node = st.node
    if isinstance(node, ast.TestDecl):
        # Attribute k owns the comments between it and attribute k+1.
        attrs = node.attrs
        k = sum(1 for a in attrs if a.span.start < pos)
        if not full_line and k > 0:
            st.inner_trailing[k - 1] = body
            return
        if full_line and node.name.span.end <= pos:
            st.inner.setdefault(k, []).append(body)
            return
    st.leading.append(body)


def _blank_before(text: str, prev_end: int, start: int) -> bool:
    gap = text[prev_end : _line_start(text, start)]
    return gap.count("\n") >= 2


def _item_end(text: str, item: Item) -> int:
    if isinstance(item, _Comment):
        return item.start + len(item.text)
    end = item.code_end
    if item.trailing is not None:
        nl = text.find("\n", end)
        end = len(text) if nl == -1 else nl
    return end


# -- statements -----------------------------------------------------------------------------


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
        conds.append(_wrap_expr(n.condition, cap - 2 - cond_col))
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


def _test_lines(st: _Stmt) -> list[str]:
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
    items = _items(text, module)
    # Blocks: runs of statements of one kind with no other statement between them (and, for
    # keyword sets, no blank line).
    out: list[str] = []
    blank = [False] * len(items)
    prev_end: int | None = None
    for i, item in enumerate(items):
        start = item.start
        blank[i] = prev_end is not None and _blank_before(text, prev_end, start)
        prev_end = _item_end(text, item)
    group_of: dict[int, int] = {}
    groups: list[list[int]] = []
    last_stmt: int | None = None
    for i, item in enumerate(items):
        if isinstance(item, _Comment):
            continue
        kind = _block_kind(item.node)
        joined = (
            last_stmt is not None
            and kind is not None
            and _block_kind(_stmt(items[last_stmt]).node) == kind
            and (kind in _SPAN_BLANKS or not any(blank[j] for j in range(last_stmt + 1, i + 1)))
            and not any(isinstance(items[j], _Stmt) for j in range(last_stmt + 1, i))
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
        if isinstance(item, _Comment):
            out.append(item.text)
            continue
        out.extend(item.leading)
        lines = list(rendered[i])
        if item.trailing is not None:
            lines[-1] = lines[-1] + "  " + item.trailing
        out.extend(lines)
    return "\n".join(line.rstrip() for line in out) + "\n" if out else ""


def _stmt(item: Item) -> _Stmt:
    assert isinstance(item, _Stmt)
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


__all__ = ["LINE_LIMIT", "fmt_expr", "format_module", "format_source"]
