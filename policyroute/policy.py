"""A compiled policy: the decision diagram behind `decide()`, and how to build one."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from .compiler.atoms import AtomTable, Expr
from .compiler.checker import CheckedPolicy, CheckedRule, CheckedTest, check
from .compiler.diagram import Context, DiagramBuilder, Node, PhraseIds, count_nodes, walk
from .compiler.loader import Loaded, load_path, load_text
from .decision import (
    FAILED_CLASSIFICATION,
    NO_ESCALATION,
    Classification,
    ClassifierSpec,
    Decision,
    Escalation,
    Shadow,
    Step,
    Tier,
)
from .features import (
    PhraseMatcher,
    as_bool,
    as_number,
    as_string,
    attribute,
    compile_regex,
)
from .request import Request, RequestError
from .syntax.diagnostics import Diagnostic, PolicyError
from .syntax.source import Span

log = logging.getLogger("policyroute")


class Classifier(Protocol):
    """What `decide()` asks when a rule needs a classifier's answer."""

    def classify(self, spec: ClassifierSpec, request: Request) -> Classification: ...


@dataclass(frozen=True, slots=True)
class RuleInfo:
    name: str
    tier: str
    index: int
    file: str
    line: int


class Policy:
    """A checked, compiled policy. Immutable: reloading builds a new one."""

    def __init__(self, loaded: Loaded, checked: CheckedPolicy, warnings: list[Diagnostic]) -> None:
        assert checked.default is not None
        self.name = checked.name
        self.files: tuple[Path, ...] = tuple(loaded.files)
        self.revision = loaded.revision()
        self.tiers: tuple[Tier, ...] = tuple(checked.tiers)
        self.classifiers: dict[str, ClassifierSpec] = dict(checked.classifiers)
        self.escalation = checked.escalation
        self.warnings = warnings
        self.checked = checked
        self.tests: tuple[CheckedTest, ...] = tuple(checked.tests)
        rules = [*checked.rules, checked.default]
        self.rules: tuple[RuleInfo, ...] = tuple(
            RuleInfo(r.name, r.tier.name, i, r.source.name, r.source.line_col(r.span.start)[0])
            for i, r in enumerate(rules)
        )
        self.decisions: tuple[Decision, ...] = tuple(self._decision(r) for r in rules)
        # `shadow` statements, cheapest tier first, and for each tier a request may be routed
        # to, the ones strictly below it (what a request routed there is shadowed to).
        order = [t.name for t in self.tiers]
        self.shadows: tuple[Shadow, ...] = tuple(
            sorted(checked.shadows, key=lambda s: order.index(s.tier.name))
        )
        self._shadows_above: dict[str, tuple[Shadow, ...]] = {
            t: tuple(s for s in self.shadows if order.index(s.tier.name) < i)
            for i, t in enumerate(order)
        }

        table = AtomTable(checked)
        self.conditions: tuple[Expr, ...] = tuple(table.lower(r.condition) for r in checked.rules)  # type: ignore[arg-type]
        self.atoms = table
        # Phrase ids are shared: the atom table interns normalized phrases in the same order.
        self.matcher = PhraseMatcher(table.phrases)
        assert self.matcher.phrases == table.phrases
        builder = DiagramBuilder(table.features, table.atoms, table.phrases)
        self.root: Node = builder.chain(self.conditions, len(checked.rules))
        self.node_count = count_nodes(self.root)
        self.getters = tuple(self._getter(f.key) for f in table.features)

    # -- building ---------------------------------------------------------------------

    def _decision(self, rule: CheckedRule) -> Decision:
        tier = rule.tier
        above = self.tiers[[t.name for t in self.tiers].index(tier.name) + 1 :]
        esc = self.escalation or NO_ESCALATION
        steps = len(above) if esc.max_steps is None else min(esc.max_steps, len(above))
        if rule.escalate_max is not None:
            steps = min(rule.escalate_max, len(above))
        if rule.escalate_never or not esc.triggers:
            steps = 0
        escalation = (
            Escalation(esc.triggers, esc.confidence_below, steps) if steps else NO_ESCALATION
        )
        return Decision(
            tier=tier.name,
            model=tier.model,
            rule=rule.name,
            max_tokens=rule.max_tokens if rule.max_tokens is not None else tier.max_tokens,
            ladder=tuple(above[:steps]),
            escalation=escalation,
            tier_spec=tier,
            policy=self.name,
            revision=self.revision,
        )

    def _getter(self, key: tuple[str, ...]) -> Callable[[Context], Any]:
        kind, name = key[0], key[1]
        if kind in ("label", "confidence"):
            field = kind

            def classifier_value(ctx: Context) -> Any:
                c = self._classification(ctx, name)
                return c.label if field == "label" else c.confidence

            return classifier_value
        info = attribute(name)
        assert info is not None
        get = info.get
        if kind == "num":
            return lambda ctx: as_number(get(ctx.request))
        if kind == "str":
            return lambda ctx: as_string(get(ctx.request))
        if kind == "bool":
            return lambda ctx: as_bool(get(ctx.request))
        if kind == "present":
            return lambda ctx: get(ctx.request) is not None
        if kind == "match":
            find = self.matcher.find

            def found(ctx: Context) -> Any:
                s = get(ctx.request)
                return find(s) if isinstance(s, str) else frozenset()

            return found
        assert kind == "regex"
        regex = compile_regex(key[2], key[3])
        search = regex.search

        def matched(ctx: Context) -> Any:
            s = get(ctx.request)
            return (search(s) is not None) if isinstance(s, str) else None

        return matched

    def _classification(self, ctx: Context, name: str) -> Classification:
        known = ctx.classifications.get(name)
        if known is not None:
            return known  # type: ignore[no-any-return]
        spec = self.classifiers[name]
        result = FAILED_CLASSIFICATION
        given = ctx.request.classifiers.get(name)
        outcome = "asked" if ctx.classifier is not None else "not asked: no classifier"
        if given is not None:  # the caller's answer: nothing to ask
            result = _valid_classification(given, spec)
            outcome = (
                "given" if result == given else "given, not one of its labels: counts as failed"
            )
        elif ctx.classifier is not None:
            try:
                answer = ctx.classifier.classify(spec, ctx.request)
            except Exception as e:  # a classifier failure is an answer, not a crash
                log.warning("classifier %s failed: %s", name, e)
                answer = FAILED_CLASSIFICATION
            result = _valid_classification(answer, spec)
        ctx.classifications[name] = result
        if ctx.trace is not None:
            ctx.trace.append((f"classifier {name}", (result.label, result.confidence), outcome))
        return result

    # -- deciding ---------------------------------------------------------------------

    def decide(
        self,
        request: Request | Mapping[str, Any] | None = None,
        /,
        *,
        classifier: Classifier | None = None,
        explain: bool = False,
        **attrs: Any,
    ) -> Decision:
        """The decision for one request: exactly one tier, never an exception for valid input.

        Pass a `Request`, a mapping of its attributes, or the attributes as keywords
        (`prompt=`, `task=`, `user_tier=`...). A wrong-typed attribute raises `RequestError`.
        """
        if request is None:
            request = _request_from(attrs)
        elif not isinstance(request, Request):
            if not isinstance(request, Mapping):
                raise RequestError(
                    "decide() takes a Request or a mapping of attributes, "
                    f"got {type(request).__name__}"
                )
            if attrs:
                raise TypeError("pass either a request or keyword attributes, not both")
            request = _request_from(request)
        elif attrs:
            raise TypeError("pass either a Request or keyword attributes, not both")
        trace: list[tuple[str, Any, str]] | None = [] if explain else None
        ctx = Context(request, self.getters, classifier, trace)
        leaf = walk(self.root, ctx)
        decision = self.decisions[leaf.index]
        if trace is None:
            return decision
        phrases = self.matcher.phrases
        steps = tuple(
            Step(t, [phrases[i] for i in v] if isinstance(v, PhraseIds) else v, o)
            for t, v, o in trace
        )
        return replace(decision, explanation=steps)

    def shadows_for(self, tier: str) -> tuple[Shadow, ...]:
        """The shadow statements that apply to a request routed to `tier`: those naming a
        cheaper tier. Sampling is the runtime's job; this is only which tiers qualify."""
        return self._shadows_above.get(tier, ())

    def rule_index(self, name: str) -> int:
        for r in self.rules:
            if r.name == name:
                return r.index
        raise KeyError(name)

    def __repr__(self) -> str:
        return (
            f"<Policy {self.name or '(unnamed)'} rev {self.revision}: {len(self.rules) - 1} rules, "
            f"{len(self.tiers)} tiers, {self.node_count} nodes>"
        )


def _request_from(attrs: Mapping[str, Any]) -> Request:
    try:
        return Request(**attrs)
    except TypeError:  # an attribute name Request does not know
        known = sorted(k for k in Request.__slots__ if k != "text")
        unknown = sorted(str(k) for k in attrs if k not in Request.__slots__)
        raise RequestError(
            f"unknown attribute(s) {', '.join(unknown)}; known: {', '.join(known)}"
        ) from None


def _valid_classification(answer: Any, spec: ClassifierSpec) -> Classification:
    if not isinstance(answer, Classification) or answer.label not in spec.labels:
        return FAILED_CLASSIFICATION
    conf = as_number(answer.confidence)
    if conf is None or conf != conf:
        return FAILED_CLASSIFICATION
    return Classification(answer.label, min(1.0, max(0.0, float(conf))))


def build(loaded: Loaded) -> Policy:
    """Check and compile loaded statements, or raise PolicyError with every diagnostic."""
    diagnostics = list(loaded.diagnostics)
    if not loaded.statements and diagnostics:
        raise PolicyError(diagnostics)
    checked, found = check(loaded.statements, loaded.imports_failed(), loaded.broken)
    diagnostics.extend(found)
    if checked.library or (not loaded.statements and not diagnostics):
        src = loaded.sources[0] if loaded.sources else None
        if src is not None:
            diagnostics.append(
                Diagnostic(
                    "E107",
                    "this file declares no rules and no default: it can be imported, not loaded",
                    src,
                    Span(0, 0),
                    "load the policy that imports it, or add: default -> TIER",
                )
            )
    if any(d.is_error for d in diagnostics):
        raise PolicyError(diagnostics)
    return Policy(loaded, checked, [d for d in diagnostics if not d.is_error])


def load(path: str | Path) -> Policy:
    """Load, check and compile a `.route` file and its imports."""
    return build(load_path(Path(path)))


def loads(text: str, name: str = "<string>", base_dir: str | Path | None = None) -> Policy:
    """Check and compile policy text; imports resolve against `base_dir` (default: cwd)."""
    return build(load_text(text, name, Path(base_dir) if base_dir is not None else None))


class StaticClassifier:
    """Answers classifiers from a fixed table: for inline tests and offline replays."""

    def __init__(self, answers: Mapping[str, Classification]) -> None:
        self.answers = dict(answers)

    def classify(self, spec: ClassifierSpec, request: Request) -> Classification:
        return self.answers.get(spec.name, FAILED_CLASSIFICATION)
