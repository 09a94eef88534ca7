"""The hand-written router a policy replaces, written by machine: one `if` per rule.

`if_chain(policy)` turns a checked policy into the Python function a team writes today:
the prompt lowered once, `any(k in low for k in SET)` for a keyword set (substrings, no
word boundaries), Python's `re` for a regex, plain attribute tests, first match wins. It is
the baseline decide() must beat; the bench checks that the two agree on its requests.

`if_chain(policy, keywords=True)` is the same chain as a function of keyword arguments,
`chain(prompt=None, task=None, ...)`, the way a router called with a request's attributes is
written: it reads its parameters, checks no type, and makes `text` (the system prompt and
the prompt) only when a rule reads it. That is the floor for `decide(**attributes)`.
"""

from __future__ import annotations

import re
from typing import Any

from policyroute import Policy, Request
from policyroute.request import attributes
from policyroute.request.attributes import READ_SCOPE, lookup  # read as decide() reads them
from policyroute.syntax import ast

_LOWER = {"prompt": "low_prompt", "system": "low_system", "text": "low_text"}


def _read(name: str) -> str:
    info = lookup(name)
    assert info is not None
    return info.read


class _Writer:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.consts: dict[str, Any] = {}
        self.texts: set[str] = set()

    def const(self, value: Any) -> str:
        name = f"C{len(self.consts)}"
        self.consts[name] = value
        return name

    def read(self, attr: ast.Attr) -> str:
        if attr.parts[0] in self.policy.classifiers:
            return "None" if attr.parts[1] == "label" else "0.0"
        return _read(attr.dotted)

    def cond(self, e: ast.Expr) -> str:
        if isinstance(e, ast.And):
            return "(" + " and ".join(self.cond(x) for x in e.operands) + ")"
        if isinstance(e, ast.Or):
            return "(" + " or ".join(self.cond(x) for x in e.operands) + ")"
        if isinstance(e, ast.Not):
            return f"(not {self.cond(e.operand)})"
        if isinstance(e, ast.Compare):
            v, lit = self.read(e.attr), repr(e.value.value)
            if e.op in ("==", "!=") or v[0].isdigit():
                return f"({v} {e.op} {lit})"
            return f"({v} is not None and {v} {e.op} {lit})"
        if isinstance(e, ast.In):
            vals = self.const(tuple(x.value for x in e.values))
            return f"({self.read(e.attr)} {'not in' if e.negated else 'in'} {vals})"
        if isinstance(e, ast.Contains):
            self.texts.add(e.attr.dotted)
            low = _LOWER[e.attr.dotted]
            t = e.target
            if isinstance(t, ast.Str):
                return f"({t.value.lower()!r} in {low})"
            phrases = (
                self.policy.checked.keywords[t.name]
                if isinstance(t, ast.Ident)
                else tuple(p.value for p in t.phrases)
            )
            words = self.const(tuple(p.lower() for p in phrases))
            quant = "any" if e.mode == "any" else "all"
            return f"{quant}(k in {low} for k in {words})"
        if isinstance(e, ast.Matches):
            flags = 0
            for f in e.regex.flags:
                flags |= {"i": re.I, "m": re.M, "s": re.S}[f]
            regex = self.const(re.compile(e.regex.pattern, flags))
            return f"({regex}.search({self.read(e.attr)} or '') is not None)"
        if isinstance(e, ast.Has):
            return f"({self.read(e.attr)} is not None)"
        assert isinstance(e, ast.Truthy)
        return f"({self.read(e.attr)} is True)"


# A keyword chain's locals for what a Request joins or defaults (the rest are parameters).
_JOINED = {"text": "text_", "turns": "turns_", "metadata": "metadata_", "spend": "spend_"}
_JOINS = {
    "text": "    text_ = text if text is not None else (system + '\\n' + prompt if system and prompt"
    " else system or prompt)",
    "turns": "    turns_ = turns if turns is not None or prompt is None else 1",
    "metadata": "    metadata_ = metadata or EMPTY",
    "spend": "    spend_ = spend or EMPTY",
}


def if_chain(policy: Policy, keywords: bool = False) -> Any:
    """A function `chain(request) -> rule name`: the policy as a hand-written if-chain; with
    `keywords`, `chain(**attributes) -> rule name`."""
    w = _Writer(policy)
    body = []
    for rule in policy.checked.rules:
        assert rule.condition is not None
        body.append(f"    if {w.cond(rule.condition)}:\n        return {rule.name!r}")
    head = [f"    {_LOWER[t]} = ({_read(t)} or '').lower()" for t in sorted(w.texts)]
    src = "\n".join([*head, *body]) + "\n    return 'default'\n"
    if keywords:
        used = set(re.findall(r"\br\.(\w+)", src))
        src = re.sub(r"\br\.(\w+)", lambda m: _JOINED.get(m.group(1), m.group(1)), src)
        joins = [_JOINS[n] for n in _JOINS if n in used]
        params = []
        for name, entry in attributes.fields().items():
            if name in Request.__slots__:
                flag = isinstance(entry, attributes.Attribute) and entry.type == attributes.BOOL
                params.append(f"{name}={'False' if flag else 'None'}")
        head_line = f"def chain(*, {', '.join(params)}, classifiers=None):\n"
        src = head_line + "\n".join(joins) + ("\n" if joins else "") + src
    else:
        src = "def chain(r):\n" + src
    scope: dict[str, Any] = {**READ_SCOPE, **w.consts}
    exec(compile(src, f"<if-chain {policy.name}>", "exec"), scope)
    return scope["chain"]
