"""A compiled policy: the decision diagram behind `decide()`, and how to build one.

`Classifier` and `StaticClassifier` live in decision.py; they are named here too because
`policyroute.policy.Classifier` is how the runtime and the store spell the protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .decision import (
    Classifier,
    ClassifierSpec,
    Decision,
    Shadow,
    StaticClassifier,
    Step,
    Tier,
)
from .request import Request, RequestError, attributes

# The compiler (and the parser and lark behind it) loads on the first compile, not on
# `import policyroute`: a program that only imports the package, or `--version`, stays fast.
if TYPE_CHECKING:
    from .compiler.atoms import Expr
    from .compiler.check import CheckedTest
    from .compiler.diagram import Node
    from .compiler.loader import Loaded


@dataclass(frozen=True, slots=True)
class RuleInfo:
    name: str
    tier: str
    index: int
    file: str
    line: int


class Policy:
    """A checked, compiled policy. Immutable: reloading builds a new one."""

    def __init__(self, loaded: Loaded) -> None:
        """Compile `loaded` (compiler/pipeline.py); raises PolicyError with every diagnostic."""
        from .compiler.pipeline import compile_loaded

        c = compile_loaded(loaded, self._decide_other)
        checked = c.checked
        assert c.table is not None and c.readers is not None and c.evaluator is not None
        assert c.decide is not None and checked.default is not None
        self.name = checked.name
        self.files: tuple[Path, ...] = tuple(loaded.files)
        self.revision = c.revision
        self.tiers: tuple[Tier, ...] = tuple(checked.tiers)
        self.classifiers: dict[str, ClassifierSpec] = dict(checked.classifiers)
        self.escalation = checked.escalation
        # `sticky conversations`: seconds a conversation keeps its tier floor, or None.
        self.sticky_window: float | None = checked.sticky_window
        self.warnings = c.warnings
        self.checked = checked
        self.tests: tuple[CheckedTest, ...] = tuple(checked.tests)
        rules = [*checked.rules, checked.default]
        self.rules: tuple[RuleInfo, ...] = tuple(
            RuleInfo(r.name, r.tier.name, i, r.source.name, r.source.line_col(r.span.start)[0])
            for i, r in enumerate(rules)
        )
        self.decisions: tuple[Decision, ...] = c.decisions
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
        self.conditions: tuple[Expr, ...] = c.conditions
        self.atoms = c.table
        self.readers = c.readers
        self.matcher = self.readers.matcher
        self.evaluator = c.evaluator
        self._decide = c.decide
        # The same signature and code as the method below, one Python call shorter for a
        # plain Request: decide() sits on every request.
        if c.entry is not None:
            c.entry.__doc__ = Policy.decide.__doc__
            self.decide = c.entry  # type: ignore[method-assign]
        self.getters = c.getters
        self._root: Node | None = None

    @property
    def root(self) -> Node:
        """The decision diagram, built on first use: `--explain` walks it."""
        if self._root is None:
            from .compiler.diagram import DiagramBuilder

            builder = DiagramBuilder(self.atoms.features, self.atoms.atoms, self.atoms.phrases)
            self._root = builder.chain(self.conditions, len(self.checked.rules))
        return self._root

    @property
    def node_count(self) -> int:
        from .compiler.diagram import count_nodes

        return count_nodes(self.root)

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
        return self._decide_other(request, classifier, explain, attrs)

    def _decide_other(
        self,
        request: Request | Mapping[str, Any] | None,
        classifier: Classifier | None,
        explain: bool,
        attrs: dict[str, Any],
    ) -> Decision:
        """decide() for anything but a plain Request without keywords: the generated entry
        point's fallback."""
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
        if not explain:
            return self._decide(request, classifier)  # type: ignore[no-any-return]
        from .compiler.diagram import Context, PhraseIds, walk

        trace: list[tuple[str, Any, str]] = []
        ctx = Context(request, self.getters, classifier, trace)
        leaf = walk(self.root, ctx)
        decision = self.decisions[leaf.index]
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

    def raised(self, decision: Decision, tier: str) -> Decision:
        """`decision` moved up to `tier`, as if its rule had named that tier: the rule's
        `max_tokens` and escalation options still apply, the ladder starts above `tier`.

        Returns `decision` itself when `tier` is not above it or is not a tier of this policy
        (a reload may have removed it). Used by sticky conversations.
        """
        names = [t.name for t in self.tiers]
        if tier not in names or decision.tier not in names:
            return decision
        if names.index(tier) <= names.index(decision.tier):
            return decision
        return self.at_tier(decision, tier)

    def at_tier(self, decision: Decision, tier: str) -> Decision:
        """`decision` moved to `tier`, up or down, as if its rule had named that tier (a
        tool-result turn keeps the tier that issued the tool call). `decision` itself when
        `tier` is not a tier of this policy."""
        names = [t.name for t in self.tiers]
        if tier not in names or tier == decision.tier:
            return decision
        checked = [*self.checked.rules, self.checked.default]
        rule = next((r for r in checked if r is not None and r.name == decision.rule), None)
        if rule is None:
            return decision
        from .compiler.pipeline import decision_for

        return decision_for(self.checked, self.revision, rule, self.tiers[names.index(tier)])

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
        fields = {*attributes.fields(), "classifiers"}
        known = sorted(fields - {"text"})
        unknown = sorted(str(k) for k in attrs if k not in fields)
        raise RequestError(
            f"unknown attribute(s) {', '.join(unknown)}; known: {', '.join(known)}"
        ) from None


def build(loaded: Loaded) -> Policy:
    """Check and compile loaded statements, or raise PolicyError with every diagnostic."""
    return Policy(loaded)


def load(path: str | Path) -> Policy:
    """Load, check and compile a `.route` file and its imports."""
    from .compiler.loader import load_path

    return build(load_path(Path(path)))


def loads(text: str, name: str = "<string>", base_dir: str | Path | None = None) -> Policy:
    """Check and compile policy text; imports resolve against `base_dir` (default: cwd)."""
    from .compiler.loader import load_text

    return build(load_text(text, name, Path(base_dir) if base_dir is not None else None))


__all__ = ["Classifier", "Policy", "RuleInfo", "StaticClassifier", "build", "load", "loads"]
