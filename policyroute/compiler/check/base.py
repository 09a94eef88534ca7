"""The checker's state, how it reports, and the names every concern looks up."""

from __future__ import annotations

from collections.abc import Sequence

from ...decision import Tier
from ...syntax import ast
from ...syntax.diagnostics import Diagnostic, did_you_mean
from ...syntax.keywords import LANGUAGE_KEYWORDS
from ...syntax.source import Source, Span
from .model import (
    _KIND_NAMES,
    CheckedPolicy,
    Located,
)


class CheckerBase:
    """What every concern of the checker shares: the statements, the policy being built, the
    diagnostics found, and the declared names."""

    def __init__(
        self,
        statements: Sequence[Located],
        imports_failed: bool = False,
        broken: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.statements = statements
        # A failed import explains missing declarations; do not report each absence again.
        self.imports_failed = imports_failed
        self.diagnostics: list[Diagnostic] = []
        self.policy = CheckedPolicy(name=None)
        self._tier_by_name: dict[str, Tier] = {}
        # Every rule name declared, even of a rule dropped for an error (a misspelt tier), so
        # a test naming it is not reported as naming a rule that does not exist.
        self._rule_names: list[str] = []
        # Declarations that did not parse are reported once, by the parser; their uses are
        # known names here, not unknown ones.
        self._broken = frozenset(broken)
        self._rule_names.extend(name for kind, name in broken if kind == "rule")

    def error(
        self, code: str, message: str, source: Source, span: Span, hint: str | None = None
    ) -> None:
        self.diagnostics.append(Diagnostic(code, message, source, span, hint))

    warn = error

    def _declare(self, kind: str, ident: ast.Ident, src: Source) -> bool:
        if ident.name in LANGUAGE_KEYWORDS:
            self.error(
                "E117",
                f"'{ident.name}' is a keyword of the language and cannot name a {_KIND_NAMES[kind]}",
                src,
                ident.span,
                f"pick another name, like '{ident.name}_'",
            )
            # Registered all the same, so its uses do not each report it unknown.
            self.policy.decl_spans.setdefault((kind, ident.name), (src, ident.span))
            return False
        key = (kind, ident.name)
        if key in self.policy.decl_spans:
            first_src, first_span = self.policy.decl_spans[key]
            line, col = first_src.line_col(first_span.start)
            self.error(
                "E101",
                f"{_KIND_NAMES[kind]} '{ident.name}' is declared twice",
                src,
                ident.span,
                f"first declared at {first_src.name}:{line}:{col}",
            )
            return False
        self.policy.decl_spans[key] = (src, ident.span)
        return True

    def _tier_ref(self, ident: ast.Ident, src: Source) -> Tier | None:
        tier = self._tier_by_name.get(ident.name)
        if tier is None:
            # Neither a broken tier (reported where it stands) nor one a failed import hides.
            if (
                ("tier", ident.name) not in self.policy.decl_spans
                and ("tier", ident.name) not in self._broken
                and not self.imports_failed
            ):
                self.error(
                    "E102",
                    f"unknown tier '{ident.name}'",
                    src,
                    ident.span,
                    did_you_mean(ident.name, self._tier_by_name)
                    or f"declared tiers: {', '.join(self._tier_by_name) or 'none'}",
                )
            return None
        self.policy.used.add(("tier", ident.name))
        return tier
