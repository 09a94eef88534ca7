"""Inline tests: the attributes a test sets, its tier and rule."""

from __future__ import annotations

from ...request import attributes
from ...request.attributes import INT, LABEL, TEXT, lookup
from ...syntax import ast
from ...syntax.diagnostics import did_you_mean
from ...syntax.source import Source
from .model import (
    CheckedTest,
    _article,
    _describe,
)
from .rules import Rules


class InlineTests(Rules):
    def _test(self, node: ast.TestDecl, src: Source) -> None:
        ok = True
        for ta in node.attrs:
            t = self.attr_type(ta.attr, src)
            if t is None:
                ok = False
                continue
            computed = lookup(ta.attr.dotted)
            if (
                computed is not None
                and computed.computed_from is None
                and not attributes.test_settable(ta.attr.dotted)
            ):
                self.error(
                    "E501",
                    f"'{ta.attr.dotted}' cannot be set by a test: no request carries it",
                    src,
                    ta.attr.span,
                )
                ok = False
            elif computed is not None and computed.computed_from is not None:
                self.error(
                    "E501",
                    f"'{ta.attr.dotted}' is computed from the {computed.computed_from}; "
                    f"set {computed.computed_from} instead",
                    src,
                    ta.attr.span,
                )
                ok = False
            elif not self._value_fits(t, ta.value) or (
                t == TEXT and not isinstance(ta.value, ast.Str)
            ):
                self.error(
                    "E201",
                    f"'{ta.attr.dotted}' is {_article(t)} {t}; it cannot be set to {_describe(ta.value)}",
                    src,
                    ta.value.span,
                )
                ok = False
            elif t == LABEL:
                self._label_check(ta.attr, ta.value, src)
            elif t == INT and not isinstance(ta.value.value, int):
                self.error("E501", f"'{ta.attr.dotted}' takes a whole number", src, ta.value.span)
                ok = False
        if self._tier_ref(node.tier, src) is None:
            ok = False
        if node.by_rule is not None:
            names = [*self._rule_names, "default"]
            if node.by_rule.name not in names:
                self.error(
                    "E501",
                    f"the test names rule '{node.by_rule.name}', which does not exist",
                    src,
                    node.by_rule.span,
                    did_you_mean(node.by_rule.name, names),
                )
                ok = False
        if ok:
            self.policy.tests.append(
                CheckedTest(
                    node.name.value,
                    node.attrs,
                    node.tier.name,
                    node.by_rule.name if node.by_rule else None,
                    src,
                    node.span,
                )
            )
