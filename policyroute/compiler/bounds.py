"""The size limits of a whole policy (syntax/limits.py), checked before anything is compiled.

One linear pass over the statements. Each limit crossed is one E008, at the first thing over
it (a phrase too long is reported at each such phrase, since each one is a fix to make).
A policy with an E008 is never compiled, so the phrase automaton, the decision diagram and
the analysis only ever see bounded input.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from ..syntax import ast
from ..syntax.diagnostics import Diagnostic
from ..syntax.limits import (
    MAX_CLASSIFIERS,
    MAX_KEYWORD_SETS,
    MAX_LABELS,
    MAX_LIST_VALUES,
    MAX_PHRASE_CHARS,
    MAX_PHRASES,
    MAX_POLICY_CONDITION_TESTS,
    MAX_RULES,
    MAX_TESTS,
    MAX_TIERS,
    MAX_VALUES,
)
from ..syntax.source import Source, Span


class _Located(Protocol):
    @property
    def source(self) -> Source: ...

    @property
    def node(self) -> ast.Statement: ...


class _Counter:
    """Counts one kind of thing; reports once, at the first one over the limit."""

    __slots__ = ("count", "hint", "limit", "what")

    def __init__(self, what: str, limit: int, hint: str) -> None:
        self.what, self.limit, self.hint = what, limit, hint
        self.count = 0

    def add(self, n: int, src: Source, span: Span, out: list[Diagnostic]) -> None:
        before = self.count
        self.count += n
        if before <= self.limit < self.count:
            out.append(
                Diagnostic("E008", f"more than {self.limit:,} {self.what}", src, span, self.hint)
            )


def bound_diagnostics(statements: Sequence[_Located]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    rules = _Counter("rules in one policy", MAX_RULES, "a policy this large cannot be reviewed")
    tiers = _Counter("tiers in one policy", MAX_TIERS, "the ladder needs a few tiers")
    sets = _Counter(
        "keyword sets in one policy", MAX_KEYWORD_SETS, "merge sets that rules read together"
    )
    classifiers = _Counter(
        "classifiers in one policy", MAX_CLASSIFIERS, "each classifier is an LLM call"
    )
    tests = _Counter("inline tests in one policy", MAX_TESTS, "keep fewer, sharper tests")
    phrases = _Counter(
        "keyword phrases in one policy", MAX_PHRASES, "keep the phrases that decide something"
    )
    values = _Counter("values in the lists of one policy", MAX_VALUES, "use fewer, broader values")
    conditions = _Counter(
        "tests in the conditions of one policy",
        MAX_POLICY_CONDITION_TESTS,
        "merge rules with `in [...]` and keyword sets",
    )
    for located in statements:
        node, src = located.node, located.source
        if isinstance(node, ast.RuleDecl):
            rules.add(1, src, node.name.span, out)
            _condition(node.condition, src, phrases, values, conditions, out)
        elif isinstance(node, ast.TierDecl):
            tiers.add(1, src, node.name.span, out)
        elif isinstance(node, ast.KeywordsDecl):
            sets.add(1, src, node.name.span, out)
            _phrases(node.phrases, src, phrases, out)
        elif isinstance(node, ast.ClassifierDecl):
            classifiers.add(1, src, node.name.span, out)
            if len(node.labels) > MAX_LABELS:
                out.append(
                    Diagnostic(
                        "E008",
                        f"more than {MAX_LABELS} labels in one classifier",
                        src,
                        node.labels[MAX_LABELS].span,
                        "a classifier answers with one of a few labels",
                    )
                )
        elif isinstance(node, ast.TestDecl):
            tests.add(1, src, node.name.span, out)
    return out


def _phrases(
    items: Iterable[ast.Str], src: Source, counter: _Counter, out: list[Diagnostic]
) -> None:
    for phrase in items:
        counter.add(1, src, phrase.span, out)
        if len(phrase.value) > MAX_PHRASE_CHARS:
            out.append(
                Diagnostic(
                    "E008",
                    f"a phrase of {len(phrase.value):,} characters; the most is {MAX_PHRASE_CHARS}",
                    src,
                    Span(phrase.span.start, phrase.span.start + 1),
                    "match long text with a regex, or keep the words that matter",
                )
            )


def _condition(
    expr: ast.Expr,
    src: Source,
    phrases: _Counter,
    values: _Counter,
    conditions: _Counter,
    out: list[Diagnostic],
) -> None:
    stack = [expr]
    while stack:
        e = stack.pop()
        if isinstance(e, (ast.And, ast.Or)):
            stack.extend(reversed(e.operands))
        elif isinstance(e, ast.Not):
            stack.append(e.operand)
        else:
            conditions.add(1, src, e.span, out)
            if isinstance(e, ast.Contains):
                if isinstance(e.target, ast.Str):
                    _phrases((e.target,), src, phrases, out)
                elif isinstance(e.target, ast.PhraseList):
                    _phrases(e.target.phrases, src, phrases, out)
            elif isinstance(e, ast.In):
                if len(e.values) > MAX_LIST_VALUES:
                    out.append(
                        Diagnostic(
                            "E008",
                            f"more than {MAX_LIST_VALUES:,} values in one list",
                            src,
                            e.values[MAX_LIST_VALUES].span,
                            "group the values, or route on a coarser attribute",
                        )
                    )
                values.add(len(e.values), src, e.span, out)
