"""From a path through a region to a concrete request (the JSON `route --request` reads).

A path fixes a cell for some variables; the request is built to fall in those cells and then
checked with `Policy.decide`. The cell model treats attributes as independent, so a path can
ask for something no request has (a phrase in the prompt but a length of 3, a missing turn
count); such a path is skipped and the next one tried.
"""

from __future__ import annotations

import itertools
import re._parser as sre  # the stdlib's regex parser: enough to build a matching string
from collections.abc import Callable
from typing import Any

from ..compiler.features import compile_regex
from ..policy import Policy
from ..request import Request, RequestError
from ..request.attributes import ATTRIBUTES, DYNAMIC, FAMILIES, INT, STRING, TEXT, lookup
from .cells import Cell
from .space import Space

MAX_PATHS = 40
FILLER = " "


def _always_given(name: str | None) -> bool:
    """A JSON request with a prompt always has a value for it: prefer a value to missing."""
    info = lookup(name) if name is not None else None
    return info is not None and info.always_given


def prefer(space: Space) -> Callable[[int, int], float]:
    """Order in which a witness search tries a variable's cells: the simplest request first."""

    def key(v: int, i: int) -> float:
        var = space.vars[v]
        c = var.cells[i]
        if c.kind in ("yes", "no"):
            return 0 if not c.rep else 1  # leave phrases out, regexes unmatched
        if c.kind == "none":
            return 5 if _always_given(var.attr) else 0
        if c.kind == "num":
            return 1 + (0 if c.rep is not None and c.rep >= 0 else 2)
        return 1

    return key


def request_json(space: Space, assign: dict[int, int], joiner: str = "\n") -> dict[str, Any] | None:
    """A request JSON in the cells of `assign`, or None when this builder cannot make one."""
    route: dict[str, Any] = {}
    groups: dict[str, dict[str, Any]] = {}
    texts: dict[str, list[str]] = {"prompt": [], "system": [], "text": []}
    answers: dict[str, dict[str, Any]] = {}
    nums: dict[str, Cell] = {}
    params: dict[str, Any] = {}
    has_images = False
    prompt_missing = False
    for v, i in assign.items():
        var = space.vars[v]
        c = var.cells[i]
        key = var.key
        if key[0] == "phrase":
            if c.rep:
                texts.setdefault(key[1], []).append(key[2])
            continue
        if key[0] == "regex":
            if c.rep:
                sample = regex_sample(key[2], key[3])
                if sample is None:
                    return None
                texts.setdefault(key[1], []).append(sample)
            continue
        if key[0] == "label":
            if c.kind == "str":
                answers.setdefault(key[1], {"label": c.rep, "confidence": 1.0})["label"] = c.rep
            continue
        if key[0] == "confidence":
            answers.setdefault(key[1], {"label": None, "confidence": 0.0})["confidence"] = c.rep
            continue
        attr = var.attr
        assert attr is not None
        info = lookup(attr)
        if info is None:
            return None
        how = info.witness
        if how in ("length", "turns", "max_tokens") or (how == "route" and info.type == INT):
            if c.kind == "none":
                if how == "length":
                    prompt_missing = True
                elif info.always_given:
                    return None  # a JSON request always counts these
                continue
            if c.kind != "num":
                continue
            nums[attr if how == "route" else how] = c  # "length", "turns", "max_tokens"
            continue
        if c.kind == "none":
            if how == "prompt":
                prompt_missing = True
            continue
        if how in ("tools", "images"):
            if c.kind == "bool" and c.rep:
                if how == "tools":
                    params["tools"] = [{"name": "tool", "input_schema": {"type": "object"}}]
                else:
                    has_images = True
            continue
        if how in ("prompt", "system", "text"):
            if c.kind == "any":
                texts.setdefault(attr, []).append("hello")
        elif how == "route" and info.route is not None:
            value: Any = c.rep
            if info.type == DYNAMIC:
                value = _whole(c) if c.kind == "num" else value
            elif info.type in (STRING, TEXT):
                value = str(value)
            _put(route, groups, info.route, value)
        else:
            return None
    # Texts: text-only phrases go into the system prompt, which `text` includes.
    prompt_parts = texts.pop("prompt", [])
    system_parts = texts.pop("system", []) + texts.pop("text", [])
    for name, parts in texts.items():  # a text attribute the `route` object carries
        info = lookup(name)
        if info is None or info.route is None:
            return None
        if parts:
            _put(route, groups, info.route, joiner.join(parts))
    if prompt_missing and (prompt_parts or "length" in nums or "turns" in nums):
        return None
    prompt = joiner.join(prompt_parts)
    if "length" in nums:
        target = _int_in(nums["length"], len(prompt))
        if target is None:
            return None
        prompt = prompt + FILLER * (target - len(prompt))
    messages: list[dict[str, Any]] = []
    if not prompt_missing:
        turns = 1
        if "turns" in nums:
            t = _int_in(nums["turns"], 1)
            if t is None:
                return None
            turns = t
        # Earlier turns alternate roles and end with the user's prompt.
        for k in range(turns - 1):
            role = "user" if (turns - 1 - k) % 2 == 0 else "assistant"
            messages.append({"role": role, "content": "."})
        content: Any = prompt
        if has_images:
            content = [
                {"type": "text", "text": prompt},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": ""},
                },
            ]
        messages.append({"role": "user", "content": content})
    elif has_images:
        return None
    obj: dict[str, Any] = {"messages": messages, **params}
    if system_parts:
        obj["system"] = joiner.join(system_parts)
    if "max_tokens" in nums:
        n = _int_in(nums["max_tokens"], 1)
        if n is None:
            return None
        obj["max_tokens"] = n
    for info in ATTRIBUTES.values():  # registry order: files before context_tokens
        cell = nums.get(info.name)
        if cell is None:
            continue
        if info.witness == "route" and info.route is not None:
            n = _int_in(cell, 0)
            if n is None:
                return None
            _put(route, groups, info.route, n)
    # Nested values after the scalars, as the registry orders them (user, then metadata).
    route.update((head, groups[head]) for head in _nested_heads() if head in groups)
    if answers:
        route["classifiers"] = answers
    if route:
        obj["route"] = route
    return obj


def _put(
    route: dict[str, Any], groups: dict[str, dict[str, Any]], path: tuple[str, ...], value: Any
) -> None:
    """`value` at `path` of the route object; a nested one (("user", "tier")) in `groups`."""
    if len(path) == 1:
        route[path[0]] = value
    else:
        groups.setdefault(path[0], {})[path[1]] = value


def _nested_heads() -> list[str]:
    heads = [a.route[0] for a in ATTRIBUTES.values() if a.route is not None and len(a.route) > 1]
    heads += [f.route[0] for f in FAMILIES.values() if f.route is not None]
    return list(dict.fromkeys(heads))


def _whole(c: Cell) -> Any:
    """A whole number inside a number cell if it holds one (seats 51, not 51.0), else its
    representative."""
    import math

    n = c.lo if c.lo_closed else math.floor(c.lo) + 1 if c.lo != float("-inf") else None
    if n is None:
        n = math.ceil(c.hi) - 1 if c.hi != float("inf") else 0
    return int(n) if c.contains_num(n) and float(n).is_integer() else c.rep


def _int_in(c: Cell, at_least: int) -> int | None:
    """A whole number >= at_least inside the cell."""
    if c.lo == c.hi:
        return int(c.lo) if float(c.lo).is_integer() and c.lo >= at_least else None
    n = max(at_least, int(c.lo) + 1 if c.lo != float("-inf") else at_least)
    if c.lo_closed and c.lo >= at_least and float(c.lo).is_integer():
        n = int(c.lo)
    if c.hi != float("inf") and not (n < c.hi or (c.hi_closed and n == c.hi)):
        return None
    return n if c.contains_num(n) else None


def decide_json(policy: Policy, obj: dict[str, Any]) -> tuple[str, str] | None:
    """(tier, rule) a policy decides for a witness JSON, or None if the JSON is not a request.

    Read exactly as `policyroute route --request` reads it, classifier answers included."""
    try:
        req = Request.from_json(obj)
    except RequestError:
        return None
    d = policy.decide(req)
    return d.tier, d.rule


def find_request(
    space: Space, region: int, check: Callable[[dict[str, Any]], bool]
) -> dict[str, Any] | None:
    """The first request built from a path of `region` that passes `check`."""
    for assign in itertools.islice(space.paths(region, prefer(space)), MAX_PATHS):
        for joiner in ("\n", " . "):
            obj = request_json(space, assign, joiner)
            if obj is not None and check(obj):
                return obj
    return None


# -- regexes ----------------------------------------------------------------------------------

_CATEGORY = {
    sre.CATEGORY_DIGIT: "1",
    sre.CATEGORY_NOT_DIGIT: "a",
    sre.CATEGORY_SPACE: " ",
    sre.CATEGORY_NOT_SPACE: "a",
    sre.CATEGORY_WORD: "a",
    sre.CATEGORY_NOT_WORD: " ",
}


def regex_sample(pattern: str, flags: str) -> str | None:
    """A short string the regex matches, built from its parse for simple patterns (literals,
    classes, repeats, alternatives, groups, anchors) and checked on RE2; None otherwise."""
    try:
        regex = compile_regex(pattern, flags)
    except ValueError:
        return None
    candidates: list[str] = []
    try:
        tree = sre.parse(pattern)
        for choice in range(3):
            s = _gen(tree, choice)
            if s is not None:
                candidates.append(s)
    except Exception:  # a pattern RE2 accepts but Python's parser does not: try the fallbacks
        pass
    candidates += ["", "a", "1", " ", "a1", "x y"]
    for s in candidates:
        for wrapped in (s, f"\n{s}\n", f" {s} "):
            if regex.search(wrapped) is not None:
                return wrapped
    return None


def _gen(items: Any, choice: int) -> str | None:
    out: list[str] = []
    for op, av in items:
        piece = _gen_one(op, av, choice)
        if piece is None:
            return None
        out.append(piece)
    return "".join(out)


def _gen_one(op: Any, av: Any, choice: int) -> str | None:
    if op is sre.LITERAL:
        return chr(av)
    if op is sre.NOT_LITERAL:
        return "a" if av != ord("a") else "b"
    if op is sre.ANY:
        return "a"
    if op is sre.AT:
        # A word boundary between two generated words needs a separator on some choices.
        return " " if av is sre.AT_BOUNDARY and choice != 1 else ""
    if op is sre.IN:
        return _gen_in(av)
    if op is sre.BRANCH:
        branches = av[1]
        return _gen(branches[min(choice, len(branches) - 1)], choice)
    if op is sre.SUBPATTERN:
        return _gen(av[-1], choice)
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)):
        lo, _hi, sub = av
        body = _gen(sub, choice)
        return None if body is None else body * max(lo, 1 if choice else lo)
    if op is sre.CATEGORY:
        return _CATEGORY.get(av)
    return None


def _gen_in(items: Any) -> str | None:
    negate = any(op is sre.NEGATE for op, _ in items)
    if negate:
        banned = {av for op, av in items if op is sre.LITERAL}
        for ch in "a1 xZ":
            if ord(ch) not in banned:
                return ch
        return None
    for op, av in items:
        if op is sre.LITERAL:
            return chr(av)
        if op is sre.RANGE:
            return chr(av[0])
        if op is sre.CATEGORY:
            return _CATEGORY.get(av)
    return None
