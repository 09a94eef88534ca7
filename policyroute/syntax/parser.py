"""Text -> AST. Lark parses; a transformer builds typed nodes with spans; errors become diagnostics.

All errors of a file are reported in one run: when the whole file does not parse, it is cut
into statements at the language's statement keywords and each statement is parsed alone, so
one broken rule does not hide the next.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.visitors import Transformer_NonRecursive

from . import ast
from .diagnostics import Diagnostic
from .limits import MAX_CONDITION_TESTS, MAX_INTEGER_DIGITS, MAX_NESTING, MAX_NUMBER_DIGITS
from .source import Source, Span

STATEMENT_KEYWORDS = (
    "policy",
    "import",
    "tier",
    "keywords",
    "classifier",
    "rule",
    "default",
    "escalate",
    "test",
    "shadow",
    "sticky",
)
LANGUAGE_KEYWORDS = frozenset(
    {*STATEMENT_KEYWORDS, "using", "labels", "and", "or", "not", "in", "contains", "any", "all"}
    | {"matches", "has", "on", "max", "by", "true", "false", "never"}
    | {"sample"}
)

_STRING_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}

# Names for terminals in "expected ..." messages.
_TERMINAL_NAMES = {
    "NAME": "a name",
    "STRING": "a string",
    "NUMBER": "a number",
    "REGEX": "a /regex/",
    "COMPARE": "a comparison (==, !=, <, <=, >, >=)",
    "LSQB": "'['",
    "RSQB": "']'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LPAR": "'('",
    "RPAR": "')'",
    "COLON": "':'",
    "COMMA": "','",
    "EQUAL": "'='",
    "DOT": "'.'",
    "__ANON_0": "'->'",
    "MAX_TOKENS": "'max_tokens'",
    "ESCALATE_NEVER": "'escalate never'",
    "ESCALATE_MAX": "'escalate max'",
    "$END": "end of file",
    "PERCENT": "'%'",
}


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


def number_problem(text: str) -> str | None:
    """Why a number literal is refused, or None: its digits are bounded, so converting it
    is cheap and cannot overflow a float (prices and thresholds become floats)."""
    raw = text.replace("_", "").lstrip("-").rstrip("km")
    whole, _, fraction = raw.partition(".")
    if len(whole.lstrip("0")) > MAX_INTEGER_DIGITS:
        return f"has more than {MAX_INTEGER_DIGITS} digits before the decimal point"
    if len(whole) + len(fraction) > MAX_NUMBER_DIGITS:
        return f"has more than {MAX_NUMBER_DIGITS} digits"
    return None


def parse_number(text: str) -> int | float:
    """`300`, `60_000`, `0.7`, `60k`, `1.5m` -> a number; k and m multiply."""
    raw = text.replace("_", "")
    scale = 1
    if raw[-1] in "km":
        scale = 1_000 if raw[-1] == "k" else 1_000_000
        raw = raw[:-1]
    if "." in raw:
        value = float(raw) * scale
        return int(value) if value.is_integer() and scale != 1 else value
    return int(raw) * scale


class _SyntaxProblem(Exception):
    def __init__(self, code: str, message: str, start: int, end: int, hint: str | None = None):
        super().__init__(message)
        self.code, self.message, self.start, self.end, self.hint = code, message, start, end, hint


@v_args(inline=True)
class _ToAst(Transformer[Token, Any]):
    """Parse tree -> AST nodes. `base` shifts positions when a statement is parsed alone."""

    def __init__(self, base: int = 0) -> None:
        super().__init__()
        self.base = base

    def _tok_span(self, tok: Token) -> Span:
        assert tok.start_pos is not None and tok.end_pos is not None
        return Span(self.base + tok.start_pos, self.base + tok.end_pos)

    def _span_of(self, *items: Any) -> Span:
        spans = [s for s in (self._item_span(i) for i in items if i is not None) if s is not None]
        return Span(min(s.start for s in spans), max(s.end for s in spans))

    def _item_span(self, item: Any) -> Span | None:
        if isinstance(item, Token):
            return self._tok_span(item)
        span = getattr(item, "span", None)
        if isinstance(span, Span) and span.end > span.start:
            return span
        return None

    # -- leaves ---------------------------------------------------------------------------

    def NAME(self, tok: Token) -> ast.Ident:
        return ast.Ident(str(tok), self._tok_span(tok))

    def MAX_TOKENS(self, tok: Token) -> ast.Ident:
        return ast.Ident(str(tok), self._tok_span(tok))

    def STRING(self, tok: Token) -> ast.Str:
        raw = str(tok)[1:-1]
        out: list[str] = []
        i = 0
        while i < len(raw):
            c = raw[i]
            if c == "\\":
                nxt = raw[i + 1] if i + 1 < len(raw) else ""
                if nxt not in _STRING_ESCAPES:
                    pos = self.base + (tok.start_pos or 0) + 1 + i
                    raise _SyntaxProblem(
                        "E004",
                        f"unknown escape '\\{nxt}' in a string",
                        pos,
                        pos + 2,
                        'the escapes are \\", \\\\, \\n and \\t',
                    )
                out.append(_STRING_ESCAPES[nxt])
                i += 2
            else:
                out.append(c)
                i += 1
        return ast.Str("".join(out), self._tok_span(tok))

    def number(self, tok: Token) -> ast.Num:
        text = str(tok)
        why = number_problem(text)
        if why is not None:
            span = self._tok_span(tok)
            shown = text if len(text) <= 24 else text[:20] + "\N{HORIZONTAL ELLIPSIS}"
            raise _SyntaxProblem(
                "E007",
                f"number '{shown}' {why}",
                span.start,
                span.end,
                f"a number has at most {MAX_INTEGER_DIGITS} digits before the decimal point "
                f"and {MAX_NUMBER_DIGITS} in all",
            )
        return ast.Num(parse_number(text), text, self._tok_span(tok))

    def TRUE(self, tok: Token) -> ast.Bool:
        return ast.Bool(True, self._tok_span(tok))

    def FALSE(self, tok: Token) -> ast.Bool:
        return ast.Bool(False, self._tok_span(tok))

    def REGEX(self, tok: Token) -> ast.Regex:
        text = str(tok)
        close = text.rindex("/")
        pattern = text[1:close].replace("\\/", "/")
        return ast.Regex(pattern, text[close + 1 :], self._tok_span(tok))

    def attr(self, *names: ast.Ident) -> ast.Attr:
        return ast.Attr(tuple(n.name for n in names), self._span_of(*names))

    def string_list(self, *items: ast.Str | None) -> ast.PhraseList:
        phrases = tuple(i for i in items if i is not None)
        return ast.PhraseList(phrases, self._span_of(*phrases) if phrases else Span(0, 0))

    def value_list(self, *items: ast.Value | None) -> tuple[ast.Value, ...]:
        return tuple(i for i in items if i is not None)

    # -- conditions -----------------------------------------------------------------------

    def compare(self, attr: ast.Attr, op: Token, value: ast.Value) -> ast.Compare:
        return ast.Compare(attr, str(op), value, self._span_of(attr, value))

    def in_(self, attr: ast.Attr, values: tuple[ast.Value, ...]) -> ast.In:
        return ast.In(attr, values, False, self._span_of(attr, *values))

    def not_in(self, attr: ast.Attr, values: tuple[ast.Value, ...]) -> ast.In:
        return ast.In(attr, values, True, self._span_of(attr, *values))

    def contains(self, attr: ast.Attr, phrase: ast.Str) -> ast.Contains:
        return ast.Contains(attr, "phrase", phrase, self._span_of(attr, phrase))

    def contains_any(self, attr: ast.Attr, _kw: Token, target: ast.SetRef) -> ast.Contains:
        return ast.Contains(attr, "any", target, self._span_of(attr, _kw, target))

    def contains_all(self, attr: ast.Attr, _kw: Token, target: ast.SetRef) -> ast.Contains:
        return ast.Contains(attr, "all", target, self._span_of(attr, _kw, target))

    def matches(self, attr: ast.Attr, regex: ast.Regex) -> ast.Matches:
        return ast.Matches(attr, regex, self._span_of(attr, regex))

    def has(self, attr: ast.Attr) -> ast.Has:
        return ast.Has(attr, attr.span)

    def truthy(self, attr: ast.Attr) -> ast.Truthy:
        return ast.Truthy(attr, attr.span)

    def not_(self, operand: ast.Expr | _Chain) -> ast.Not:
        operand = _done(operand)
        return ast.Not(operand, operand.span)

    # `a and b and c` reduces left to right, one `and_` per word; the operands collect in one
    # growing list (finished into an And when something else takes it), not in a tuple
    # copied at each step, which was quadratic in the length of the chain.
    def and_(self, left: ast.Expr | _Chain, right: ast.Expr | _Chain) -> _Chain:
        return _extend(ast.And, left, right)

    def or_(self, left: ast.Expr | _Chain, right: ast.Expr | _Chain) -> _Chain:
        return _extend(ast.Or, left, right)

    # -- statements -----------------------------------------------------------------------

    def policy_stmt(self, name: ast.Str) -> ast.PolicyDecl:
        return ast.PolicyDecl(name, name.span)

    def import_stmt(self, path: ast.Str) -> ast.Import:
        return ast.Import(path, path.span)

    def tier_prop(self, name: ast.Ident, value: ast.Num) -> ast.TierProp:
        return ast.TierProp(name, value, self._span_of(name, value))

    def tier_stmt(self, name: ast.Ident, model: ast.Str, *props: ast.TierProp) -> ast.TierDecl:
        return ast.TierDecl(name, model, props, self._span_of(name, model, *props))

    def keywords_stmt(self, name: ast.Ident, phrases: ast.PhraseList) -> ast.KeywordsDecl:
        return ast.KeywordsDecl(name, phrases.phrases, self._span_of(name, phrases))

    def classifier_stmt(
        self, name: ast.Ident, tier: ast.Ident, labels: ast.PhraseList, prompt: ast.Str
    ) -> ast.ClassifierDecl:
        return ast.ClassifierDecl(name, tier, labels.phrases, prompt, self._span_of(name, prompt))

    def opt_max_tokens(self, _kw: ast.Ident, value: ast.Num) -> ast.MaxTokensOption:
        return ast.MaxTokensOption(value, self._span_of(_kw, value))

    def opt_escalate_never(self, tok: Token) -> ast.EscalateNeverOption:
        return ast.EscalateNeverOption(self._tok_span(tok))

    def opt_escalate_max(self, tok: Token, value: ast.Num) -> ast.EscalateMaxOption:
        return ast.EscalateMaxOption(value, self._span_of(tok, value))

    def rule_stmt(
        self, name: ast.Ident, cond: ast.Expr | _Chain, tier: ast.Ident, *options: ast.RuleOption
    ) -> ast.RuleDecl:
        return ast.RuleDecl(name, _done(cond), tier, options, self._span_of(name, tier, *options))

    def default_stmt(self, tier: ast.Ident, *options: ast.RuleOption) -> ast.DefaultDecl:
        return ast.DefaultDecl(tier, options, self._span_of(tier, *options))

    def trigger(self, name: ast.Ident) -> ast.Trigger:
        return ast.Trigger(name, None, None, name.span)

    def threshold_trigger(self, name: ast.Ident, op: Token, value: ast.Num) -> ast.Trigger:
        return ast.Trigger(name, str(op), value, self._span_of(name, value))

    def escalate_max(self, value: ast.Num) -> ast.Num:
        return value

    def escalate_stmt(self, *items: Any) -> ast.EscalateDecl:
        triggers = tuple(i for i in items if isinstance(i, ast.Trigger))
        max_steps = next((i for i in items if isinstance(i, ast.Num)), None)
        return ast.EscalateDecl(triggers, max_steps, self._span_of(*triggers, max_steps))

    def test_attr(self, attr: ast.Attr, value: ast.Value) -> ast.TestAttr:
        return ast.TestAttr(attr, value, self._span_of(attr, value))

    def test_by(self, rule: ast.Ident) -> ast.Ident:
        return rule

    def test_stmt(self, name: ast.Str, *rest: Any) -> ast.TestDecl:
        by_rule = rest[-1]
        tier = rest[-2]
        attrs = tuple(a for a in rest[:-2] if isinstance(a, ast.TestAttr))
        return ast.TestDecl(name, attrs, tier, by_rule, self._span_of(name, tier, by_rule))

    def shadow_stmt(self, tier: ast.Ident, percent: ast.Num) -> ast.ShadowDecl:
        return ast.ShadowDecl(tier, percent, self._span_of(tier, percent))

    def sticky_stmt(self, window: ast.Num, unit: ast.Ident | None) -> ast.StickyDecl:
        return ast.StickyDecl(window, unit, self._span_of(window, unit))

    def start(self, *statements: ast.Statement) -> ast.Module:
        return ast.Module(tuple(statements))


class _Chain:
    """An And or Or under construction: operands appended in place."""

    __slots__ = ("end", "kind", "ops", "start")

    def __init__(self, kind: type[ast.And] | type[ast.Or], ops: list[ast.Expr]) -> None:
        self.kind = kind
        self.ops = ops
        self.start = min(o.span.start for o in ops)
        self.end = max(o.span.end for o in ops)

    @property
    def span(self) -> Span:
        return Span(self.start, self.end)


def _done(expr: ast.Expr | _Chain) -> ast.Expr:
    if isinstance(expr, _Chain):
        return expr.kind(tuple(expr.ops), expr.span)
    return expr


def _extend(
    kind: type[ast.And] | type[ast.Or], left: ast.Expr | _Chain, right: ast.Expr | _Chain
) -> _Chain:
    right = _done(right)
    if isinstance(left, _Chain) and left.kind is kind:
        left.ops.append(right)
        left.start = min(left.start, right.span.start)
        left.end = max(left.end, right.span.end)
        return left
    left = _done(left)
    if isinstance(left, kind):  # a finished chain of the same kind: flattened, as before
        return _Chain(kind, [*left.operands, right])
    return _Chain(kind, [left, right])


class _ToAstFlat(Transformer_NonRecursive[Token, Any], _ToAst):
    """The same transformer for a statement parsed alone, without recursion: the parse tree
    of `a and b and ...` is as deep as the chain is long."""


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
# keywords), and treats a statement keyword as a start unless it follows a dot (`user.tier`),
# is the `escalate` of a rule option, or is the `default` a test names (`by default`).
STATEMENT_SCAN = re.compile(
    r"""
    (?P<comment>\#[^\n]*)
  | (?P<string>"(?:\\.|[^"\\\n])*"?)
  | (?P<regex>/(?:\\.|[^/\\\n])*/?)
  | (?P<dotted>\.\s*[A-Za-z_][A-Za-z0-9_]*)
  | (?P<option>\bescalate\s+(?:never|max)\b)
  | (?P<by>\bby\s+default\b)
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


def _describe_token(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    return f"'{tok}'"


def _expected(expected: set[str]) -> str:
    statement_starts = {k.upper() for k in STATEMENT_KEYWORDS}
    if len(expected & statement_starts) >= 3:
        # At a statement boundary Lark lists every keyword that may start the next one.
        rest = expected - statement_starts - {"$END", "ESCALATE_NEVER", "ESCALATE_MAX"}
        options = {"MAX_TOKENS", "ESCALATE_NEVER", "ESCALATE_MAX"} & expected
        what = ["the next statement"]
        if options:
            what.insert(0, "a rule option (max_tokens, escalate never, escalate max)")
            rest -= options
        if rest:
            what.insert(0, _expected(rest))
        return " or ".join(what)
    names = sorted({_TERMINAL_NAMES.get(e, f"'{e.lower()}'") for e in expected})
    if len(names) > 8:
        names = [*names[:8], "..."]
    return ", ".join(names)


def _problem_from(e: UnexpectedInput, text: str, base: int) -> _SyntaxProblem:
    if isinstance(e, UnexpectedCharacters):
        pos = base + (e.pos_in_stream or 0)
        ch = text[pos] if pos < len(text) else ""
        if ch == '"':
            return _SyntaxProblem(
                "E002", "unterminated string", pos, pos + 1, 'close it with " on the same line'
            )
        if ch == "/":
            return _SyntaxProblem(
                "E003",
                "unterminated or empty regular expression",
                pos,
                pos + 1,
                "write /pattern/flags; escape a slash inside as \\/",
            )
        number = re.match(r"-?[0-9][\w.]*", text[pos:])
        if number is not None:
            return _SyntaxProblem(
                "E007",
                f"invalid number '{number.group()}'",
                pos,
                pos + len(number.group()),
                "numbers look like 300, 60_000, 0.7, 60k or 1.5m",
            )
        shown = repr(ch) if ch.isprintable() and ch else f"U+{ord(ch):04X}" if ch else "EOF"
        return _SyntaxProblem(
            "E001", f"unexpected character {shown}", pos, pos + 1, _character_hint(ch)
        )
    if isinstance(e, UnexpectedToken):
        tok = e.token
        start = base + (tok.start_pos or 0) if tok.type != "$END" else len(text)
        end = base + (tok.end_pos or 0) if tok.type != "$END" else len(text)
        expected = set(e.expected) | set(getattr(e, "accepts", None) or ())
        word = str(tok)
        if "NAME" in expected and word in LANGUAGE_KEYWORDS:
            return _SyntaxProblem(
                "E117",
                f"'{word}' is a keyword of the language and cannot be used as a name",
                start,
                end,
                f"pick another name, like '{word}_'",
            )
        hint = _expected_hint(expected)
        if tok.type == "EQUAL" and "COMPARE" in expected:
            hint = "compare with '==', not '='"
        return _SyntaxProblem(
            "E001",
            f"unexpected {_describe_token(tok)}; expected {_expected(expected)}",
            start,
            max(end, start + 1),
            hint,
        )
    if isinstance(e, UnexpectedEOF):
        return _SyntaxProblem(
            "E001",
            f"unexpected end of file; expected {_expected(set(e.expected))}",
            len(text),
            len(text) + 1,
            _expected_hint(set(e.expected)),
        )
    return _SyntaxProblem("E001", str(e).splitlines()[0], base, base + 1, _GENERAL_HINT)


_GENERAL_HINT = "each statement has one form; docs/language.md lists them"
# What to write where the parser wanted one of these: the first that the expected set holds.
_WANTED_HINTS = (
    ({"ANY", "ALL", "STRING"}, 'after contains: a "phrase", any SET or all SET'),
    ({"REGEX"}, "after matches: a regex, like /\\bselect\\b/i"),
    (
        {"COMPARE", "__ANON_0"},
        'compare the attribute (==, !=, <, >, in [...], contains "...") or end with -> TIER',
    ),
    ({"__ANON_0"}, "a rule ends with -> TIER"),
    ({"COMPARE"}, 'a condition compares an attribute: ==, !=, <, >, in [...], contains "..."'),
    ({"COLON"}, "a rule is written: rule NAME: CONDITION -> TIER"),
    ({"RSQB", "COMMA"}, 'a list is written ["a", "b"]: close it with ]'),
    ({"PERCENT"}, "a shadow share is a percentage: shadow TIER sample 5%"),
    ({"RBRACE"}, "close the block with }"),
    ({"RPAR"}, "close the parenthesis"),
    ({"STRING"}, 'a string, in double quotes: "..."'),
    ({"NUMBER"}, "a number: 300, 60_000, 0.7, 60k or 1.5m"),
    ({"NAME"}, "a name: letters, digits and _, not starting with a digit"),
)


def _expected_hint(expected: set[str]) -> str:
    statement_starts = {k.upper() for k in STATEMENT_KEYWORDS}
    if len(expected & statement_starts) >= 3 and not expected & {"COMPARE", "__ANON_0"}:
        return "a statement starts with " + ", ".join(STATEMENT_KEYWORDS)
    for wanted, hint in _WANTED_HINTS:
        if wanted & expected == wanted or (len(wanted) == 1 and wanted <= expected):
            return hint
    return _GENERAL_HINT


def _character_hint(ch: str) -> str:
    if ch == "'":
        return 'strings are in double quotes: "..."'
    if ch in "&|":
        return "write 'and' and 'or'"
    if ch == "!":
        return "write 'not', or '!=' to compare"
    return "names are letters, digits and _; strings are in double quotes; # starts a comment"


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
