"""The reference: a plain top-to-bottom reading of the rules, straight from the AST.

It shares nothing with the compiler but the regex engine, so when the decision diagram and
this interpreter agree on generated requests, the compiler kept first-match order.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from policyroute import Classification, Policy, Request
from policyroute.compiler.features import compile_regex, regex_search
from policyroute.syntax import ast

FAILED = Classification(None, 0.0)


def _word(c: str) -> bool:
    return c.isalnum() or c == "_"


@cache
def _phrase_pattern(phrase: str) -> re.Pattern[str] | None:
    words = phrase.casefold().split()
    if not words:
        return None
    return re.compile("(?=(" + r"\s+".join(re.escape(w) for w in words) + "))")


def phrase_in(phrase: str, text: str) -> bool:
    """The contract's phrase test, written the slow and obvious way."""
    pattern = _phrase_pattern(phrase)
    if pattern is None:
        return False
    folded = text.casefold()
    for m in pattern.finditer(folded):
        start, end = m.start(1), m.end(1)
        if start > 0 and _word(folded[start - 1]):
            continue
        if end < len(folded) and _word(folded[end]):
            continue
        return True
    return False


class Reference:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.checked = policy.checked

    def decide(self, request: Request, answers: dict[str, Classification] | None = None) -> str:
        """The name of the first rule whose condition holds, else 'default'."""
        self.request = request
        self.answers = answers or {}
        for rule in self.checked.rules:
            assert rule.condition is not None
            if self.holds(rule.condition):
                return rule.name
        return "default"

    def value(self, attr: ast.Attr) -> Any:
        r = self.request
        head = attr.parts[0]
        if head in self.checked.classifiers:
            c = self.answers.get(head, FAILED)
            spec = self.checked.classifiers[head]
            if c.label not in spec.labels:
                c = FAILED
            return c.label if attr.parts[1] == "label" else c.confidence
        if head == "metadata":
            return r.metadata.get(attr.parts[1])
        simple = {
            "prompt": r.prompt,
            "system": r.system,
            "text": r.text,
            "length": None if r.prompt is None else len(r.prompt),
            "context_tokens": r.estimated_context_tokens(),
            "output_tokens": r.output_tokens,
            "turns": r.turns,
            "files": r.files,
            "task": r.task,
            "domain": r.domain,
            "has_tools": r.has_tools,
            "has_images": r.has_images,
        }
        if attr.dotted in simple:
            return simple[attr.dotted]
        return {"user.tier": r.user_tier, "user.id": r.user_id}[attr.dotted]

    @staticmethod
    def same_kind(value: Any, literal: Any) -> bool:
        if value is None:
            return False
        if isinstance(literal, bool):
            return isinstance(value, bool)
        if isinstance(literal, (int, float)):
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        return isinstance(value, str)

    def holds(self, e: ast.Expr) -> bool:
        if isinstance(e, ast.And):
            return all(self.holds(x) for x in e.operands)
        if isinstance(e, ast.Or):
            return any(self.holds(x) for x in e.operands)
        if isinstance(e, ast.Not):
            return not self.holds(e.operand)
        v = self.value(e.attr)
        if isinstance(e, ast.Compare):
            lit = e.value.value
            if e.op == "!=":
                return not (self.same_kind(v, lit) and v == lit)
            if not self.same_kind(v, lit):
                return False
            return {
                "==": v == lit,
                "<": v < lit,
                "<=": v <= lit,
                ">": v > lit,
                ">=": v >= lit,
            }[e.op]
        if isinstance(e, ast.In):
            inside = any(self.same_kind(v, x.value) and v == x.value for x in e.values)
            return not inside if e.negated else inside
        if isinstance(e, ast.Contains):
            if not isinstance(v, str):
                return False
            t = e.target
            if isinstance(t, ast.Str):
                return phrase_in(t.value, v)
            phrases = (
                self.checked.keywords[t.name]
                if isinstance(t, ast.Ident)
                else tuple(p.value for p in t.phrases)
            )
            test = any if e.mode == "any" else all
            return test(phrase_in(p, v) for p in phrases)
        if isinstance(e, ast.Matches):
            # regex_search is the contract's reading: the first REGEX_MAX_CHARS characters,
            # a lone surrogate as U+FFFD.
            return isinstance(v, str) and regex_search(
                compile_regex(e.regex.pattern, e.regex.flags), v
            )
        if isinstance(e, ast.Has):
            if e.attr.parts[0] in self.checked.classifiers and e.attr.parts[1] == "confidence":
                return True
            return v is not None
        assert isinstance(e, ast.Truthy)
        return v is True
