"""The words of `diff` and `route --explain` are exact: the regions they print are the set of
requests that move, checked by reading the printed conditions back and sampling inside,
outside and on each bound of generated numeric edits."""

from __future__ import annotations

import re
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policyroute
from policyroute import Request
from policyroute.analysis import counterfactual, diff

HEADER = """\
tier haiku  = "claude-haiku-4-5"  { input 1 output 5 }
tier sonnet = "claude-sonnet-4-6" { input 3 output 15 }
tier opus   = "claude-opus-4-7"   { input 5 output 25 }
"""
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ATTRS = ("length", "files")
OPS = ("<", "<=", ">", ">=", "==", "!=")
TIERS = ("haiku", "sonnet", "opus")


# -- reading the printed words back -----------------------------------------------------------

Values = dict[str, int | None]

_CMP = re.compile(r"^(length|files) (<=|>=|==|!=|<|>) (-?\d+)$")


def _holds(cond: str, values: Values) -> bool:
    """Whether one printed condition holds for these attribute values (None: missing)."""
    cond = cond.strip()
    if cond.startswith("(") and cond.endswith(")"):
        return any(_holds(part, values) for part in _split(cond[1:-1], " or "))
    parts = _split(cond, " and ")
    if len(parts) > 1:
        return all(_holds(p, values) for p in parts)
    m = re.match(r"^(length|files) is missing$", cond)
    if m:
        return values[m.group(1)] is None
    m = re.match(r"^(length|files) is a number$", cond)
    if m:
        return values[m.group(1)] is not None
    m = _CMP.match(cond)
    assert m, f"unexpected condition {cond!r}"
    v = values[m.group(1)]
    if v is None:
        return False
    n = int(m.group(3))
    return {
        "<": v < n,
        "<=": v <= n,
        ">": v > n,
        ">=": v >= n,
        "==": v == n,
        "!=": v != n,
    }[m.group(2)]


def _split(text: str, sep: str) -> list[str]:
    """Split at `sep` outside parentheses."""
    out, depth, start, i = [], 0, 0, 0
    while i < len(text):
        c = text[i]
        depth += c == "("
        depth -= c == ")"
        if depth == 0 and text.startswith(sep, i):
            out.append(text[start:i])
            i += len(sep)
            start = i
            continue
        i += 1
    out.append(text[start:])
    return out


def _request(values: Values) -> Request:
    n = values["length"]
    return Request(
        "x" * n if n is not None else None,
        files=values["files"],
        turns=1,
        context_tokens=0,
    )


# -- generated policies and edits -------------------------------------------------------------

cmp = st.tuples(st.sampled_from(ATTRS), st.sampled_from(OPS), st.integers(0, 40))
rule = st.tuples(st.lists(cmp, min_size=1, max_size=2), st.booleans(), st.sampled_from(TIERS))


def _text(rules: list[tuple[list[tuple[str, str, int]], bool, str]], default: str) -> str:
    lines = []
    for i, (cmps, any_, tier) in enumerate(rules):
        cond = (" or " if any_ else " and ").join(f"{a} {op} {n}" for a, op, n in cmps)
        lines.append(f"rule r{i}: {cond} -> {tier}")
    return HEADER + "\n".join(lines) + f"\ndefault -> {default}\n"


@st.composite
def edited(draw: st.DrawFn) -> tuple[str, str]:
    """A policy and a copy with one rule's threshold (and maybe operator) changed."""
    rules = draw(st.lists(rule, min_size=1, max_size=3))
    default = draw(st.sampled_from(TIERS))
    i = draw(st.integers(0, len(rules) - 1))
    j = draw(st.integers(0, len(rules[i][0]) - 1))
    attr, op, n = rules[i][0][j]
    new_n = draw(st.integers(0, 40).filter(lambda m: m != n))
    new_op = draw(st.sampled_from((op, *OPS)))
    changed = [list(r) for r in rules]
    cmps = list(changed[i][0])  # type: ignore[arg-type]
    cmps[j] = (attr, new_op, new_n)
    changed[i][0] = cmps
    return _text(rules, default), _text([tuple(r) for r in changed], default)  # type: ignore[misc]


def _samples(*texts: str) -> list[Values]:
    """Inside, outside and on each bound: every threshold, its neighbours, 0, far, missing."""
    points: set[int] = {0, 1, 1000}
    for text in texts:
        for n in re.findall(r"[<>=!]=? (\d+)", text):
            points.update({int(n) - 1, int(n), int(n) + 1})
    values = sorted(p for p in points if p >= 0)
    length: list[int | None] = [*values, None]
    files: list[int | None] = [*values, None]
    return [{"length": a, "files": b} for a in length for b in files]


def _decide(policy: policyroute.Policy) -> Callable[[Values], tuple[str, str]]:
    def run(values: Values) -> tuple[str, str]:
        d = policy.decide(_request(values))
        return d.tier, d.rule

    return run


# -- diff -------------------------------------------------------------------------------------


@SETTINGS
@given(edited())
def test_diff_regions_are_exactly_the_requests_that_move(pair: tuple[str, str]) -> None:
    old_text, new_text = pair
    old, new = policyroute.loads(old_text), policyroute.loads(new_text)
    found = diff(old, new)
    assert all(d.exact for d in found), [d.where for d in found]
    old_decide, new_decide = _decide(old), _decide(new)
    for values in _samples(old_text, new_text):
        if values["length"] is None:
            continue  # a request without a prompt has no length but a missing prompt too
        a, b = old_decide(values), new_decide(values)
        inside = [d for d in found if any(all(_holds(c, values) for c in case) for case in d.cases)]
        if a[0] == b[0]:
            assert not inside, (values, a, b, [d.where for d in inside])
        else:
            # In exactly the region of its (old rule, new rule) pair.
            assert [(d.old_rule, d.new_rule) for d in inside] == [(a[1], b[1])], (
                values,
                a,
                b,
                [d.describe() for d in found],
            )


def test_issue_examples_are_exact() -> None:
    old = policyroute.loads(
        HEADER + "rule short: length < 280 -> haiku\nrule big: metadata.seats > 50 -> opus\n"
        "default -> sonnet\n"
    )
    new = policyroute.loads(
        HEADER + "rule short: length < 500 -> haiku\nrule big: metadata.seats > 100 -> opus\n"
        "default -> sonnet\n"
    )
    wheres = {(d.old_rule, d.new_rule): d.where for d in diff(old, new)}
    assert wheres[("default", "short")].startswith("length >= 280 and length < 500")
    assert "metadata.seats > 50 and metadata.seats <= 100" in wheres[("big", "default")]
    assert wheres[("big", "short")] == "length >= 280 and length < 500 and metadata.seats > 50"


# -- counterfactual ---------------------------------------------------------------------------

_LINE = re.compile(r"^would go to (\w+) by (?:rule (\w+)|the default) if (.*)$")


@SETTINGS
@given(edited(), st.data())
def test_counterfactual_names_exactly_the_values_that_move(
    pair: tuple[str, str], data: st.DataObject
) -> None:
    text = pair[0]
    policy = policyroute.loads(text)
    decide = _decide(policy)
    samples = [v for v in _samples(text) if v["length"] is not None]
    values = data.draw(st.sampled_from(samples))
    request = _request(values)
    decision = policy.decide(request, explain=True)
    lines = counterfactual(policy, request, decision)
    said: dict[tuple[str, str], str] = {}  # (target rule, attribute) -> condition
    for line in lines:
        m = _LINE.match(line)
        assert m, line
        target = m.group(2) or "default"
        for way in m.group(3).split(", or if "):
            attr = "length" if "length" in way else "files"
            assert (target, attr) not in said
            said[(target, attr)] = way
    for attr in ATTRS:
        domain = [v[attr] for v in samples if all(v[o] == values[o] for o in ATTRS if o != attr)]
        for x in domain:
            if attr == "length" and x is None:
                continue
            changed = {**values, attr: x}
            tier, rule_name = decide(changed)
            if tier == decision.tier:
                # No line may claim this value moves the request.
                assert not any(
                    _holds(cond, changed) for (t, a), cond in said.items() if a == attr
                ), (values, attr, x, lines)
            else:
                cond = said.get((rule_name, attr))
                assert cond is not None and _holds(cond, changed), (values, attr, x, lines)


def test_a_region_too_big_to_print_is_marked_an_over_approximation() -> None:
    terms = " or ".join(f"(files == {i} and length == {i})" for i in range(1, 9))
    old = policyroute.loads(HEADER + "default -> haiku\n")
    new = policyroute.loads(HEADER + f"rule r: {terms} -> opus\ndefault -> haiku\n")
    (d,) = diff(old, new)
    assert not d.exact and d.where.endswith(
        "(over-approximation: the region is inside this, not all of it)"
    )
    # A box around the region: every request that moves is inside it.
    (case,) = d.cases
    for i in range(0, 10):
        values: Values = {"length": i, "files": i}
        moves = new.decide(_request(values)).tier != old.decide(_request(values)).tier
        assert not moves or all(_holds(c, values) for c in case)
    assert d.to_json()["exact"] is False
