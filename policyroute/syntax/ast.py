"""The AST: small immutable nodes, each with the span it came from.

Spans never take part in equality, so a policy and its formatted reprint compare equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .source import NO_SPAN, Span


@dataclass(frozen=True, slots=True)
class Ident:
    name: str
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Str:
    value: str
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Num:
    value: int | float
    text: str = field(default="", compare=False)
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Bool:
    value: bool
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


Value = Str | Num | Bool


@dataclass(frozen=True, slots=True)
class Regex:
    pattern: str
    flags: str
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Attr:
    parts: tuple[str, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


# -- conditions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Compare:
    attr: Attr
    op: str
    value: Value
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class In:
    attr: Attr
    values: tuple[Value, ...]
    negated: bool = False
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class PhraseList:
    phrases: tuple[Str, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


SetRef = Ident | PhraseList


@dataclass(frozen=True, slots=True)
class Contains:
    """`contains "p"` (mode "phrase"), `contains any SET`, `contains all SET`."""

    attr: Attr
    mode: str
    target: Str | SetRef
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Matches:
    attr: Attr
    regex: Regex
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Has:
    attr: Attr
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Truthy:
    attr: Attr
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Expr, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Expr, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


Condition = Compare | In | Contains | Matches | Has | Truthy
Expr = Condition | Not | And | Or


# -- statements ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyDecl:
    name: Str
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Import:
    path: Str
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TierProp:
    name: Ident
    value: Num
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TierDecl:
    name: Ident
    model: Str
    props: tuple[TierProp, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class KeywordsDecl:
    name: Ident
    phrases: tuple[Str, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ClassifierDecl:
    name: Ident
    tier: Ident
    labels: tuple[Str, ...]
    prompt: Str
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class MaxTokensOption:
    value: Num
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class EscalateNeverOption:
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class EscalateMaxOption:
    value: Num
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


RuleOption = MaxTokensOption | EscalateNeverOption | EscalateMaxOption


@dataclass(frozen=True, slots=True)
class RuleDecl:
    name: Ident
    condition: Expr
    tier: Ident
    options: tuple[RuleOption, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class DefaultDecl:
    tier: Ident
    options: tuple[RuleOption, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Trigger:
    name: Ident
    op: str | None = None
    threshold: Num | None = None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class EscalateDecl:
    triggers: tuple[Trigger, ...]
    max_steps: Num | None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TestAttr:
    attr: Attr
    value: Value
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TestDecl:
    name: Str
    attrs: tuple[TestAttr, ...]
    tier: Ident
    by_rule: Ident | None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ShadowDecl:
    """`shadow TIER sample N%`: `percent` is N as written (5 for 5%)."""

    tier: Ident
    percent: Num
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class StickyDecl:
    """`sticky conversations N UNIT`: a conversation's later turns never go to a cheaper tier."""

    window: Num
    unit: Ident | None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


Statement = (
    PolicyDecl
    | Import
    | TierDecl
    | KeywordsDecl
    | ClassifierDecl
    | RuleDecl
    | DefaultDecl
    | EscalateDecl
    | TestDecl
    | ShadowDecl
    | StickyDecl
)


@dataclass(frozen=True, slots=True)
class Module:
    """One parsed `.route` file."""

    statements: tuple[Statement, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    # (kind, name) of declarations that did not parse: their uses are not reported unknown.
    broken: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)
