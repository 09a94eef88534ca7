"""Names, types and options: turns parsed modules into a checked policy, or diagnostics.

Every problem in every file is reported; nothing with an error goes further.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..decision import TRIGGERS as TRIGGERS_BY_NAME
from ..decision import ClassifierSpec, Escalation, Shadow, Tier
from ..request import attributes
from ..request.attributes import BOOL, DYNAMIC, INT, LABEL, NUMBER, STRING, TEXT, lookup
from ..syntax import ast
from ..syntax.diagnostics import Diagnostic, did_you_mean, hint_budget
from ..syntax.parser import LANGUAGE_KEYWORDS
from ..syntax.source import Source, Span
from .bounds import bound_diagnostics
from .features import RegexError, compile_regex, normalize_phrase
from .shadow import check_shadows

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


class Checker:
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

    # -- entry --------------------------------------------------------------------------

    def check(self) -> CheckedPolicy:
        p = self.policy
        main = [s for s in self.statements if not s.imported]
        p.library = bool(main) and not any(isinstance(s.node, _POLICY_ONLY) for s in main)
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
        # Declarations first, so rules may use names declared after them.
        for located in self.statements:
            node, src = located.node, located.source
            if isinstance(node, ast.TierDecl):
                self._tier(node, src, located.imported)
            elif isinstance(node, ast.KeywordsDecl):
                self._keywords(node, src, located.imported)
        for located in self.statements:
            if isinstance(located.node, ast.ClassifierDecl):
                self._classifier(located.node, located.source, located.imported)
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
        for located in main:
            if isinstance(located.node, ast.TestDecl):
                self._test(located.node, located.source)
        p.shadows = check_shadows(self, main)
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
        if p.library:
            return p
        if p.default is None and not any(d.code.startswith("E0") for d in self.diagnostics):
            src = main[-1].source if main else Source("", "<policy>")
            end = len(src.text.rstrip())
            self.error(
                "E107",
                "the policy has no default",
                src,
                Span(end, end),
                "end the rules with: default -> TIER",
            )
        if not any(d.is_error for d in self.diagnostics):  # on a broken policy they mislead
            self._unused_and_overlaps()
        return p

    # -- declarations -------------------------------------------------------------------

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

    # -- rules --------------------------------------------------------------------------

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

    # -- conditions ---------------------------------------------------------------------

    def attr_type(self, attr: ast.Attr, src: Source) -> str | None:
        """The type of an attribute reference, or None after reporting it unknown."""
        parts = attr.parts
        if (
            parts[0] in self.policy.classifiers
            or ("classifier", parts[0]) in self.policy.decl_spans
            or ("classifier", parts[0]) in self._broken
        ):
            if len(parts) == 2 and parts[1] in CLASSIFIER_FIELDS:
                self.policy.used.add(("classifier", parts[0]))
                return LABEL if parts[1] == "label" else NUMBER
            self.error(
                "E105",
                f"a classifier has '.label' and '.confidence', not '{'.'.join(parts[1:])}'",
                src,
                attr.span,
                did_you_mean(".".join(parts[1:]), CLASSIFIER_FIELDS),
            )
            return None
        info = lookup(attr.dotted)
        if (
            info is None
            and self.imports_failed
            and len(parts) == 2
            and parts[1] in CLASSIFIER_FIELDS
        ):
            return None  # most likely a classifier of the file that failed to import
        if info is None:
            known = [*attributes.ATTRIBUTES, *(f"{c}.label" for c in self.policy.classifiers)]
            hint = did_you_mean(attr.dotted, known)
            if hint is None and len(parts) == 2 and parts[1] in CLASSIFIER_FIELDS:
                hint = f"no classifier named '{parts[0]}' is declared"
            self.error("E105", f"unknown attribute '{attr.dotted}'", src, attr.span, hint)
            return None
        return info.type

    def _value_fits(self, attr_type: str, value: ast.Value) -> bool:
        if attr_type == DYNAMIC:
            return True
        if isinstance(value, ast.Bool):
            return attr_type == BOOL
        if isinstance(value, ast.Num):
            return _num_kind(attr_type)
        return attr_type in (STRING, TEXT, LABEL)

    def _label_check(self, attr: ast.Attr, value: ast.Value, src: Source) -> None:
        spec = self.policy.classifiers.get(attr.parts[0])
        if spec is not None and isinstance(value, ast.Str) and value.value not in spec.labels:
            self.error(
                "E203",
                f"'{value.value}' is not a label of classifier '{spec.name}'",
                src,
                value.span,
                did_you_mean(value.value, spec.labels) or f"its labels: {', '.join(spec.labels)}",
            )

    def _type_error(
        self, attr: ast.Attr, attr_type: str, what: str, src: Source, span: Span
    ) -> None:
        self.error(
            "E201",
            f"'{attr.dotted}' is {_article(attr_type)} {attr_type}; it cannot be compared with {what}",
            src,
            span,
        )

    def _expr(self, expr: ast.Expr, src: Source) -> None:
        if isinstance(expr, (ast.And, ast.Or)):
            for operand in expr.operands:
                self._expr(operand, src)
            return
        if isinstance(expr, ast.Not):
            self._expr(expr.operand, src)
            return
        t = self.attr_type(expr.attr, src)
        if t is None:
            return
        if isinstance(expr, ast.Compare):
            if expr.op in ("<", "<=", ">", ">="):
                if not (_num_kind(t) or t == DYNAMIC):
                    self.error(
                        "E202",
                        f"'{expr.op}' needs a number, and '{expr.attr.dotted}' is {_article(t)} {t}",
                        src,
                        expr.span,
                        "use == or in for strings" if t in (STRING, LABEL) else None,
                    )
                elif not isinstance(expr.value, ast.Num):
                    self._type_error(
                        expr.attr,
                        t if t != DYNAMIC else NUMBER,
                        _describe(expr.value),
                        src,
                        expr.value.span,
                    )
            elif not self._value_fits(t, expr.value):
                self._type_error(expr.attr, t, _describe(expr.value), src, expr.value.span)
            elif t == LABEL:
                self._label_check(expr.attr, expr.value, src)
            if t == NUMBER and isinstance(expr.value, ast.Num) and not 0 <= expr.value.value <= 1:
                self.error("E204", "a confidence lies in [0, 1]", src, expr.value.span)
        elif isinstance(expr, ast.In):
            kinds = {type(v) for v in expr.values}
            if len(kinds) > 1:
                self.error("E201", "a list mixes values of different types", src, expr.span)
            for v in expr.values:
                if not self._value_fits(t, v):
                    self._type_error(expr.attr, t, _describe(v), src, v.span)
                    break
                if t == LABEL:
                    self._label_check(expr.attr, v, src)
        elif isinstance(expr, (ast.Contains, ast.Matches)):
            if t not in (TEXT, STRING, DYNAMIC):
                op = "contains" if isinstance(expr, ast.Contains) else "matches"
                self.error(
                    "E202",
                    f"'{op}' reads text, and '{expr.attr.dotted}' is {_article(t)} {t}",
                    src,
                    expr.attr.span,
                )
            if isinstance(expr, ast.Contains):
                self._contains_target(expr, src)
            else:
                self._regex(expr.regex, src)
        elif isinstance(expr, ast.Truthy) and t not in (BOOL, DYNAMIC):
            hint = f"to test that it is given, write: has {expr.attr.dotted}"
            self.error(
                "E201",
                f"'{expr.attr.dotted}' is {_article(t)} {t}, not a bool; it cannot stand alone",
                src,
                expr.span,
                hint,
            )

    def _contains_target(self, expr: ast.Contains, src: Source) -> None:
        target = expr.target
        if isinstance(target, ast.Str):
            if not normalize_phrase(target.value):
                self.error("E113", "a phrase cannot be empty or only white space", src, target.span)
        elif isinstance(target, ast.Ident):
            if target.name not in self.policy.keywords:
                if ("keywords", target.name) not in self.policy.decl_spans and not (
                    self.imports_failed or ("keywords", target.name) in self._broken
                ):
                    self.error(
                        "E103",
                        f"unknown keyword set '{target.name}'",
                        src,
                        target.span,
                        did_you_mean(target.name, self.policy.keywords)
                        or f"declared sets: {', '.join(self.policy.keywords) or 'none'}",
                    )
            else:
                self.policy.used.add(("keywords", target.name))
        else:
            if not target.phrases:
                self.error("E113", "the phrase list is empty", src, expr.span)
            for phrase in target.phrases:
                if not normalize_phrase(phrase.value):
                    self.error(
                        "E113", "a phrase cannot be empty or only white space", src, phrase.span
                    )

    def _regex(self, regex: ast.Regex, src: Source) -> None:
        try:
            compiled = compile_regex(regex.pattern, regex.flags)
        except RegexError as e:
            hint = None
            if e.code == "E302":
                hint = "rewrite without it, or split the test into two rules"
            elif e.code == "E304":
                hint = "bound the repetition ({1,1000} -> {1,100}), or test a phrase instead"
            self.error(e.code, str(e), src, regex.span, hint)
            return
        if compiled.search("") is not None:
            self.warn(
                "W007",
                "this regex matches the empty string, so it matches every text",
                src,
                regex.span,
                "a '*' or '?' that should be '+'?",
            )

    # -- tests --------------------------------------------------------------------------

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

    # -- lints that need the whole policy -----------------------------------------------

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
