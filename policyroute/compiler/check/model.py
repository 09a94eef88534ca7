"""What the checker produces (a checked policy, its rules and tests) and the names it knows."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...decision import TRIGGERS as TRIGGERS_BY_NAME
from ...decision import ClassifierSpec, Escalation, Shadow, Tier
from ...request import attributes
from ...request.attributes import INT, NUMBER
from ...syntax import ast
from ...syntax.source import Source, Span

TRIGGERS = tuple(TRIGGERS_BY_NAME)
TIER_PROPS = ("input", "output", "max_tokens", "cache_write", "cache_read")
CLASSIFIER_FIELDS = ("label", "confidence")
# Units of a `sticky conversations` window, in seconds.
STICKY_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hour", "hours"), 3600),
}
MAX_STICKY_SECONDS = 24 * 3600


def reserved_roots() -> frozenset[str]:
    """Attribute roots a classifier name would hide."""
    return frozenset(
        {a.split(".")[0] for a in attributes.ATTRIBUTES} | set(attributes.FAMILIES)
    )


@dataclass(frozen=True, slots=True)
class Located:
    """A statement and the file it stands in."""

    source: Source
    node: ast.Statement
    imported: bool = False


@dataclass(slots=True)
class CheckedRule:
    name: str
    condition: ast.Expr | None  # None for the default
    tier: Tier
    max_tokens: int | None
    escalate_never: bool
    escalate_max: int | None
    source: Source
    span: Span


@dataclass(slots=True)
class CheckedTest:
    name: str
    attrs: tuple[ast.TestAttr, ...]
    tier: str
    by_rule: str | None
    source: Source
    span: Span


@dataclass(slots=True)
class CheckedPolicy:
    name: str | None
    tiers: list[Tier] = field(default_factory=list)
    keywords: dict[str, tuple[str, ...]] = field(default_factory=dict)
    classifiers: dict[str, ClassifierSpec] = field(default_factory=dict)
    rules: list[CheckedRule] = field(default_factory=list)
    default: CheckedRule | None = None
    escalation: Escalation | None = None
    # Seconds a conversation stays on the tier of its last turn (`sticky conversations`).
    sticky_window: float | None = None
    tests: list[CheckedTest] = field(default_factory=list)
    shadows: list[Shadow] = field(default_factory=list)
    # Where each named thing was declared, for later lints.
    # Declarations only (no rule, default, escalate or test): a file made to be imported.
    library: bool = False
    decl_spans: dict[tuple[str, str], tuple[Source, Span]] = field(default_factory=dict)
    used: set[tuple[str, str]] = field(default_factory=set)


# Statements that make a file a policy rather than declarations for import.
_POLICY_ONLY = (ast.RuleDecl, ast.DefaultDecl, ast.EscalateDecl, ast.TestDecl, ast.ShadowDecl)


def _num_kind(attr_type: str) -> bool:
    return attr_type in (INT, NUMBER)


_KIND_NAMES = {
    "tier": "tier",
    "keywords": "keyword set",
    "classifier": "classifier",
    "rule": "rule",
}


def _article(t: str) -> str:
    return "an" if t[0] in "aeiou" else "a"


def _describe(value: ast.Value) -> str:
    if isinstance(value, ast.Str):
        return f'a string ("{value.value}")'
    if isinstance(value, ast.Bool):
        return f"a bool ({'true' if value.value else 'false'})"
    return f"a number ({value.text or value.value})"
