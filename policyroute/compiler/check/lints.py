"""Lints that need the whole checked policy: unused names, a phrase in two sets."""

from __future__ import annotations

from ...syntax import ast
from ..features import normalize_phrase
from .inline_tests import InlineTests


class Lints(InlineTests):
    def _unused_and_overlaps(self) -> None:
        p = self.policy
        local = {
            s.node.name.name: s
            for s in self.statements
            if not s.imported
            and isinstance(s.node, (ast.TierDecl, ast.KeywordsDecl, ast.ClassifierDecl))
        }
        escalates = p.escalation is not None and (p.escalation.max_steps or 0) != 0
        used_tiers = [i for i, t in enumerate(p.tiers) if ("tier", t.name) in p.used]
        lowest_used = min(used_tiers) if used_tiers else len(p.tiers)
        for i, tier in enumerate(p.tiers):
            located = local.get(tier.name)
            if located is None or ("tier", tier.name) in p.used:
                continue
            if escalates and i > lowest_used:
                continue  # reachable by escalation
            self.warn(
                "W003",
                f"tier '{tier.name}' is never used by a rule, the default, a classifier or escalation",
                located.source,
                located.node.name.span,  # type: ignore[union-attr]
                "remove it, or route something to it",
            )
        for kind, code in (("keywords", "W004"), ("classifier", "W005")):
            names = p.keywords if kind == "keywords" else p.classifiers
            for name in names:
                located = local.get(name)
                if located is None or (kind, name) in p.used:
                    continue
                self.warn(
                    code,
                    f"{'keyword set' if kind == 'keywords' else 'classifier'} '{name}' is never used",
                    located.source,
                    located.node.name.span,  # type: ignore[union-attr]
                    "remove it, or use it in a rule",
                )
        owner: dict[str, str] = {}
        for located in self.statements:
            node = located.node
            if not isinstance(node, ast.KeywordsDecl) or node.name.name not in p.keywords:
                continue
            for phrase in node.phrases:
                norm = normalize_phrase(phrase.value)
                first = owner.setdefault(norm, node.name.name)
                if first != node.name.name and not located.imported:
                    self.warn(
                        "W006",
                        f"phrase '{phrase.value}' stands in both '{first}' and '{node.name.name}'",
                        located.source,
                        phrase.span,
                        "the earlier rule always wins it; keep it in one set",
                    )
