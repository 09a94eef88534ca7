"""decide()'s public entry point, written per policy: a `Request`, or the attributes as
keywords without making one.

`decide(prompt=..., task=...)` used to build a `Request` first: every keyword into a dict,
every field checked and set on a new object, the joins made (`text`, `turns`), then the
call into generated code, several times the work of a short decision. The public entry
written here keeps decide()'s short signature (a call with a `Request` fills in no keyword
defaults) and hands keywords to a second generated function, which takes every `Request`
keyword as a parameter of its own (the registry's fields, in its order: the one table of
attributes) and runs the policy's generated body over local variables instead of a
request's fields:

- each given value passes a guard that holds exactly for the common, already valid form (a
  `str`, an `int` >= 0, `True`/`False`); anything else (a wrong type, an integral float,
  a subclass) goes to the full path, which checks it as `Request` does and raises the same
  error or decides the same way;
- a family's mapping and classifier answers are checked by `Request`'s own check functions,
  in the registry's order, so a bad one raises the error `Request` raises;
- the joins (`text`, `turns`) are made only when the policy reads them;
- whatever the body would hand to the evaluator's loop (a classifier to ask, a rule
  evaluated whole), and any keyword `Request` keeps in `extra`, goes to the full path from
  the start: nothing has been asked before, so a classifier is asked exactly as there.

So a decision from keywords is the decision of `decide(Request(**keywords))`, error for
error (a property test holds the two equal on random policies and requests).
"""

from __future__ import annotations

import io
import tokenize
from collections.abc import Callable
from typing import Any

from ..request import attributes, checks
from ..request.attributes import BOOL, INT, STRING, TEXT, Attribute, Family
from ..request.request import joins

# What the body reads a Request's joins and checked mappings from: locals of the entry.
_JOINS = {"text": "_text", "turns": "_turns", "classifiers": "_classifiers", "extra": "EMPTY"}
SLOW = "__policyroute_slow__"  # where the keyword body hands over; the full path's call


def _fields(slots: tuple[str, ...]) -> list[tuple[str, Attribute | Family]]:
    """The Request keywords with slots of their own, in the registry's order (Request's
    __init__ checks them in this order, so the first bad one is the same one)."""
    return [(name, e) for name, e in attributes.fields().items() if name in slots]


def _default(entry: Attribute | Family) -> str:
    return "False" if isinstance(entry, Attribute) and entry.type == BOOL else "None"


def _given(names: list[str], defaults: list[Any]) -> Callable[..., dict[str, Any]]:
    pairs = tuple(zip(names, defaults, strict=True))

    def given(attrs: dict[str, Any], *values: Any) -> dict[str, Any]:
        """The keywords a call gave, for the full path: a default is as good as absent."""
        out = {n: v for (n, d), v in zip(pairs, values, strict=True) if v is not d}
        out.update(attrs)
        return out

    return given


def write_entry(
    request_body: str, keyword_body: str, slots: tuple[str, ...], scope: dict[str, Any]
) -> str:
    """The source of `entry(request=None, /, *, classifier=None, explain=False, **attrs)`
    and of `keywords(classifier, /, *, <every Request keyword>, **attrs)`, which `entry`
    calls for keywords (KEYWORDS in `scope` once run). `request_body` reads the request `r`; `keyword_body` is
    the same code, its reads `r.FIELD` to be made local and its hand-overs to the loop
    spelled SLOW. Expects REQUEST and FALLBACK in `scope` and adds what it uses."""
    fields = _fields(slots)
    names = [name for name, _ in fields] + ["classifiers"]
    defaults = [_default(e) for _, e in fields] + ["None"]
    scope["GIVEN"] = _given(names, [False if d == "False" else None for d in defaults])
    scope["EMPTY"] = {}
    scope["ANSWERS"] = checks.answers
    given = f"GIVEN(attrs, {', '.join(names)})"
    slow = f"FALLBACK(None, classifier, False, {given})"
    params = ", ".join(f"{n}={d}" for n, d in zip(names, defaults, strict=True))
    # The public entry keeps its short signature, so a call with a Request fills in no
    # keyword defaults; a call with keywords passes them on to `keywords` below.
    head = (
        "def entry(request=None, /, *, classifier=None, explain=False, **attrs):\n"
        "    if request.__class__ is not REQUEST or attrs or explain:\n"
        "        if request is None and not explain:\n"
        "            return KEYWORDS(classifier, **attrs)\n"
        "        return FALLBACK(request, classifier, explain, attrs)\n"
        "    r = request\n" + request_body + f"def keywords(classifier, /, *, {params}, **attrs):\n"
    )
    lines = ["    if attrs:", f"        return {slow}"]
    local = {n: n for n in names} | _JOINS
    reads = _reads(keyword_body)
    read = {name for _, name in reads.values()}
    for name, entry in fields:
        if isinstance(entry, Family):
            check = f"CHECK_{name}"
            scope[check] = entry.check if entry.check is not None else checks.metadata
            lines.append(f"    _{name} = EMPTY if {name} is None else {check}({name!r}, {name})")
            local[name] = f"_{name}"
            continue
        if entry.type in (TEXT, STRING):
            bad = f"{name} is not None and {name}.__class__ is not str"
        elif entry.type == INT:
            bad = f"{name} is not None and ({name}.__class__ is not int or {name} < 0)"
        elif entry.type == BOOL:
            bad = f"{name} is not False and {name} is not True"
        else:  # checked (and perhaps converted) by Request alone
            bad = f"{name} is not None"
        lines += [f"    if {bad}:", f"        return {slow}"]
    lines.append("    _classifiers = ANSWERS('classifiers', classifiers) if classifiers else EMPTY")
    # Request's own joins, made only when a rule reads them.
    *text_join, turns_join = joins("_text", "_turns")
    if "text" in read:
        lines += text_join
    if "turns" in read:
        lines.append(turns_join)
    unknown = read - set(local)
    assert not unknown, f"generated code reads {unknown}, which the entry does not hold"
    return head + "\n".join(lines) + "\n" + _localize(keyword_body, reads, local, slow)


def _reads(source: str) -> dict[tuple[int, int], tuple[int, str]]:
    """Every `r.FIELD` in `source` by where it starts (row, column): where it ends, FIELD.
    Read from tokens, so a string literal holding `r.` is left alone."""
    toks = list(tokenize.generate_tokens(io.StringIO(source).readline))
    out = {}
    for i, t in enumerate(toks):
        if t.type == tokenize.NAME and t.string == "r":
            dot, name = toks[i + 1], toks[i + 2]
            assert dot.string == "." and name.type == tokenize.NAME, "a request read whole"
            out[t.start] = (name.end[1], name.string)
    return out


def _localize(
    source: str,
    reads: dict[tuple[int, int], tuple[int, str]],
    local: dict[str, str],
    slow: str,
) -> str:
    lines = source.splitlines()
    for (row, col), (end, name) in sorted(reads.items(), reverse=True):
        line = lines[row - 1]
        lines[row - 1] = line[:col] + local[name] + line[end:]
    return "\n".join(x.replace(SLOW, slow) for x in lines) + "\n"


__all__ = ["SLOW", "write_entry"]
