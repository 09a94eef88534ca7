"""How a compiled policy reads each feature of a request: attributes, the phrases and
regex verdicts of its texts (one scan per text, shared), and classifier answers (asked at
most once a request). The evaluator's loop, the generated code and the diagram walk of
`--explain` all read through here, so they read alike."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..decision import FAILED_CLASSIFICATION, Classification, ClassifierSpec
from ..request import Request
from ..request.attributes import lookup
from .atoms import AtomTable, Feature
from .codegen import Scan
from .diagram import Context
from .features import (
    PhraseMatcher,
    as_bool,
    as_number,
    as_string,
    compile_regex,
    regex_search,
)
from .regexes import required_literals

log = logging.getLogger("policyroute")


class FeatureReaders:
    """The readers of one policy's features, and the scanner behind its text features."""

    def __init__(self, table: AtomTable, classifiers: Mapping[str, ClassifierSpec]) -> None:
        self.classifiers = classifiers
        # Each regex with a required literal runs only when the phrase scan finds it.
        literals: list[str] = []
        self.prefilter: dict[int, frozenset[int]] = {}
        for fid, f in enumerate(table.features):
            if f.key[0] == "regex":
                alts = required_literals(f.key[2])
                if alts is not None:
                    self.prefilter[fid] = frozenset(range(len(literals), len(literals) + len(alts)))
                    literals.extend(alts)
        # Phrase ids are shared: the atom table interns normalized phrases in the same order.
        self.matcher = PhraseMatcher(table.phrases, literals)
        assert self.matcher.phrases == table.phrases
        self.regexes = {
            fid: compile_regex(f.key[2], f.key[3])
            for fid, f in enumerate(table.features)
            if f.key[0] == "regex"
        }

    def value(self, fid: int, key: tuple[str, ...]) -> Callable[[Request, dict[Any, Any]], Any]:
        """How the evaluator reads feature `fid` from a request; `state` caches per request."""
        kind, name = key[0], key[1]
        if kind in ("label", "confidence"):
            label = kind == "label"

            def classifier_value(r: Request, state: dict[Any, Any]) -> Any:
                c = self.classify(state, name, r, None)
                return c.label if label else c.confidence

            return classifier_value
        info = lookup(name)
        assert info is not None
        get = info.get
        if kind == "num":
            return lambda r, state: as_number(get(r))
        if kind == "str":
            return lambda r, state: as_string(get(r))
        if kind == "bool":
            return lambda r, state: as_bool(get(r))
        if kind == "present":
            return lambda r, state: get(r) is not None
        scan = self.matcher.scan
        if kind == "match":

            def found(r: Request, state: dict[Any, Any]) -> Any:
                s = get(r)
                if not isinstance(s, str):
                    return frozenset()
                got = state.get(name)
                if got is None:
                    got = state[name] = scan(s)
                return got[0]

            return found
        assert kind == "regex"
        regex = self.regexes[fid]
        needed = self.prefilter.get(fid)

        def matched(r: Request, state: dict[Any, Any]) -> Any:
            s = get(r)
            if not isinstance(s, str):
                return None
            if needed is not None:
                got = state.get(name)
                if got is None:
                    got = state[name] = scan(s)
                if needed.isdisjoint(got[1]):
                    return False  # a literal it cannot match without is absent
            return regex_search(regex, s)

        return matched

    def scans(self, features: Sequence[Feature]) -> dict[int, Scan]:
        """How generated code reads the phrase and regex features (see codegen)."""
        scan = self.matcher.scan
        scans = {}
        for fid, f in enumerate(features):
            if f.key[0] == "match":
                scans[fid] = Scan(f.key[1], scan)
            elif f.key[0] == "regex":
                regex, literals = self.regexes[fid], self.prefilter.get(fid)
                scans[fid] = Scan(f.key[1], scan, regex, literals, regex_search)
        return scans

    def getter(self, fid: int, key: tuple[str, ...]) -> Callable[[Context], Any]:
        """How the diagram walk (`explain`) reads feature `fid`: the evaluator's reading."""
        kind, name = key[0], key[1]
        if kind in ("label", "confidence"):
            field = kind

            def classifier_value(ctx: Context) -> Any:
                c = self.classification(ctx, name)
                return c.label if field == "label" else c.confidence

            return classifier_value
        value = self.value(fid, key)
        return lambda ctx: value(ctx.request, ctx.scans)

    def classify(
        self, state: dict[Any, Any], name: str, request: Request, trace: list[Any] | None
    ) -> Classification:
        known = state.get(("classifier", name))
        if known is not None:
            return known  # type: ignore[no-any-return]
        spec = self.classifiers[name]
        result = FAILED_CLASSIFICATION
        classifier = state.get("classifier")
        given = request.classifiers.get(name)
        outcome = "asked" if classifier is not None else "not asked: no classifier"
        if given is not None:  # the caller's answer: nothing to ask
            result = valid_classification(given, spec)
            outcome = (
                "given" if result == given else "given, not one of its labels: counts as failed"
            )
        elif classifier is not None:
            try:
                answer = classifier.classify(spec, request)
            except Exception as e:  # a classifier failure is an answer, not a crash
                log.warning("classifier %s failed: %s", name, e)
                answer = FAILED_CLASSIFICATION
            result = valid_classification(answer, spec)
        state[("classifier", name)] = result
        if trace is not None:
            trace.append((f"classifier {name}", (result.label, result.confidence), outcome))
        return result

    def classification(self, ctx: Context, name: str) -> Classification:
        ctx.scans.setdefault("classifier", ctx.classifier)
        return self.classify(ctx.scans, name, ctx.request, ctx.trace)


def valid_classification(answer: Any, spec: ClassifierSpec) -> Classification:
    if not isinstance(answer, Classification) or answer.label not in spec.labels:
        return FAILED_CLASSIFICATION
    conf = as_number(answer.confidence)
    if conf is None or conf != conf:
        return FAILED_CLASSIFICATION
    return Classification(answer.label, min(1.0, max(0.0, float(conf))))
