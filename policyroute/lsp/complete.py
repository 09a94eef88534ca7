"""Completion: what may come next at the cursor, read from the text just before it.

The document being typed rarely parses, so the place is told by the words before the cursor
(after `->` a tier, after `contains any` a keyword set, after `escalate on` a trigger, at the
start of a line a statement keyword) and the names come from the last parse, whose error
recovery keeps every statement that does parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..compiler.check.model import CLASSIFIER_FIELDS
from ..decision import TRIGGERS
from ..request.attributes import ATTRIBUTES, FAMILIES
from ..syntax.keywords import STATEMENT_KEYWORDS
from .index import Index

# Kinds a client shows with an icon; named here so this module needs no protocol types.
KEYWORD, VARIABLE, CLASS, CONSTANT, FUNCTION, EVENT, FIELD = (
    "keyword",
    "variable",
    "class",
    "constant",
    "function",
    "event",
    "field",
)

CONDITION_WORDS = ("and", "or", "not", "in", "contains", "matches", "has", "any", "all")
RULE_OPTIONS = ("max_tokens", "escalate never", "escalate max")

_WORD = r"[A-Za-z_][A-Za-z0-9_]*"
_AFTER_ARROW = re.compile(rf"->\s*({_WORD})?$")
_TIER_PLACE = re.compile(rf"\b(using|shadow)\s+({_WORD})?$")
_SET_PLACE = re.compile(rf"\bcontains\s+(any|all)\s+({_WORD})?$")
_BY_PLACE = re.compile(rf"\bby\s+({_WORD})?$")
_TRIGGER_PLACE = re.compile(rf"\bescalate\s+on\s+(?:[^\n#]*,\s*)?({_WORD})?$")
_FIELD_PLACE = re.compile(rf"\b({_WORD})\.({_WORD})?$")
_LINE_START = re.compile(rf"^({_WORD})?$")
_AFTER_TIER = re.compile(rf"->\s*{_WORD}\s+(?:{_WORD}\s+)*({_WORD})?$")


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One completion offered at the cursor: its label, LSP kind and detail line, and what it
    inserts when that is not the label."""

    label: str
    kind: str
    detail: str = ""
    insert: str | None = None


def _strip_comment(line: str) -> str:
    """The line without a trailing `#` comment (a `#` inside a string is kept)."""
    quoted = False
    escaped = False
    for i, c in enumerate(line):
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == '"':
            quoted = not quoted
        elif c == "#" and not quoted:
            return line[:i]
    return line


def complete(index: Index, before: str) -> list[Suggestion]:
    """Completions for a cursor after the text `before` (the document up to the cursor)."""
    line = before.rsplit("\n", 1)[-1]
    if _strip_comment(line) != line or line.count('"') % 2 == 1:
        return []  # in a comment or a string
    tail = before[-400:]
    if _LINE_START.match(line):
        # A word at the start of a line starts a statement (continuations are indented).
        return [Suggestion(k, KEYWORD, "statement") for k in STATEMENT_KEYWORDS]
    tiers = [Suggestion(n, CLASS, "tier") for n in index.names("tier")]
    if _AFTER_ARROW.search(tail) or _TIER_PLACE.search(tail):
        return tiers
    if _SET_PLACE.search(tail):
        return [Suggestion(n, CONSTANT, "keyword set") for n in index.names("keywords")]
    if _BY_PLACE.search(tail):
        return [Suggestion(n, FUNCTION, "rule") for n in [*index.names("rule"), "default"]]
    if _TRIGGER_PLACE.search(tail) and "escalate" in line:
        return [
            Suggestion(t.name, EVENT, "trigger", f"{t.name} < " if t.threshold else None)
            for t in TRIGGERS.values()
        ]
    field = _FIELD_PLACE.search(tail)
    if field is not None:
        head = field.group(1)
        if head in index.names("classifier"):
            return [Suggestion(f, FIELD, f"classifier {head}") for f in CLASSIFIER_FIELDS]
        return [
            Suggestion(name.split(".", 1)[1], FIELD, ATTRIBUTES[name].type)
            for name in ATTRIBUTES
            if name.startswith(head + ".")
        ]
    if _AFTER_TIER.search(tail):
        return [Suggestion(o, KEYWORD, "rule option") for o in RULE_OPTIONS]
    return [
        *(Suggestion(name, VARIABLE, info.type) for name, info in ATTRIBUTES.items()),
        *(Suggestion(f"{f.prefix}.", VARIABLE, f"{f.prefix}.KEY") for f in FAMILIES.values()),
        *(
            Suggestion(f"{c}.{f}", VARIABLE, f"classifier {c}")
            for c in index.names("classifier")
            for f in CLASSIFIER_FIELDS
        ),
        *(Suggestion(w, KEYWORD, "condition") for w in CONDITION_WORDS),
    ]
