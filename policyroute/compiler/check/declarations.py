"""Declarations: tiers, keyword sets and classifiers."""

from __future__ import annotations

from ...decision import ClassifierSpec, Tier
from ...syntax import ast
from ...syntax.diagnostics import did_you_mean
from ...syntax.source import Source
from ..features import normalize_phrase
from .conditions import Conditions
from .model import (
    TIER_PROPS,
    reserved_roots,
)


class Declarations(Conditions):
    def _tier(self, node: ast.TierDecl, src: Source, imported: bool) -> None:
        if not self._declare("tier", node.name, src):
            return
        props: dict[str, ast.Num] = {}
        ok = True
        misspelt = False
        for prop in node.props:
            name = prop.name.name
            if name not in TIER_PROPS:
                self.error(
                    "E112",
                    f"unknown tier property '{name}'",
                    src,
                    prop.name.span,
                    did_you_mean(name, TIER_PROPS) or f"the properties are {', '.join(TIER_PROPS)}",
                )
                ok = False
                misspelt = True
            elif name in props:
                self.error("E112", f"'{name}' given twice", src, prop.name.span)
                ok = False
            elif prop.value.value < 0:
                self.error("E204", f"'{name}' cannot be negative", src, prop.value.span)
                ok = False
            props[name] = prop.value
        for required in ("input", "output"):
            # A misspelt property is most likely the missing one: reported once, above.
            if required not in props and not misspelt:
                self.error(
                    "E112",
                    f"tier '{node.name.name}' needs an '{required}' price (USD per million tokens)",
                    src,
                    node.name.span,
                    "add: { input 1.00 output 5.00 }",
                )
                ok = False
        max_tokens = props.get("max_tokens")
        if max_tokens is not None and (
            not isinstance(max_tokens.value, int) or max_tokens.value < 1
        ):
            self.error("E204", "max_tokens must be a whole number above 0", src, max_tokens.span)
            ok = False
        if not node.model.value.strip():
            self.error("E112", "the model name is empty", src, node.model.span)
            ok = False
        if not ok:
            return
        tier = Tier(
            name=node.name.name,
            model=node.model.value,
            input_price=float(props["input"].value),
            output_price=float(props["output"].value),
            max_tokens=int(max_tokens.value) if max_tokens is not None else None,
            cache_write_multiplier=float(props["cache_write"].value)
            if "cache_write" in props
            else 1.25,
            cache_read_multiplier=float(props["cache_read"].value)
            if "cache_read" in props
            else 0.1,
        )
        prev = self.policy.tiers[-1] if self.policy.tiers else None
        if prev is not None and tier.input_price < prev.input_price and not imported:
            self.warn(
                "W010",
                f"tier '{tier.name}' is cheaper than '{prev.name}' declared before it",
                src,
                node.name.span,
                "declare tiers cheapest first: their order is the escalation ladder",
            )
        self.policy.tiers.append(tier)
        self._tier_by_name[tier.name] = tier

    def _keywords(self, node: ast.KeywordsDecl, src: Source, imported: bool) -> None:
        if not self._declare("keywords", node.name, src):
            return
        if not node.phrases:
            self.error("E113", f"keyword set '{node.name.name}' is empty", src, node.name.span)
        seen: set[str] = set()
        for phrase in node.phrases:
            norm = normalize_phrase(phrase.value)
            if not norm:
                self.error("E113", "a phrase cannot be empty or only white space", src, phrase.span)
            elif norm in seen:
                self.warn(
                    "W009",
                    f"phrase '{phrase.value}' stands twice in '{node.name.name}'",
                    src,
                    phrase.span,
                    "remove the second one",
                )
            seen.add(norm)
        self.policy.keywords[node.name.name] = tuple(p.value for p in node.phrases)

    def _classifier(self, node: ast.ClassifierDecl, src: Source, imported: bool) -> None:
        name = node.name.name
        if name in reserved_roots():
            self.error(
                "E101",
                f"a classifier cannot be named '{name}': that is an attribute",
                src,
                node.name.span,
            )
            return
        if not self._declare("classifier", node.name, src):
            return
        tier = self._tier_ref(node.tier, src)
        labels = [lab.value for lab in node.labels]
        ok = tier is not None
        if not labels:
            self.error("E114", f"classifier '{name}' declares no labels", src, node.name.span)
            ok = False
        for i, lab in enumerate(node.labels):
            if not lab.value:
                self.error("E114", "a label cannot be empty", src, lab.span)
                ok = False
            elif lab.value in labels[:i]:
                self.error("E114", f"label '{lab.value}' given twice", src, lab.span)
                ok = False
        if not node.prompt.value.strip():
            self.error("E114", "the classifier's prompt is empty", src, node.prompt.span)
            ok = False
        if ok and tier is not None:
            self.policy.classifiers[name] = ClassifierSpec(
                name, tier, tuple(labels), node.prompt.value
            )
