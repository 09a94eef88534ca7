"""The comments of a policy file, recovered by position for the formatter (the AST has none).

The file is cut into items: statements, each with the comments that belong to it (moved
above it, kept inside a test block by attribute, or trailing its last line), and comment
lines that stand alone between statements.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import ast
from .parser import STATEMENT_SCAN

# Where statements start and which `#` starts a comment: the parser's own scanner.
_SCAN = STATEMENT_SCAN


@dataclass(slots=True)
class Stmt:
    node: ast.Statement
    start: int  # offset of the statement keyword
    code_end: int  # offset just after its last token
    leading: list[str] = field(default_factory=list)  # interior comments moved above it
    trailing: str | None = None
    # For tests: comments kept inside the block, by attribute index (len(attrs) = before `}`).
    inner: dict[int, list[str]] = field(default_factory=dict)
    inner_trailing: dict[int, str] = field(default_factory=dict)


@dataclass(slots=True)
class Comment:
    text: str
    start: int


Item = Stmt | Comment


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


def statement_items(text: str, module: ast.Module) -> list[Item]:
    comments, keywords = _scan(text)
    stmts: list[Stmt] = []
    for node in module.statements:
        start = max((k for k in keywords if k <= node.span.start), default=0)
        stmts.append(Stmt(node, start, node.span.end))
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
            items.append(Comment(body, cs))
    items.extend(stmts[si:])
    return items


def _interior(text: str, st: Stmt, body: str, pos: int, full_line: bool) -> None:
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


def blank_before(text: str, prev_end: int, start: int) -> bool:
    gap = text[prev_end : _line_start(text, start)]
    return gap.count("\n") >= 2


def item_end(text: str, item: Item) -> int:
    if isinstance(item, Comment):
        return item.start + len(item.text)
    end = item.code_end
    if item.trailing is not None:
        nl = text.find("\n", end)
        end = len(text) if nl == -1 else nl
    return end
