"""The attribute registry: every request attribute a policy can read, declared once.

One `Attribute` per name says everything the rest of the system needs to know about it: its
type (for the checker), how a `Request` holds it, how generated code reads it, how
`--attr` and inline tests set it, how a witness request carries it, whether `learn` may
write a condition on it, and its line in docs/language.md. `Request`'s fields, codegen's
reads, inline tests, witnesses, the CLI's flags, learn's candidates and the documentation
table are all derived from here, so adding an attribute is one entry (and its docs).

A `Family` is a set of attributes sharing a prefix whose names are made on use:
`metadata.KEY` reads key KEY of the request's `metadata` mapping. `lookup(name)` answers both.

Entries registered after `Request` is built (a plugin, a test) get no slot of their own:
their values live in `Request.extra`, read the same way through `read`.

Near 475 lines, and kept whole: half of it is the table itself (one entry per attribute),
and the point of the registry is that the table and the functions deriving from it are read
in one place.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, Literal

# Attribute types as the checker sees them.
TEXT = "text"
INT = "int"
STRING = "string"
BOOL = "bool"
NUMBER = "number"
LABEL = "label"
DYNAMIC = "dynamic"  # metadata.KEY: typed by how a rule uses it
USD = "usd"  # spend.SCOPE.WINDOW: US dollars, 0 or more, read from the runtime's state

# How a witness (analysis/witness.py) carries a value of the attribute in request JSON:
# "route" at the attribute's `route` path; the others are parts of the Messages API
# parameters, each built by its own code there.
Witness = Literal[
    "route", "prompt", "system", "text", "length", "turns", "max_tokens", "tools", "images"
]
# How `learn` may use the attribute: "phrases" (words of the text), "cuts" (above and below
# thresholds at its quantiles), "steps" (above each value seen), "values" (equal to a value).
Learn = Literal["phrases", "cuts", "steps", "values"]

# Rough token estimate when the caller gives no count: ~4 characters a token for text and the
# published upper bound for one image.
CHARS_PER_TOKEN = 4
TOKENS_PER_IMAGE = 1600

_NAME = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*")


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute a condition can read."""

    name: str  # as a policy spells it: "user.tier"
    type: str  # TEXT, INT, STRING, BOOL or DYNAMIC
    doc: str  # its line in docs/language.md's attribute table
    # The `Request` keyword (and slot) holding its value; None for a computed attribute.
    field: str | None = None
    # Python source over the request `r` that reads it, for generated code; default
    # `r.FIELD`. `get` is the same read, compiled once.
    read: str = ""
    # Where a request JSON's `route` object carries it (("user", "tier")); None when it comes
    # from the Messages API parameters (prompt, max_tokens, ...) or is computed.
    route: tuple[str, ...] | None = None
    # A dedicated flag of `route` and `ask` (`--user-tier`); every settable attribute also
    # takes `--attr NAME=VALUE`.
    flag: bool = False
    # What a computed attribute is computed from (setting it is an error that says so).
    computed_from: str | None = None
    witness: Witness = "route"
    # A request JSON with a prompt always has a value for it (a witness prefers one).
    always_given: bool = False
    learn: Learn | None = None
    get: Callable[[Any], Any] = dataclass_field(default=lambda r: None, compare=False, repr=False)

    @property
    def settable(self) -> bool:
        """Whether inline tests, `--attr` and request JSON may give it a value."""
        return self.field is not None and self.computed_from is None

    @property
    def default(self) -> Any:
        """What a request that does not give it holds: False for a flag, else None
        (missing)."""
        return False if self.type == BOOL else None


@dataclass(frozen=True, slots=True)
class Family:
    """Attributes `PREFIX.KEY` whose names are made on use, like `metadata.region`.

    By default a member reads key KEY of the request's mapping `field`; `read` (Python
    source with `{key}` for the key's repr) reads it from anywhere else, e.g. state. With
    `parts=2` a name has two parts after the prefix (`spend.user.day`: KEY is "user.day").
    """

    prefix: str  # "metadata"
    type: str  # DYNAMIC: typed by how a rule uses it
    doc: str
    field: str | None = None  # the Request keyword holding the mapping, if the request does
    route: tuple[str, ...] | None = None  # where request JSON's `route` object carries it
    doc_type: str = ""  # the type column of the docs table (default: `type`)
    learn: Learn | None = None
    parts: int = 1
    read: str = ""
    # How a given mapping of the family's values is checked (default: as metadata), and the
    # keys a member may have (None: any word).
    check: Callable[[str, Any], Any] | None = None
    keys: frozenset[str] | None = None

    def member(self, key: str) -> Attribute:
        read = self.read.format(key=repr(key)) if self.read else f"r.{self.field}.get({key!r})"
        one = self.parts == 1 and self.route is not None and self.field is not None
        return _make(
            Attribute(
                f"{self.prefix}.{key}",
                self.type,
                f"{self.prefix} key {key!r}",
                read=read,
                route=(*self.route, key) if one and self.route is not None else None,
                learn=self.learn,
                # A member the request carries is settable through the family's mapping.
                witness="route",
            )
        )

    def key_of(self, name: str) -> str | None:
        """KEY of `PREFIX.KEY`, or None when `name` is not one of this family's."""
        head, dot, key = name.partition(".")
        if head != self.prefix or not dot:
            return None
        words = key.split(".")
        if self.keys is not None:
            return key if key in self.keys else None
        return key if len(words) == self.parts and all(words) else None


# The names a `read` may use besides `r`; generated code has them in scope too.
READ_SCOPE: dict[str, Any] = {
    "CHARS_PER_TOKEN": CHARS_PER_TOKEN,
    "TOKENS_PER_IMAGE": TOKENS_PER_IMAGE,
    "EMPTY": {},
}


def _make(a: Attribute) -> Attribute:
    """The entry with its read source and getter filled in."""
    read = a.read or f"r.{a.field}"
    get = eval(f"lambda r: {read}", dict(READ_SCOPE))  # the registry's own source, never input
    object.__setattr__(a, "read", read)
    object.__setattr__(a, "get", get)
    return a


def _extra_read(a: Attribute) -> Attribute:
    """An attribute registered after Request was built reads from `Request.extra`."""
    if not a.read and a.field is not None:
        default = ", False" if a.type == BOOL else ""
        object.__setattr__(a, "read", f"r.extra.get({a.field!r}{default})")
    return _make(a)


ATTRIBUTES: dict[str, Attribute] = {}
FAMILIES: dict[str, Family] = {}
# Set once Request is built: fields registered later live in Request.extra.
_sealed: list[bool] = [False]
# Bumped by every change to the registry, so what is derived from it (replay's route plan)
# is made again only when it changed.
_revision: list[int] = [0]


def revision() -> int:
    """A number that changes whenever an entry is registered or removed."""
    return _revision[0]


def seal() -> None:
    """Request has been made from the entries so far; later fields live in Request.extra."""
    _sealed[0] = True


def register(a: Attribute) -> Attribute:
    """Add an attribute; the checker, compiler, tests, witnesses and CLI know it from then on.
    Policies compiled before keep what they read."""
    if not _NAME.fullmatch(a.name):
        raise ValueError(f"attribute name {a.name!r}: lowercase words joined by dots")
    if a.name in ATTRIBUTES or a.name.partition(".")[0] in FAMILIES:
        raise ValueError(f"attribute {a.name!r} is already registered")
    if a.field is not None and a.field in fields():
        raise ValueError(f"Request field {a.field!r} is already taken")
    if a.type not in (TEXT, INT, STRING, BOOL, NUMBER):
        raise ValueError(f"attribute {a.name!r}: unknown type {a.type!r}")
    if a.route is not None and not 1 <= len(a.route) <= 2:
        raise ValueError(f"attribute {a.name!r}: a route path has one or two parts")
    entry = _extra_read(a) if _sealed[0] else _make(a)
    ATTRIBUTES[a.name] = entry
    _revision[0] += 1
    return entry


def unregister(name: str) -> None:
    """Remove an attribute registered at run time (a test's own)."""
    del ATTRIBUTES[name]
    _revision[0] += 1


def register_family(f: Family) -> Family:
    """Add a family of attributes `PREFIX.KEY`."""
    if f.prefix in FAMILIES or any(n.partition(".")[0] == f.prefix for n in ATTRIBUTES):
        raise ValueError(f"attribute family {f.prefix!r} is already registered")
    if f.field is not None and f.field in fields():
        raise ValueError(f"Request field {f.field!r} is already taken")
    if _sealed[0] and f.field is not None and not f.read:
        object.__setattr__(f, "read", f"r.extra.get({f.field!r}, EMPTY).get({{key}})")
    FAMILIES[f.prefix] = f
    _revision[0] += 1
    return f


def unregister_family(prefix: str) -> None:
    del FAMILIES[prefix]
    _revision[0] += 1


def lookup(name: str) -> Attribute | None:
    """The attribute a dotted name reads, or None. Classifier attributes are the checker's."""
    found = ATTRIBUTES.get(name)
    if found is not None:
        return found
    family = FAMILIES.get(name.partition(".")[0])
    if family is not None:
        key = family.key_of(name)
        if key is not None:
            return family.member(key)
    return None


def test_settable(name: str) -> bool:
    """Whether an inline test (or `--attr`) can give attribute `name` a value."""
    family = family_of(name)
    if family is not None:
        return family.field is not None
    found = ATTRIBUTES.get(name)
    return found is not None and found.settable


def family_of(name: str) -> Family | None:
    family = FAMILIES.get(name.partition(".")[0])
    return family if family is not None and family.key_of(name) is not None else None


def fields() -> dict[str, Attribute | Family]:
    """Every Request keyword an attribute or family holds its value in, in registry order."""
    out: dict[str, Attribute | Family] = {}
    for a in ATTRIBUTES.values():
        if a.field is not None:
            out[a.field] = a
    for f in FAMILIES.values():
        if f.field is not None:
            out[f.field] = f
    return out


def settable() -> Iterator[Attribute]:
    return (a for a in ATTRIBUTES.values() if a.settable)


def spelled() -> list[str]:
    """The settable attributes as a help text lists them: families as PREFIX.KEY."""
    return [
        *(a.name for a in settable()),
        *(f"{f.prefix}.{'SCOPE.WINDOW' if f.parts == 2 else 'KEY'}" for f in FAMILIES.values()),
    ]


def route_keys() -> frozenset[str]:
    """The keys a `route` object (or the keyword form) may carry, classifier answers included."""
    keys = {"classifiers"}
    for a in settable():
        if a.route is not None:
            keys.add(a.route[0])
            keys.add(a.field or "")
    for f in FAMILIES.values():
        if f.route is not None and f.field is not None:
            keys.add(f.route[0])
            keys.add(f.field)
    keys.discard("")
    return frozenset(keys)


# The rows of the docs table that are the checker's, not the registry's.
CLASSIFIER_ROWS = (
    ("CLASSIFIER.label", "string (one of the classifier's `labels`)", "the classifier's answer"),
    ("CLASSIFIER.confidence", "number in [0, 1]", "the classifier's confidence"),
)


def docs_table() -> str:
    """The attribute table of docs/language.md, from the registry (a test keeps them equal)."""
    rows = ["| attribute | type | value |", "| --- | --- | --- |"]
    for a in ATTRIBUTES.values():
        rows.append(f"| `{a.name}` | {a.type} | {a.doc} |")
    for f in FAMILIES.values():
        key = "SCOPE.WINDOW" if f.parts == 2 else "KEY"
        rows.append(f"| `{f.prefix}.{key}` | {f.doc_type or f.type} | {f.doc} |")
    for name, typ, doc in CLASSIFIER_ROWS:
        rows.append(f"| `{name}` | {typ} | {doc} |")
    return "\n".join(rows) + "\n"


def test_table() -> str:
    """The table of what an inline test may set (docs/language.md), from the registry."""
    how = {TEXT: "string (`\\n` and `\\t` escapes work)", STRING: "string", BOOL: "`true`/`false`"}
    how[INT] = "whole number (`120k` is fine)"
    how[NUMBER] = "number"
    rows = ["| attribute | value |", "| --- | --- |"]
    for a in settable():
        rows.append(f"| `{a.name}` | {how[a.type]} |")
    for f in FAMILIES.values():
        shown = "number of USD, 0 or more" if f.type == USD else "string, number or `true`/`false`"
        rows.append(f"| `{f.prefix}.{'SCOPE.WINDOW' if f.parts == 2 else 'KEY'}` | {shown} |")
    rows.append(
        "| `CLASSIFIER.label`, `CLASSIFIER.confidence` | the classifier's answer (addition) |"
    )
    return "\n".join(rows) + "\n"


# -- the attributes -----------------------------------------------------------------------------

for _a in (
    Attribute(
        "prompt",
        TEXT,
        "what the person wrote in the last user turn: its text blocks joined by a newline, "
        "without tool results and `<system-reminder>` blocks "
        "([below](#attributes-from-a-messages-api-request))",
        field="prompt",
        witness="prompt",
        learn="phrases",
    ),
    Attribute(
        "system",
        TEXT,
        'the system prompt\'s text, and that of `role: "system"` messages',
        field="system",
        witness="system",
        flag=True,
    ),
    Attribute(
        "text",
        TEXT,
        "all text of the request: system and every message",
        field="text",
        witness="text",
        computed_from="prompt",
        learn="phrases",
    ),
    Attribute(
        "length",
        INT,
        "characters (code points) in `prompt`",
        read="(len(r.prompt) if r.prompt is not None else None)",
        computed_from="prompt",
        witness="length",
        always_given=True,
        learn="cuts",
    ),
    Attribute(
        "files",
        INT,
        "files involved, as the caller says",
        field="files",
        route=("files",),
        flag=True,
        learn="cuts",
    ),
    Attribute(
        "context_tokens",
        INT,
        "tokens of the whole request (system, tools and messages): the caller's count if "
        "given, else an estimate",
        field="context_tokens",
        # Request.estimated_context_tokens, without the call: decide() sits on every request.
        read=(
            "(r.context_tokens if r.context_tokens is not None else None if r.text is None"
            " else -(-len(r.text) // CHARS_PER_TOKEN) + (TOKENS_PER_IMAGE if r.has_images else 0))"
        ),
        route=("context_tokens",),
        flag=True,
        always_given=True,
    ),
    Attribute(
        "output_tokens",
        INT,
        "the `max_tokens` the caller asked for, if any",
        field="output_tokens",
        witness="max_tokens",
    ),
    Attribute(
        "turns",
        INT,
        "number of user and assistant messages",
        field="turns",
        witness="turns",
        always_given=True,
        learn="steps",
    ),
    Attribute(
        "task",
        STRING,
        "as the caller says",
        field="task",
        route=("task",),
        flag=True,
        learn="values",
    ),
    Attribute(
        "domain",
        STRING,
        "as the caller says",
        field="domain",
        route=("domain",),
        flag=True,
        learn="values",
    ),
    Attribute(
        "user.tier",
        STRING,
        "the user's plan, as the caller says",
        field="user_tier",
        route=("user", "tier"),
        flag=True,
        learn="values",
    ),
    Attribute(
        "user.id",
        STRING,
        "the user's id, as the caller says",
        field="user_id",
        route=("user", "id"),
        flag=True,
    ),
    Attribute(
        "has_tools",
        BOOL,
        "whether the request carries tools",
        field="has_tools",
        witness="tools",
        always_given=True,
    ),
    Attribute(
        "has_images",
        BOOL,
        "whether the request carries images (or documents)",
        field="has_images",
        witness="images",
        always_given=True,
    ),
):
    register(_a)

register_family(
    Family(
        "metadata",
        DYNAMIC,
        "as the caller says; typed by how the policy uses it",
        field="metadata",
        route=("metadata",),
        doc_type="string, number or bool",
        learn="values",
    )
)


def _spend_check(where: str, value: Any) -> Any:
    from .spend import SpendReader, check

    return value if isinstance(value, SpendReader) else check(where, value)


def _spend_keys() -> frozenset[str]:
    from .spend import SCOPES, WINDOWS

    return frozenset(f"{s}.{w}" for s in SCOPES for w in WINDOWS)


# Spend: given (tests, --attr, replay's counters) or read lazily from the runtime's state.
register_family(
    Family(
        "spend",
        USD,
        "spent so far this window (see [spend](#spend))",
        field="spend",
        route=("spend",),
        doc_type="number of USD, 0 or more",
        parts=2,
        read="r.spend.get('spend.' + {key})",
        check=_spend_check,
        keys=_spend_keys(),
    )
)
