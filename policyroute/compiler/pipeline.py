"""The compile driver: loaded statements to the functions behind `Policy.decide`, in named stages.

Each stage reads what the ones before it left on the `Compilation` and adds its own part;
`STAGES` is the order, and nothing else runs in between (as OPA's compiler keeps `c.stages`).
A policy with an error stops after `check`, with every diagnostic in one PolicyError.
`Policy` (policy.py) is a thin wrapper over the finished compilation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..decision import FAILED_CLASSIFICATION, NO_ESCALATION, Decision, Escalation, Tier
from ..request import Request
from ..syntax.diagnostics import Diagnostic, PolicyError
from ..syntax.source import Span
from .atoms import AtomTable, Expr
from .check import CheckedPolicy, CheckedRule, check
from .codegen import DecideFn, Entry, EntryFn, generate
from .evaluator import Evaluator
from .loader import Loaded
from .readers import FeatureReaders

# What the generated entry point hands anything but a plain Request to:
# `fallback(request, classifier, explain, attrs)` (Policy._decide_other).
Fallback = Callable[[Any, Any, bool, dict[str, Any]], Any]


@dataclass(slots=True)
class Compilation:
    """One policy part way through (or at the end of) the stages."""

    loaded: Loaded
    fallback: Fallback
    revision: str = ""
    checked: CheckedPolicy = field(default_factory=lambda: CheckedPolicy(name=None))
    warnings: list[Diagnostic] = field(default_factory=list)
    decisions: tuple[Decision, ...] = ()
    table: AtomTable | None = None
    conditions: tuple[Expr, ...] = ()
    readers: FeatureReaders | None = None
    evaluator: Evaluator | None = None
    decide: DecideFn | None = None
    entry: EntryFn | None = None
    getters: tuple[Callable[..., Any], ...] = ()


def _check(c: Compilation) -> None:
    """Names, types, imports and options; raises PolicyError on any error."""
    loaded = c.loaded
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
    assert checked.default is not None
    c.checked = checked
    c.warnings = [d for d in diagnostics if not d.is_error]
    c.revision = loaded.revision()


def decision_for(
    checked: CheckedPolicy, revision: str, rule: CheckedRule, tier: Tier | None = None
) -> Decision:
    """The decision `rule` makes, routed to `tier` (default: the rule's own): its model,
    token cap and the escalation ladder above that tier."""
    tier = tier or rule.tier
    tiers = checked.tiers
    above = tiers[[t.name for t in tiers].index(tier.name) + 1 :]
    esc = checked.escalation or NO_ESCALATION
    steps = len(above) if esc.max_steps is None else min(esc.max_steps, len(above))
    if rule.escalate_max is not None:
        steps = min(rule.escalate_max, len(above))
    if rule.escalate_never or not esc.triggers:
        steps = 0
    escalation = Escalation(esc.triggers, esc.confidence_below, steps) if steps else NO_ESCALATION
    return Decision(
        tier=tier.name,
        model=tier.model,
        rule=rule.name,
        max_tokens=rule.max_tokens if rule.max_tokens is not None else tier.max_tokens,
        ladder=tuple(above[:steps]),
        escalation=escalation,
        tier_spec=tier,
        policy=checked.name,
        revision=revision,
    )


def _decisions(c: Compilation) -> None:
    """The decision of every rule, the default last: what a leaf of the diagram returns."""
    assert c.checked.default is not None
    rules = [*c.checked.rules, c.checked.default]
    c.decisions = tuple(decision_for(c.checked, c.revision, r) for r in rules)


def _lower(c: Compilation) -> None:
    """Each rule's condition over interned atoms (one comparison, keyword, regex, classifier)."""
    table = AtomTable(c.checked)
    c.conditions = tuple(table.lower(r.condition) for r in c.checked.rules)  # type: ignore[arg-type]
    c.table = table


def _readers(c: Compilation) -> None:
    """How each feature is read from a request: attributes, the phrase automaton, regexes,
    classifiers."""
    assert c.table is not None
    c.readers = FeatureReaders(c.table, dict(c.checked.classifiers))


def _tables(c: Compilation) -> None:
    """The evaluator's tables: per feature, its value's branch for every atom on it."""
    assert c.table is not None and c.readers is not None
    table, readers = c.table, c.readers
    c.evaluator = Evaluator(
        table.features,
        table.atoms,
        c.conditions,
        [readers.value(fid, f.key) for fid, f in enumerate(table.features)],
    )
    c.getters = tuple(readers.getter(fid, f.key) for fid, f in enumerate(table.features))


def _codegen(c: Compilation) -> None:
    """The evaluator's tables written out as one Python function, and the public entry point."""
    assert c.table is not None and c.readers is not None and c.evaluator is not None
    features = c.table.features
    # With no classifier to ask and no answers given, a classifier reads as failed.
    unasked = {
        fid: FAILED_CLASSIFICATION.label
        if f.key[0] == "label"
        else FAILED_CLASSIFICATION.confidence
        for fid, f in enumerate(features)
        if f.key[0] in ("label", "confidence")
    }
    c.decide, c.entry = generate(
        c.evaluator,
        c.decisions,
        c.readers.scans(features),
        unasked,
        Entry(Request, c.fallback),
    )


STAGES: tuple[tuple[str, Callable[[Compilation], None]], ...] = (
    ("check", _check),
    ("decisions", _decisions),
    ("lower", _lower),
    ("readers", _readers),
    ("tables", _tables),
    ("codegen", _codegen),
)


def compile_loaded(loaded: Loaded, fallback: Fallback) -> Compilation:
    """Run every stage over `loaded`; raises PolicyError (from `check`) with every diagnostic."""
    c = Compilation(loaded, fallback)
    for _name, stage in STAGES:
        stage(c)
    return c
