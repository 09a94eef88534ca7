"""What a request is made of, as far as routing is concerned.

A `Request` is built once per call, from keyword attributes or from real Messages API
parameters; the evaluator reads its fields lazily, so nothing here is computed that a policy
does not ask for except the few joins below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..decision import Classification
from . import attributes, checks
from .attributes import BOOL, CHARS_PER_TOKEN, INT, TEXT, TOKENS_PER_IMAGE, Attribute, Family
from .checks import RequestError as RequestError
from .checks import confidence_value as confidence_value


def _messages() -> Any:
    """policyroute.request.messages, which imports this module: imported on first use, then
    held (an import statement in from_anthropic cost a replayed line about 3 µs)."""
    if not _MESSAGES:
        from . import messages

        _MESSAGES.append(messages)
    return _MESSAGES[0]


_MESSAGES: list[Any] = []


def _restore(values: tuple[Any, ...]) -> Request:
    """A Request from its attribute values (unpickling, copying): already checked once."""
    r = Request.__new__(Request)
    for name, value in zip(Request.__slots__, values, strict=True):
        object.__setattr__(r, name, value)
    return r


class Request:
    """Routing attributes of one request, checked when made and immutable after.
    Missing attributes are None.

    Its fields are the registry's (request/attributes.py): `__init__` is written from it
    when the class is made (see `_write_init`); the annotations below are for type
    checkers. Attributes registered later keep their values in `extra`.
    """

    __slots__ = tuple(sorted([*attributes.fields(), "classifiers", "extra"]))
    classifiers: Mapping[str, Classification]
    prompt: str | None
    system: str | None
    text: str | None
    task: str | None
    domain: str | None
    user_tier: str | None
    user_id: str | None
    files: int | None
    context_tokens: int | None
    output_tokens: int | None
    turns: int | None
    metadata: Mapping[str, Any]
    spend: Mapping[str, float]  # given, or a SpendReader reading the runtime's state lazily
    has_tools: bool
    has_images: bool
    extra: Mapping[str, Any]

    if TYPE_CHECKING:

        def __init__(self, prompt: str | None = None, **attrs: Any) -> None: ...

    # Immutable, so an attribute holds the type its check allowed for as long as the request
    # lives: decide()'s generated code relies on it. `replace()` makes a changed copy.
    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a Request cannot be changed ({name}); use request.replace()")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"a Request cannot be changed ({name}); use request.replace()")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (tuple(getattr(self, k) for k in self.__slots__),))

    def replace(self, **changes: Any) -> Request:
        """A copy with some attributes changed (keyword form), checked like a new request.

        `text` follows a changed `system` or `prompt`: it is rebuilt from the new system
        prompt and the messages' text."""
        fields = {k: getattr(self, k) for k in self.__slots__}
        if ("system" in changes or "prompt" in changes) and "text" not in changes:
            rest = self.text or ""
            if self.system and rest.startswith(self.system):
                rest = rest[len(self.system) :].removeprefix("\n")
            if "prompt" in changes and self.prompt is not None and rest.endswith(self.prompt):
                rest = rest[: len(rest) - len(self.prompt)]
                rest += changes["prompt"] or ""
            elif "prompt" in changes and not rest:
                rest = changes["prompt"] or ""
            system = changes.get("system", self.system)
            changes["text"] = "\n".join(p for p in (system, rest) if p)
        extra = fields.pop("extra")
        fields.update(changes)
        prompt = fields.pop("prompt")
        return Request(prompt, **{**extra, **fields})

    def with_spend(self, spend: Any) -> Request:
        """A copy that reads its spend from `spend` (the runtime's lazy state reader,
        request/spend.py's SpendReader); every other value is this request's, already
        checked, so nothing is checked again."""
        r = Request.__new__(Request)
        set_ = object.__setattr__
        for name in Request.__slots__:
            set_(r, name, getattr(self, name))
        set_(r, "spend", spend)
        return r

    @property
    def length(self) -> int | None:
        return len(self.prompt) if self.prompt is not None else None

    def estimated_context_tokens(self) -> int | None:
        if self.context_tokens is not None:
            return self.context_tokens
        if self.text is None:
            return None
        images = 1 if self.has_images else 0
        return -(-len(self.text) // CHARS_PER_TOKEN) + images * TOKENS_PER_IMAGE

    def __repr__(self) -> str:
        values = {k: getattr(self, k) for k in self.__slots__ if k != "extra"} | dict(self.extra)
        shown = {k: v for k, v in values.items() if v not in (None, {})}
        if "prompt" in shown and len(shown["prompt"]) > 60:
            shown["prompt"] = shown["prompt"][:57] + "..."
        shown.pop("text", None)
        return "Request(" + ", ".join(f"{k}={v!r}" for k, v in sorted(shown.items())) + ")"

    # -- construction from the outside world ---------------------------------------------

    @classmethod
    def from_anthropic(cls, params: Mapping[str, Any], /, **attrs: Any) -> Request:
        """From Messages API parameters (`system`, `messages`, `tools`, `max_tokens`, ...).

        `attrs` are routing attributes in the keyword form (`task=`, `user_tier=`, ...) or
        the `route` object form (`user={"tier": ...}`). The mapping itself, and what each
        attribute means for such a request, is `policyroute.request.messages`.
        """
        mapped = _messages().from_messages_api(params, **attrs)
        request: Request = mapped.request
        return request

    @classmethod
    def from_json(cls, obj: Any) -> Request:
        """From one JSON object: Messages API parameters plus a `route` object."""
        route = route_of(obj)
        params = {k: v for k, v in obj.items() if k != "route"}
        return cls.from_anthropic(params, **route)


def route_of(obj: Any) -> Mapping[str, Any]:
    """The `route` object of a request in JSON form (empty if absent), or RequestError when
    the request or its `route` is not an object: Request.from_json's checks, which replay
    makes on the line it parsed."""
    if not isinstance(obj, (dict, Mapping)):
        raise RequestError("a request must be a JSON object")
    route = obj.get("route", {})
    if not isinstance(route, (dict, Mapping)):
        raise RequestError("'route' must be an object")
    return route


def check_value(a: Attribute, where: str, value: Any) -> Any:
    """`value` as attribute `a` holds it, or RequestError saying where and why."""
    return checker(a)(where, value)


def _boolean(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise RequestError(f"{where}: must be true or false, got {checks.type_name(value)}")
    return value


def checker(a: Attribute) -> Callable[[str, Any], Any]:
    """The check of attribute `a`'s type, as (where, value) -> value: chosen once, so code
    that checks every request (normalize_route's plan) does not dispatch on the type."""
    if a.type in (TEXT, attributes.STRING):
        return checks.string
    if a.type == INT:
        return checks.count
    if a.type == BOOL:
        return _boolean
    return checks.number


def _extra(given: Mapping[str, Any]) -> dict[str, Any]:
    """Values of attributes registered after Request was made, checked like the others."""
    out: dict[str, Any] = {}
    for name, value in given.items():
        entry = attributes.fields().get(name)
        if entry is None or name in _BUILT:
            raise TypeError(f"Request() got an unexpected keyword argument {name!r}")
        if isinstance(entry, Family):
            if value is not None:
                out[name] = checks.metadata(name, value)
        elif value is not None and value is not False:
            out[name] = check_value(entry, name, value)
    return out


_BUILT = frozenset(Request.__slots__)


# Request's own joins, after the registry's checks: `text` is the system prompt and the
# messages, a prompt makes one turn, classifier answers are checked once.
def joins(text: str, turns: str) -> list[str]:
    """The joins a Request makes, as lines of source assigning the names `text` and `turns`:
    `text` is the system prompt, then the prompt (a given `text` wins); `turns` is 1 for a
    prompt. Written into Request.__init__ and into the keyword entry
    (compiler/entry.py), so the two cannot drift apart."""
    return [
        "    if text is not None:",
        f"        {text} = text",
        "    elif system:",
        f"        {text} = system + '\\n' + prompt if prompt else system",
        "    else:",
        f"        {text} = prompt",
        f"    {turns} = turns if turns is not None or prompt is None else 1",
    ]


_DERIVED = (
    "\n".join(joins("text", "turns"))
    + """
    classifiers = ANSWERS("classifiers", classifiers) if classifiers else {}
    extra = EXTRA(extra) if extra else EMPTY
"""
)


def _write_init() -> Any:
    """Request.__init__ from the registry: one check per field, in registry order, then the
    joins above. Written out (as dataclasses do) because a request is made on every call."""
    params = ["self", "prompt=None", "*"]
    lines: list[str] = []
    sets: list[str] = []
    for name, entry in attributes.fields().items():
        is_family = isinstance(entry, Family)
        default = "False" if not is_family and entry.type == BOOL else "None"
        if name != "prompt":
            params.append(f"{name}={default}")
        if is_family:
            assert isinstance(entry, Family)
            check = "MAPPING" if entry.check is None else f"CHECK_{name}"
            lines.append(f"    if {name} is not None:\n        {name} = {check}({name!r}, {name})")
            sets.append(f"    set_(self, {name!r}, {name} if {name} is not None else {{}})")
            continue
        assert isinstance(entry, Attribute)
        if entry.type in (TEXT, attributes.STRING):  # inline: the common case, and cheap
            lines.append(
                f"    if {name} is not None and not isinstance({name}, str):\n"
                f"        raise ERROR(f'{name}: must be a string, got {{TYPE_NAME({name})}}')"
            )
        elif entry.type == BOOL:
            lines.append(
                f"    if not isinstance({name}, bool):\n"
                f"        raise ERROR(f'{name}: must be true or false, got {{TYPE_NAME({name})}}')"
            )
        elif entry.type == INT:  # a plain int >= 0 is what checks.count returns unchanged
            lines.append(
                f"    if {name} is not None and ({name}.__class__ is not int or {name} < 0):\n"
                f"        {name} = CHECK_{name}({name!r}, {name})"
            )
        else:
            lines.append(
                f"    if {name} is not None:\n        {name} = CHECK_{name}({name!r}, {name})"
            )
        sets.append(f"    set_(self, {name!r}, {name})")
    params += ["classifiers=None", "**extra"]
    sets += ["    set_(self, 'classifiers', classifiers)", "    set_(self, 'extra', extra)"]
    source = (
        f"def __init__({', '.join(params)}):\n"
        + "\n".join(lines)
        + "\n"
        + _DERIVED
        + "    set_ = object.__setattr__\n"
        + "\n".join(sets)
        + "\n"
    )
    scope: dict[str, Any] = {
        "ERROR": RequestError,
        "TYPE_NAME": checks.type_name,
        "MAPPING": checks.metadata,
        "ANSWERS": checks.answers,
        "EXTRA": _extra,
        "EMPTY": {},
    }
    for name, entry in attributes.fields().items():
        if isinstance(entry, Attribute):
            scope[f"CHECK_{name}"] = checker(entry)
        elif entry.check is not None:
            scope[f"CHECK_{name}"] = entry.check
    exec(compile(source, "<policyroute Request.__init__>", "exec"), scope)
    init = scope["__init__"]
    init.__qualname__ = "Request.__init__"
    init.__doc__ = "Check the attributes (keyword form: `user_tier=`, `metadata=`...)."
    return init


Request.__init__ = _write_init()  # type: ignore[method-assign]
attributes.seal()


@dataclass(frozen=True, slots=True)
class _RoutePlan:
    """What normalize_route reads, from the registry as it stands: made once per state of
    the registry, not once per request (replay normalises a million of them)."""

    known: frozenset[str]
    # (its check, where, its field, its one-part route key when not the field, else None)
    # of each settable attribute
    flat: tuple[tuple[Callable[[str, Any], Any], str, str, str | None], ...]
    # head: (check, where, field, key)
    nested: dict[str, tuple[tuple[Callable[[str, Any], Any], str, str, str], ...]]
    families: tuple[tuple[str, Any], ...]  # (field, check)


_plan: list[tuple[int, _RoutePlan]] = []


def _route_plan() -> _RoutePlan:
    key = attributes.revision()
    if _plan and _plan[0][0] == key:
        return _plan[0][1]
    flat = []
    nested: dict[str, list[tuple[Callable[[str, Any], Any], str, str, str]]] = {}
    for a in attributes.settable():
        if a.route is None or a.field is None:
            continue
        where = "route." + ".".join(a.route)
        check = checker(a)
        # A one-part key equal to the field would only be looked up twice.
        head = a.route[0] if len(a.route) == 1 and a.route[0] != a.field else None
        flat.append((check, where, a.field, head))
        if len(a.route) > 1:
            nested.setdefault(a.route[0], []).append((check, where, a.field, a.route[1]))
    families = tuple(
        (f.field, f.check if f.check is not None else checks.metadata)
        for f in attributes.FAMILIES.values()
        if f.field is not None
    )
    plan = _RoutePlan(
        attributes.route_keys(),
        tuple(flat),
        {head: tuple(members) for head, members in nested.items()},
        families,
    )
    _plan[:] = [(key, plan)]
    return plan


def normalize_route(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Validate routing attributes given in either form and return Request keyword arguments.

    The `route` object form (`user={"tier": ...}`) and the keyword form (`user_tier=...`)
    may be mixed; a wrong type raises `RequestError` naming the attribute, never a silent
    "missing". What goes where is the registry's `route` of each attribute.
    """
    plan = _route_plan()
    known = plan.known
    if not known.issuperset(attrs):
        unknown = set(attrs) - known
        raise RequestError(
            f"unknown routing attribute(s): {', '.join(sorted(unknown))}; known: "
            + ", ".join(sorted(known))
        )
    out: dict[str, Any] = {}
    if not attrs:
        return out
    for check, where, field, head in plan.flat:
        value = attrs.get(field)
        if value is None and head is not None:
            value = attrs.get(head)
        if value is not None:
            # Named as the language names it (user.tier), whichever form gave it.
            out[field] = check(where, value)
    for field, check in plan.families:
        if attrs.get(field) is not None:
            out[field] = check(f"route.{field}", attrs[field])
    if attrs.get("classifiers") is not None:
        out["classifiers"] = checks.answers("route.classifiers", attrs["classifiers"])
    for head, members in plan.nested.items():
        group = attrs.get(head)
        if group is None:
            continue
        if not isinstance(group, (dict, Mapping)):
            raise RequestError(f"route.{head}: must be an object, got {checks.type_name(group)}")
        keys = {key for _, _, _, key in members}
        extra = set(group) - keys
        if extra:
            raise RequestError(
                f"route.{head}: unknown key(s) {', '.join(sorted(map(str, extra)))}; "
                f"known: {', '.join(sorted(keys))}"
            )
        for check, where, field, key in members:
            value = group.get(key)
            if value is not None:
                out.setdefault(field, check(where, value))
    return out
