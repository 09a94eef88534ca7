"""Rules, the default, their options, escalation and sticky conversations."""

from __future__ import annotations

from ...decision import TRIGGERS as TRIGGERS_BY_NAME
from ...decision import Escalation, Tier
from ...syntax import ast
from ...syntax.diagnostics import did_you_mean
from ...syntax.source import Source
from .declarations import Declarations
from .model import (
    MAX_STICKY_SECONDS,
    STICKY_UNITS,
    TRIGGERS,
    CheckedRule,
    Located,
)


class Rules(Declarations):
    def _options(
        self, options: tuple[ast.RuleOption, ...], src: Source
    ) -> tuple[int | None, bool, int | None]:
        max_tokens: int | None = None
        never = False
        esc_max: int | None = None
        seen: set[type] = set()
        for opt in options:
            if type(opt) in seen:
                name = {
                    ast.MaxTokensOption: "max_tokens",
                    ast.EscalateNeverOption: "escalate never",
                    ast.EscalateMaxOption: "escalate max",
                }[type(opt)]
                self.error("E115", f"option '{name}' given twice", src, opt.span)
                continue
            seen.add(type(opt))
            if isinstance(opt, ast.MaxTokensOption):
                v = opt.value.value
                if not isinstance(v, int) or v < 1:
                    self.error("E115", "max_tokens must be a whole number above 0", src, opt.span)
                else:
                    max_tokens = v
            elif isinstance(opt, ast.EscalateNeverOption):
                never = True
            else:
                v = opt.value.value
                if not isinstance(v, int) or v < 0:
                    self.error(
                        "E115", "escalate max must be a whole number, 0 or more", src, opt.span
                    )
                else:
                    esc_max = v
        if never and esc_max is not None:
            self.error(
                "E115",
                "'escalate never' and 'escalate max' contradict each other",
                src,
                options[-1].span,
            )
        return max_tokens, never, esc_max

    def _rule(self, node: ast.RuleDecl, src: Source) -> None:
        if self.policy.default is not None:
            self.error(
                "E109",
                f"rule '{node.name.name}' comes after the default and could never run",
                src,
                node.name.span,
                "move the default to the end",
            )
        declared = self._declare("rule", node.name, src)
        self._rule_names.append(node.name.name)
        tier = self._tier_ref(node.tier, src)
        self._expr(node.condition, src)
        max_tokens, never, esc_max = self._options(node.options, src)
        if declared and tier is not None:
            self.policy.rules.append(
                CheckedRule(
                    node.name.name, node.condition, tier, max_tokens, never, esc_max, src, node.span
                )
            )

    def _default(self, node: ast.DefaultDecl, src: Source) -> None:
        if self.policy.default is not None:
            self.error("E108", "more than one default", src, node.span, "keep exactly one")
            self._tier_ref(node.tier, src)
            return
        tier = self._tier_ref(node.tier, src)
        max_tokens, never, esc_max = self._options(node.options, src)
        fallback = tier or (self.policy.tiers[0] if self.policy.tiers else None)
        if fallback is not None:
            self.policy.default = CheckedRule(
                "default", None, fallback, max_tokens, never, esc_max, src, node.span
            )
        else:
            self.policy.default = CheckedRule(
                "default", None, Tier("?", "?", 0, 0), max_tokens, never, esc_max, src, node.span
            )

    def _escalate(self, node: ast.EscalateDecl, src: Source) -> None:
        triggers: set[str] = set()
        threshold: float | None = None
        for trig in node.triggers:
            name = trig.name.name
            if name not in TRIGGERS:
                self.error(
                    "E116",
                    f"unknown escalation trigger '{name}'",
                    src,
                    trig.name.span,
                    did_you_mean(name, TRIGGERS) or f"the triggers are {', '.join(TRIGGERS)}",
                )
                continue
            if TRIGGERS_BY_NAME[name].threshold:  # confidence < X
                if trig.op is None or trig.threshold is None:
                    self.error(
                        "E116",
                        "the confidence trigger needs a threshold",
                        src,
                        trig.span,
                        "write: confidence < 0.7",
                    )
                    continue
                if trig.op != "<":
                    self.error("E116", "write the trigger as 'confidence < X'", src, trig.span)
                    continue
                if not 0 <= trig.threshold.value <= 1:
                    self.error(
                        "E204", "a confidence threshold lies in [0, 1]", src, trig.threshold.span
                    )
                    continue
                threshold = float(trig.threshold.value)
            elif trig.op is not None:
                self.error("E116", f"the '{name}' trigger takes no threshold", src, trig.span)
                continue
            triggers.add(name)
        max_steps: int | None = None
        if node.max_steps is not None:
            v = node.max_steps.value
            if not isinstance(v, int) or v < 0:
                self.error(
                    "E115", "max must be a whole number, 0 or more", src, node.max_steps.span
                )
            else:
                max_steps = v
                # Declared tiers, broken ones too: a tier with an error is not a missing step.
                declared = sum(1 for kind, _ in self.policy.decl_spans if kind == "tier")
                if self.policy.tiers and declared == len(self.policy.tiers) and v > declared - 1:
                    self.warn(
                        "W008",
                        f"max {v} is more than the {len(self.policy.tiers) - 1} step(s) the "
                        "ladder allows",
                        src,
                        node.max_steps.span,
                        "with one tier there is nowhere to escalate to"
                        if len(self.policy.tiers) == 1
                        else f"use max {len(self.policy.tiers) - 1} or fewer",
                    )
        self.policy.escalation = Escalation(frozenset(triggers), threshold, max_steps)

    # -- sticky conversations -----------------------------------------------------------

    def _sticky(self, found: list[Located]) -> None:
        """`sticky conversations N UNIT`: at most one, a positive window with a time unit."""
        for i, located in enumerate(found):
            node, src = located.node, located.source
            assert isinstance(node, ast.StickyDecl)
            if i:
                self.error(
                    "E126",
                    "only one sticky statement is allowed",
                    src,
                    node.span,
                    "keep one window for the whole policy",
                )
            seconds = self._sticky_window(node, src)
            if i == 0 and seconds is not None:
                self.policy.sticky_window = seconds

    def _sticky_window(self, node: ast.StickyDecl, src: Source) -> float | None:
        window = node.window
        if node.unit is None:
            shown = window.text or str(window.value)
            hint = f"write the unit in words: {shown} minutes"
            if shown.endswith(("m", "k")):
                hint = (
                    f"'{shown}' is the number {window.value:,}; for a time, "
                    f"write it as {shown[:-1]} minutes"
                )
            self.error("E125", "the sticky window needs a time unit", src, window.span, hint)
            return None
        scale = STICKY_UNITS.get(node.unit.name)
        if scale is None:
            self.error(
                "E125",
                f"unknown time unit '{node.unit.name}'",
                src,
                node.unit.span,
                did_you_mean(node.unit.name, tuple(STICKY_UNITS))
                or "the units are seconds, minutes or hours (s, min, h)",
            )
            return None
        seconds = window.value * scale
        if not 0 < seconds <= MAX_STICKY_SECONDS:
            self.error(
                "E125",
                "the sticky window must be above 0 and at most 24 hours",
                src,
                window.span,
                "prompt caches live minutes, not days: 5 to 60 minutes is typical",
            )
            return None
        return float(seconds)
