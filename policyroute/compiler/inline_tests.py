"""Inline tests: `test "NAME" { ATTR = VALUE ... } -> TIER [by RULE]`, run against a policy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..decision import Classification, Decision, StaticClassifier
from ..request import Request, attributes
from ..syntax import ast
from ..syntax.diagnostics import Diagnostic, PolicyError

if TYPE_CHECKING:
    from ..policy import Policy
from .check import CheckedTest


@dataclass(frozen=True, slots=True)
class InlineResult:
    test: CheckedTest
    decision: Decision
    request: Request
    answers: dict[str, Classification]

    @property
    def passed(self) -> bool:
        return self.decision.tier == self.test.tier and (
            self.test.by_rule is None or self.decision.rule == self.test.by_rule
        )

    def location(self) -> str:
        line, col = self.test.source.line_col(self.test.span.start)
        return f"{self.test.source.name}:{line}:{col}"

    def to_json(self) -> dict[str, Any]:
        return {
            "test": self.test.name,
            "location": self.location(),
            "passed": self.passed,
            "expected": {"tier": self.test.tier, "rule": self.test.by_rule},
            "actual": {"tier": self.decision.tier, "rule": self.decision.rule},
        }


def inline_request(policy: Policy, test: CheckedTest) -> tuple[Request, dict[str, Classification]]:
    """The request an inline test describes, and the classifier answers it states."""
    kwargs: dict[str, Any] = {}
    families: dict[str, dict[str, Any]] = {}
    labels: dict[str, str] = {}
    confidences: dict[str, float] = {}
    for ta in test.attrs:
        dotted = ta.attr.dotted
        value = ta.value.value
        head = ta.attr.parts[0]
        if head in policy.classifiers:
            if ta.attr.parts[1] == "label":
                labels[head] = str(value)
            else:
                confidences[head] = float(value)
        elif (family := attributes.family_of(dotted)) is not None and family.field:
            families.setdefault(family.field, {})[ta.attr.parts[1]] = value
        else:
            info = attributes.lookup(dotted)
            assert info is not None and info.field is not None, "the checker refuses others"
            kwargs[info.field] = value
    kwargs.update(families)
    answers = {
        name: Classification(label, confidences.get(name, 1.0)) for name, label in labels.items()
    }
    return Request(**kwargs), answers


def run_tests(policy: Policy) -> list[InlineResult]:
    results = []
    for test in policy.tests:
        request, answers = inline_request(policy, test)
        decision = policy.decide(request, classifier=StaticClassifier(answers))
        results.append(InlineResult(test, decision, request, answers))
    return results


def uncovered_rules(policy: Policy, results: list[InlineResult]) -> list[str]:
    """Rules (and the default) that no inline test's request is decided by."""
    decided = {r.decision.rule for r in results}
    return [r.name for r in policy.rules if r.name not in decided]


def describe_request(test: CheckedTest) -> str:
    parts = []
    for ta in test.attrs:
        v = ta.value
        shown = (
            repr(v.value)
            if isinstance(v, ast.Str)
            else str(v.value).lower()
            if isinstance(v, ast.Bool)
            else str(v.value)
        )
        if len(shown) > 70:
            shown = shown[:67] + "...'"
        parts.append(f"{ta.attr.dotted} = {shown}")
    return "{ " + ", ".join(parts) + " }"


def failing_tests_error(policy: Policy) -> PolicyError | None:
    """A PolicyError with one E502 per inline test the policy fails, or None if all pass.

    What a store that must not go live with a failing test reports, like a check error."""
    failed = [r for r in run_tests(policy) if not r.passed]
    if not failed:
        return None
    diagnostics = [
        Diagnostic(
            "E502",
            f"test '{r.test.name}' fails: expected {r.test.tier}"
            + (f" by {r.test.by_rule}" if r.test.by_rule else "")
            + f", got {r.decision.tier} by {r.decision.rule}",
            r.test.source,
            r.test.span,
            f"request: {describe_request(r.test)}",
        )
        for r in failed
    ]
    return PolicyError(diagnostics)
