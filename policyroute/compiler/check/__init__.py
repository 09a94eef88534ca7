"""Names, types and options: turns parsed modules into a checked policy, or diagnostics.

Every problem in every file is reported; nothing with an error goes further. One module per
concern (declarations, rules, conditions, inline tests, shadows, lints), run in the order
`Checker.PASSES` lists: declarations first, so rules may use names declared after them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ...syntax import ast
from ...syntax.diagnostics import Diagnostic, hint_budget
from ...syntax.source import Source, Span
from ..bounds import bound_diagnostics
from .lints import Lints
from .model import (
    _POLICY_ONLY,
    CLASSIFIER_FIELDS,
    MAX_STICKY_SECONDS,
    STICKY_UNITS,
    TIER_PROPS,
    TRIGGERS,
    CheckedPolicy,
    CheckedRule,
    CheckedTest,
    Located,
    reserved_roots,
)
from .shadows import check_shadows

Main = list[Located]


class Checker(Lints):
    def check(self) -> CheckedPolicy:
        main = [s for s in self.statements if not s.imported]
        p = self.policy
        p.library = bool(main) and not any(isinstance(s.node, _POLICY_ONLY) for s in main)
        for _name, run in self.PASSES:
            if p.library and run in _POLICY_PASSES:
                continue  # declarations for import: nothing to route, nothing to lint
            run(self, main)
        return p

    # -- the passes, in order -------------------------------------------------------------

    def _policy_statement(self, main: Main) -> None:
        p = self.policy
        for i, located in enumerate(main):
            if isinstance(located.node, ast.PolicyDecl):
                if i != 0 or p.name is not None:
                    self.error(
                        "E111",
                        "the policy statement must come first, once",
                        located.source,
                        located.node.span,
                    )
                p.name = located.node.name.value

    def _declarations(self, main: Main) -> None:
        for located in self.statements:
            node, src = located.node, located.source
            if isinstance(node, ast.TierDecl):
                self._tier(node, src, located.imported)
            elif isinstance(node, ast.KeywordsDecl):
                self._keywords(node, src, located.imported)
        for located in self.statements:
            if isinstance(located.node, ast.ClassifierDecl):
                self._classifier(located.node, located.source, located.imported)

    def _rules(self, main: Main) -> None:
        escalate_seen = False
        for located in main:
            node, src = located.node, located.source
            if isinstance(node, ast.RuleDecl):
                self._rule(node, src)
            elif isinstance(node, ast.DefaultDecl):
                self._default(node, src)
            elif isinstance(node, ast.EscalateDecl):
                if escalate_seen:
                    self.error("E110", "only one escalate statement is allowed", src, node.span)
                escalate_seen = True
                self._escalate(node, src)
        self._sticky([s for s in main if isinstance(s.node, ast.StickyDecl)])

    def _tests(self, main: Main) -> None:
        for located in main:
            if isinstance(located.node, ast.TestDecl):
                self._test(located.node, located.source)

    def _shadows(self, main: Main) -> None:
        self.policy.shadows = check_shadows(self, main)

    def _no_tier(self, main: Main) -> None:
        p = self.policy
        tier_declared = any(kind == "tier" for kind, _ in [*p.decl_spans, *self._broken])
        if not p.tiers and not tier_declared and not self.imports_failed:
            src = self.statements[0].source if self.statements else Source("", "<policy>")
            self.error(
                "E106",
                "no tier declared",
                src,
                Span(0, 0),
                'declare one: tier haiku = "claude-haiku-4-5" { input 1.00 output 5.00 }',
            )

    def _no_default(self, main: Main) -> None:
        if self.policy.default is None and not any(
            d.code.startswith("E0") for d in self.diagnostics
        ):
            src = main[-1].source if main else Source("", "<policy>")
            end = len(src.text.rstrip())
            self.error(
                "E107",
                "the policy has no default",
                src,
                Span(end, end),
                "end the rules with: default -> TIER",
            )

    def _lints(self, main: Main) -> None:
        if not any(d.is_error for d in self.diagnostics):  # on a broken policy they mislead
            self._unused_and_overlaps()

    PASSES: tuple[tuple[str, Callable[[Checker, Main], None]], ...] = (
        ("policy statement", _policy_statement),
        ("declarations", _declarations),
        ("rules", _rules),
        ("inline tests", _tests),
        ("shadows", _shadows),
        ("no tier", _no_tier),
        ("no default", _no_default),
        ("lints", _lints),
    )


# Passes a file of declarations for import skips.
_POLICY_PASSES = frozenset({Checker._no_default, Checker._lints})


def check(
    statements: Sequence[Located],
    imports_failed: bool = False,
    broken: Sequence[tuple[str, str]] = (),
) -> tuple[CheckedPolicy, list[Diagnostic]]:
    # The size limits first: over one, the policy goes no further than the checker.
    bounds = bound_diagnostics(statements)
    checker = Checker(statements, imports_failed, broken)
    with hint_budget():
        policy = checker.check()
    return policy, [*bounds, *checker.diagnostics]


__all__ = [
    "CLASSIFIER_FIELDS",
    "MAX_STICKY_SECONDS",
    "STICKY_UNITS",
    "TIER_PROPS",
    "TRIGGERS",
    "CheckedPolicy",
    "CheckedRule",
    "CheckedTest",
    "Checker",
    "Located",
    "check",
    "reserved_roots",
]
