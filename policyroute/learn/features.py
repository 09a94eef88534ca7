"""Candidate conditions, in the language's own terms, and which training requests each holds for.

Every candidate is something a reviewer can read in a `.route` file: a phrase the prompt
contains, a length or turns threshold, a regex from a small vetted family, a request
attribute's value. Nothing is a score. Candidates are mined from the training requests only,
and each candidate's truth on a request is computed by the language's own machinery (the
policy's phrase automaton, RE2 regexes, the attribute table), so what the learner measures
is what the emitted rule will do.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..compiler.features import PhraseMatcher, compile_regex, normalize_text
from ..request import Request
from ..request.attributes import ATTRIBUTES, FAMILIES, lookup
from ..syntax.formatter import fmt_str
from ..syntax.keywords import LANGUAGE_KEYWORDS
from .data import Example

if TYPE_CHECKING:
    import numpy as np

# Families: how items of one kind merge into one rule.
PHRASE = "phrase"  # prompt contains any [phrases]
REGEX = "regex"  # prompt matches /a/ or prompt matches /b/
ABOVE = "above"  # attr > smallest threshold
BELOW = "below"  # attr < largest threshold
VALUE = "value"  # attr in [values]


@dataclass(frozen=True, slots=True)
class Item:
    """One candidate condition: a family (kind, attribute) and the value that makes it."""

    kind: str
    attr: str
    value: str | int | float | bool

    @property
    def family(self) -> tuple[str, str]:
        return (self.kind, self.attr)

    def label(self) -> str:
        if self.kind == PHRASE:
            return f"{self.attr} contains {fmt_str(str(self.value))}"
        if self.kind == REGEX:
            return f"{self.attr} matches {self.value}"
        if self.kind == ABOVE:
            return f"{self.attr} > {self.value}"
        if self.kind == BELOW:
            return f"{self.attr} < {self.value}"
        if isinstance(self.value, bool):
            return f"{self.attr} == {'true' if self.value else 'false'}"
        return f"{self.attr} == {fmt_str(str(self.value))}"


# The vetted regex family: each names a property of a prompt a reviewer recognises, runs on
# RE2 and cannot match the empty string. Patterns are written as they appear in the policy.
REGEXES: dict[str, tuple[str, str]] = {
    "code_fence": ("```", ""),
    "code_syntax": (r"[A-Za-z_][A-Za-z0-9_]*\([^()\n]*\)\s*[{:;]|[{};]\s*$", "m"),
    "dense_numbers": (r"\d+(?:[.,]\d+)?(?:\D{1,12}\d+(?:[.,]\d+)?){3}", ""),
    "arithmetic": (r"\d\s*[-+*/×÷^=]\s*\d", ""),
    "math_symbols": (r"[≤≥≠±√∑∫∞πθ]|\^\d|\b[a-z]\s*=\s*-?\d", ""),
    "latex": (r"\\(?:frac|sqrt|sum|int|begin|cdot|times|alpha|beta|theta|pi)\b|\$[^$\n]+\$", ""),
    "several_questions": (r"\?[^?]+\?", "s"),
    "enumerated_list": (r"^\s*(?:\d+[.)]|[-*•])\s+\S", "m"),
    "long_quotation": (r"\"[^\"\n]{30,}\"", ""),
    "url": (r"https?://", ""),
}

# Words that say nothing about difficulty; a learned keyword set made of them would be noise
# a reviewer has to read past.
_STOPWORDS_TEXT = """
    a about above after again against all am an and any are as at
    be because been before being below between both but by can could did do
    does doing down during each few for from further had has have having he
    her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off
    on once only or other our ours ourselves out over own same she should
    so some such than that the their theirs them themselves then there these they
    this those through to too under until up very was we were what when
    where which while who whom why will with would you your yours yourself yourselves
    also may might must shall us one two using use used following
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())

_WORD = re.compile(r"\w+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The attributes learn may write a condition on, by how (the registry's `learn`).
# Phrases and regexes are learnt on the prompt only (the registry's "phrases").
assert [a.name for a in ATTRIBUTES.values() if a.learn == "phrases"] == ["prompt"]
NUMERIC_ATTRS = tuple(a.name for a in ATTRIBUTES.values() if a.learn == "cuts")
STEP_ATTRS = tuple(a.name for a in ATTRIBUTES.values() if a.learn == "steps")
STRING_ATTRS = tuple(a.name for a in ATTRIBUTES.values() if a.learn == "values")
VALUE_FAMILIES = tuple(f for f in FAMILIES.values() if f.learn == "values" and f.field)


@dataclass(frozen=True, slots=True)
class Candidates:
    items: list[Item]
    masks: np.ndarray  # (len(items), n) float32: 1.0 where the item holds


def _nice(x: float) -> int:
    """A threshold a person would write: two significant digits."""
    if x < 10:
        return max(1, round(x))
    digits = math.floor(math.log10(x)) - 1
    return int(round(x / 10**digits) * 10**digits)


def _phrases(
    prompts: Sequence[str],
    groups: Sequence[str],
    min_support: int,
    min_groups: int,
    max_share: float,
    limit: int,
) -> list[str]:
    """Words and two-word phrases of the prompts with enough support, most supported first."""
    docs: Counter[str] = Counter()
    per_doc: list[set[str]] = []
    for text in prompts:
        norm = normalize_text(text)
        seen: set[str] = set()
        prev: re.Match[str] | None = None
        for m in _WORD.finditer(norm):
            word = m.group()
            good = len(word) >= 3 and not word.isdigit() and word not in STOPWORDS
            if good:
                seen.add(word)
            if prev is not None and norm[prev.end() : m.start()] == " ":
                a = prev.group()
                if (good or (len(a) >= 3 and a not in STOPWORDS)) and not (
                    a.isdigit() or word.isdigit()
                ):
                    seen.add(f"{a} {word}")
            prev = m
        docs.update(seen)
        per_doc.append(seen)
    where: dict[str, set[str]] = {p: set() for p, n in docs.items() if n >= min_support}
    for seen, group in zip(per_doc, groups, strict=True):
        for phrase in seen:
            if phrase in where:
                where[phrase].add(group)
    most = max_share * len(prompts)
    kept = [p for p, n in docs.items() if min_support <= n <= most and len(where[p]) >= min_groups]
    kept.sort(key=lambda p: (-docs[p], p))
    return kept[:limit]


def _value(request: Request, attr: str) -> Any:
    info = lookup(attr)
    return info.get(request) if info is not None else None


def generate(
    train: Sequence[Example],
    *,
    min_support: int,
    min_groups: int,
    exclude: frozenset[str] = frozenset(),
    max_phrases: int = 1500,
    max_share: float = 0.6,
) -> Candidates:
    """Every candidate condition with enough support on the training requests.

    `exclude` names attributes never to use (the field that defines groups: a rule on it
    could only ever recognise groups it has seen). Identical masks are kept once, the
    simplest condition winning, so the policy never lists two phrases that mean the same.
    """
    import numpy as np

    n = len(train)
    requests = [ex.request for ex in train]
    prompts = [r.prompt or "" for r in requests]
    groups = [ex.group for ex in train]
    columns: list[tuple[Item, np.ndarray]] = []

    phrases = (
        []
        if "prompt" in exclude
        else _phrases(prompts, groups, min_support, min_groups, max_share, max_phrases)
    )
    if phrases:
        matcher = PhraseMatcher(phrases)
        found = [matcher.find(p) for p in prompts]
        block = np.zeros((len(matcher.phrases), n), dtype=np.float32)
        for j, ids in enumerate(found):
            for pid in ids:
                block[pid, j] = 1.0
        for pid, phrase in enumerate(matcher.phrases):
            columns.append((Item(PHRASE, "prompt", phrase), block[pid]))

    if "prompt" not in exclude:
        for name, (pattern, flags) in REGEXES.items():
            regex = compile_regex(pattern, flags)
            col = np.array([regex.search(p) is not None for p in prompts], dtype=np.float32)
            columns.append((Item(REGEX, "prompt", name), col))

    for attr in (*NUMERIC_ATTRS, *STEP_ATTRS):
        if attr in exclude:
            continue
        values = [_value(r, attr) for r in requests]
        nums = np.array([v if isinstance(v, (int, float)) else np.nan for v in values], float)
        present = nums[~np.isnan(nums)]
        if present.size < min_support:
            continue
        if attr in STEP_ATTRS:
            cuts = sorted({int(v) for v in present})[:-1]
        else:
            cuts = sorted({_nice(q) for q in np.quantile(present, np.linspace(0.1, 0.9, 9))})
        with np.errstate(invalid="ignore"):
            for cut in cuts:
                columns.append((Item(ABOVE, attr, cut), (nums > cut).astype(np.float32)))
                if attr not in STEP_ATTRS:
                    columns.append((Item(BELOW, attr, cut), (nums < cut).astype(np.float32)))

    # A key the language cannot spell as `metadata.KEY` cannot be a condition.
    keyed = [
        f"{family.prefix}.{k}"
        for family in VALUE_FAMILIES
        for k in sorted(
            k
            for k in {k for r in requests for k in getattr(r, family.field or "")}
            if _NAME.fullmatch(k) and k not in LANGUAGE_KEYWORDS
        )
    ]
    for attr in (*STRING_ATTRS, *keyed):
        if attr in exclude or lookup(attr) is None:
            continue
        values = [_value(r, attr) for r in requests]
        counts = Counter(v for v in values if isinstance(v, (str, bool)))
        for value, count in sorted(counts.items(), key=lambda kv: str(kv[0])):
            if count < min_support:
                continue
            hit = [v == value and type(v) is type(value) for v in values]
            if len({g for g, h in zip(groups, hit, strict=True) if h}) < min_groups:
                continue
            columns.append((Item(VALUE, attr, value), np.array(hit, dtype=np.float32)))

    kept: list[tuple[Item, np.ndarray]] = []
    seen: dict[bytes, int] = {}
    for item, col in columns:
        support = int(col.sum())
        if support < min_support or support == n:
            continue
        key = np.packbits(col.astype(bool)).tobytes()
        if key in seen:
            continue  # the earlier (simpler or more supported) condition says the same
        seen[key] = len(kept)
        kept.append((item, col))
    masks = np.stack([c for _, c in kept]) if kept else np.zeros((0, n), dtype=np.float32)
    return Candidates([i for i, _ in kept], masks)
