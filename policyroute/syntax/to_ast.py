"""Parse tree -> AST: typed nodes with spans, numbers and strings read, shapes refused."""

from __future__ import annotations

from typing import Any

from lark import Token, Transformer, v_args
from lark.visitors import Transformer_NonRecursive

from . import ast
from .limits import MAX_INTEGER_DIGITS, MAX_NUMBER_DIGITS
from .messages import _SyntaxProblem
from .source import Span

_STRING_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


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
