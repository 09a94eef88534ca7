"""What a request is made of, as far as routing is concerned.

A `Request` is built once per call, from keyword attributes or from real Messages API
parameters; the evaluator reads its fields lazily, so nothing here is computed that a policy
does not ask for except the few joins below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..decision import Classification
from . import checks
from .checks import RequestError as RequestError
from .checks import confidence_value as confidence_value

# Rough token estimate when the caller gives no count: ~4 characters a token for text and the
# published upper bound for one image.
CHARS_PER_TOKEN = 4
TOKENS_PER_IMAGE = 1600


# One set of checks serves keyword arguments, the `route` object of request JSON and
# `Request(...)`, so the Python API and the CLI accept and refuse exactly the same values.
ROUTE_KEYS = frozenset(
    (
        "task",
        "domain",
        "user",
        "files",
        "context_tokens",
        "metadata",
        "user_tier",
        "user_id",
        "classifiers",
    )
)


def _restore(values: tuple[Any, ...]) -> Request:
    """A Request from its attribute values (unpickling, copying): already checked once."""
    r = Request.__new__(Request)
    for name, value in zip(Request.__slots__, values, strict=True):
        object.__setattr__(r, name, value)
    return r


class Request:
    """Routing attributes of one request, checked when made and immutable after.
    Missing attributes are None."""

    __slots__ = (
        "classifiers",
        "context_tokens",
        "domain",
        "files",
        "has_images",
        "has_tools",
        "metadata",
        "output_tokens",
        "prompt",
        "system",
        "task",
        "text",
        "turns",
        "user_id",
        "user_tier",
    )
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
    has_tools: bool
    has_images: bool

    def __init__(
        self,
        prompt: str | None = None,
        *,
        system: str | None = None,
        text: str | None = None,
        task: str | None = None,
        domain: str | None = None,
        user_tier: str | None = None,
        user_id: str | None = None,
        files: int | None = None,
        context_tokens: int | None = None,
        output_tokens: int | None = None,
        turns: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        has_tools: bool = False,
        has_images: bool = False,
        classifiers: Mapping[str, Any] | None = None,
    ) -> None:
        for name, value in (("prompt", prompt), ("system", system), ("text", text)):
            if value is not None and not isinstance(value, str):
                raise RequestError(f"{name}: must be a string, got {checks.type_name(value)}")
        for name, value in (
            ("task", task),
            ("domain", domain),
            ("user_tier", user_tier),
            ("user_id", user_id),
        ):
            if value is not None and not isinstance(value, str):
                raise RequestError(f"{name}: must be a string, got {checks.type_name(value)}")
        if files is not None:
            files = checks.count("files", files)
        if context_tokens is not None:
            context_tokens = checks.count("context_tokens", context_tokens)
        if output_tokens is not None:
            output_tokens = checks.count("output_tokens", output_tokens)
        if turns is not None:
            turns = checks.count("turns", turns)
        if not isinstance(has_tools, bool) or not isinstance(has_images, bool):
            bad = "has_tools" if not isinstance(has_tools, bool) else "has_images"
            value = has_tools if bad == "has_tools" else has_images
            raise RequestError(f"{bad}: must be true or false, got {checks.type_name(value)}")
        if metadata is not None:
            metadata = checks.metadata("metadata", metadata)
        if text is None:
            parts = [p for p in (system, prompt) if p]
            text = "\n".join(parts) if parts else ("" if prompt is not None else None)
        if turns is None and prompt is not None:
            turns = 1
        # Answers the caller already has: `decide()` uses them instead of asking.
        answers = checks.answers("classifiers", classifiers) if classifiers else {}
        # Through object.__setattr__: a Request is immutable (see __setattr__).
        set_ = object.__setattr__
        set_(self, "classifiers", answers)
        set_(self, "prompt", prompt)
        set_(self, "system", system)
        set_(self, "text", text)
        set_(self, "task", task)
        set_(self, "domain", domain)
        set_(self, "user_tier", user_tier)
        set_(self, "user_id", user_id)
        set_(self, "files", files)
        set_(self, "context_tokens", context_tokens)
        set_(self, "output_tokens", output_tokens)
        set_(self, "turns", turns)
        set_(self, "metadata", metadata if metadata is not None else {})
        set_(self, "has_tools", has_tools)
        set_(self, "has_images", has_images)

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
        fields.update(changes)
        prompt = fields.pop("prompt")
        return Request(prompt, **fields)

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
        shown = {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) not in (None, {})}
        if "prompt" in shown and len(shown["prompt"]) > 60:
            shown["prompt"] = shown["prompt"][:57] + "..."
        shown.pop("text", None)
        return "Request(" + ", ".join(f"{k}={v!r}" for k, v in sorted(shown.items())) + ")"

    # -- construction from the outside world ---------------------------------------------

    @classmethod
    def from_anthropic(cls, params: Mapping[str, Any], **attrs: Any) -> Request:
        """From Messages API parameters (`system`, `messages`, `tools`, `max_tokens`, ...).

        `attrs` are routing attributes in the keyword form (`task=`, `user_tier=`, ...) or
        the `route` object form (`user={"tier": ...}`). The mapping itself, and what each
        attribute means for such a request, is `policyroute.request.messages`.
        """
        from .messages import from_messages_api

        return from_messages_api(params, **attrs).request

    @classmethod
    def from_json(cls, obj: Any) -> Request:
        """From one JSON object: Messages API parameters plus a `route` object."""
        if not isinstance(obj, Mapping):
            raise RequestError("a request must be a JSON object")
        route = obj.get("route", {})
        if not isinstance(route, Mapping):
            raise RequestError("'route' must be an object")
        params = {k: v for k, v in obj.items() if k != "route"}
        return cls.from_anthropic(params, **route)


def normalize_route(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Validate routing attributes given in either form and return Request keyword arguments.

    The `route` object form (`user={"tier": ...}`) and the keyword form (`user_tier=...`)
    may be mixed; a wrong type raises `RequestError` naming the attribute, never a silent
    "missing".
    """
    unknown = set(attrs) - ROUTE_KEYS
    if unknown:
        raise RequestError(
            f"unknown routing attribute(s): {', '.join(sorted(unknown))}; known: "
            + ", ".join(sorted(ROUTE_KEYS))
        )
    out: dict[str, Any] = {}
    for key in ("user_tier", "user_id", "task", "domain"):
        value = attrs.get(key)
        if value is not None:
            # Named as the language names it (user.tier), whichever form gave it.
            out[key] = checks.string(
                f"route.{key.replace('_', '.', 1) if key.startswith('user_') else key}", value
            )
    for key in ("files", "context_tokens"):
        value = attrs.get(key)
        if value is not None:
            out[key] = checks.count(f"route.{key}", value)
    if attrs.get("metadata") is not None:
        out["metadata"] = checks.metadata("route.metadata", attrs["metadata"])
    if attrs.get("classifiers") is not None:
        out["classifiers"] = checks.answers("route.classifiers", attrs["classifiers"])
    user = attrs.get("user")
    if user is not None:
        if not isinstance(user, Mapping):
            raise RequestError(f"route.user: must be an object, got {checks.type_name(user)}")
        extra = set(user) - {"tier", "id"}
        if extra:
            raise RequestError(
                f"route.user: unknown key(s) {', '.join(sorted(map(str, extra)))}; known: id, tier"
            )
        for key in ("tier", "id"):
            value = user.get(key)
            if value is not None:
                out.setdefault(f"user_{key}", checks.string(f"route.user.{key}", value))
    return out
