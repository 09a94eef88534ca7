"""One generated function per policy: the cheap features read and masked in straight-line code.

Reading an attribute and looking up its mask is a few bytecodes; calling a reader and a
mask function per feature through the evaluator's loop costs several times that. So the
attribute features a policy reads (up to EAGER_MAX of them, cheapest first) are read
eagerly, each into one `m &= ...` line, and the evaluator's loop starts from there with only
the costly features (phrases, regexes, classifiers) left to evaluate lazily. Cheap features
have no side effects, so reading them all changes no decision and asks no classifier.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from .atoms import COST_PRESENCE
from .evaluator import Evaluator

EAGER_MAX = 32

# How generated code reads an attribute from a Request (policyroute/request.py).
_READ = {
    "prompt": "r.prompt",
    "system": "r.system",
    "text": "r.text",
    "length": "r.length",
    "context_tokens": "r.estimated_context_tokens()",
    "output_tokens": "r.output_tokens",
    "turns": "r.turns",
    "files": "r.files",
    "task": "r.task",
    "domain": "r.domain",
    "user.tier": "r.user_tier",
    "user.id": "r.user_id",
    "has_tools": "r.has_tools",
    "has_images": "r.has_images",
}


def generate(ev: Evaluator) -> Callable[[Any, dict[Any, Any]], int]:
    """`decide(request, state) -> rule index`, equal to `ev.decide`."""
    # In the order the rules first need them, so a request an early rule decides is
    # answered after reading only what that rule reads, as an if-chain would.
    first_use: dict[int, int] = {}
    for bit, fs in enumerate(ev.needs):
        for f in fs:
            first_use.setdefault(f, bit)
    eager = sorted(
        (f for f in first_use if ev.features[f].cost <= COST_PRESENCE and f in ev.tables),
        key=lambda f: (first_use[f], f),
    )[:EAGER_MAX]
    ready_after = _ready_prefixes(ev, eager)
    scope: dict[str, Any] = {
        "RULE": ev.clause_rule,
        "ALL": ev.all,
        "DEFAULT": ev.default,
        "run": ev.run,
        "bisect": bisect_left,
        "NUMBER": (int, float),
    }
    lines = ["def decide(r, state):", "    m = ALL"]
    if any(ev.features[f].key[1].startswith("metadata.") for f in eager):
        lines.append("    md = r.metadata")
    done = 0
    for n, f in enumerate(eager):
        if n and ready_after[n - 1]:
            scope[f"R{n}"] = ready_after[n - 1]
            lines += [
                "    low = m & -m",
                f"    if low & R{n}:",
                "        return RULE[low.bit_length() - 1]",
            ]
        done |= 1 << f
        kind, name = ev.features[f].key[0], ev.features[f].key[1]
        read = f"md.get({name[9:]!r})" if name.startswith("metadata.") else _READ[name]
        table = ev.tables[f]
        if table[0] == "num":
            _, ts, cells, missing = table
            scope.update({f"T{f}": ts, f"C{f}": cells, f"M{f}": missing})
            lines += [
                f"    v = {read}",
                # int and float first: the type test as_number makes, for the usual values
                "    if (v.__class__ is int or v.__class__ is float) and v == v or (",
                "        v is not None and v.__class__ is not bool and isinstance(v, NUMBER) and v == v",
                "    ):",
            ]
            if len(ts) <= 3:  # a few comparisons beat a call to bisect
                for j in range(len(ts)):
                    scope[f"T{f}_{j}"] = ts[j]
                    word = "if" if j == 0 else "elif"
                    lines += [
                        f"        {word} v < T{f}_{j}:",
                        f"            m &= C{f}[{2 * j}]",
                        f"        elif v == T{f}_{j}:",
                        f"            m &= C{f}[{2 * j + 1}]",
                    ]
                lines += [
                    "        else:" if ts else "        if True:",
                    f"            m &= C{f}[{2 * len(ts)}]",
                ]
            else:
                lines += [
                    f"        i = bisect(T{f}, v)",
                    f"        m &= C{f}[2 * i + 1 if i < {len(ts)} and T{f}[i] == v else 2 * i]",
                ]
            lines += ["    else:", f"        m &= M{f}"]
            continue
        _, values, other = table
        scope.update({f"D{f}": values, f"O{f}": other})
        if kind == "present":
            yes, no = values.get(True, other), values.get(False, other)
            scope.update({f"Y{f}": yes, f"N{f}": no})
            lines.append(f"    m &= Y{f} if {read} is not None else N{f}")
        elif kind == "bool":
            lines += [
                f"    v = {read}",
                f"    m &= D{f}.get(v, O{f}) if v.__class__ is bool else O{f}",
            ]
        else:
            assert kind == "str"
            lines += [
                f"    v = {read}",
                f"    m &= D{f}.get(v, O{f}) if isinstance(v, str) else O{f}",
            ]
    # The lowest surviving clause needs nothing lazy: its rule decides without the loop.
    scope.update({"READY": ready_after[-1] if eager else 0, "RULE": ev.clause_rule})
    lines += [
        "    if not m:",
        "        return DEFAULT",
        "    low = m & -m",
        "    if low & READY:",
        "        return RULE[low.bit_length() - 1]",
        f"    return run(r, state, m, {done})",
    ]
    exec(compile("\n".join(lines) + "\n", "<policyroute decide>", "exec"), scope)
    fn: Callable[[Any, dict[Any, Any]], int] = scope["decide"]
    return fn


def _ready_prefixes(ev: Evaluator, eager: list[int]) -> list[int]:
    """For each prefix of `eager`, the clauses that need no feature outside it: when the
    lowest surviving clause is one of them, its rule has decided."""
    pos = {f: n for n, f in enumerate(eager)}
    ready = [0] * len(eager)
    for bit, fs in enumerate(ev.needs):
        if bit in ev.opaque or not all(f in pos for f in fs):
            continue
        ready[max((pos[f] for f in fs), default=0)] |= 1 << bit
    for n in range(1, len(ready)):
        ready[n] |= ready[n - 1]
    return ready


__all__ = ["EAGER_MAX", "generate"]
