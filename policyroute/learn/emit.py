"""The learned `.route` file: rules that explain themselves, inline tests, checked clean.

One condition is one rule, in the order chosen (best excess per strong call first), so
dropping the last rules moves down the quality curve without relearning; each rule's
comment gives the cumulative strong share down to it, its support, the strong tier's gain on
what it decides and that gain beyond random routing (with a bootstrap interval over groups),
and how it did on the inner folds. Each rule and the default get an inline test made from a
real training request. Nothing is written that does not check with zero diagnostics, format
to itself and pass its own tests.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..policy import Policy, loads
from ..request.attributes import family_of, lookup
from ..syntax import ast
from ..syntax.diagnostics import Diagnostic, PolicyError
from ..syntax.formatter import fmt_regex, fmt_str, format_source
from .data import Example
from .features import (
    ABOVE,
    AND,
    BELOW,
    NUMERIC_ATTRS,
    PHRASE,
    PHRASE_ATTRS,
    REGEX,
    REGEXES,
    STEP_ATTRS,
    STRING_ATTRS,
    VALUE,
    VALUE_FAMILIES,
    Item,
)
from .select import Data, excess
from .validate import Validation

if TYPE_CHECKING:
    import numpy as np


class EmitError(Exception):
    """The learned text did not check clean or failed its own tests (a bug worth reporting).
    `failed`: the names of the inline tests that failed, when that was the reason."""

    def __init__(self, message: str, failed: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.failed = tuple(failed)


@dataclass(slots=True)
class LearnedRule:
    name: str
    item: Item
    condition: str
    matches: int  # training examples the condition holds for
    decides: int  # of them, not taken by an earlier rule
    mean_gain: float  # strong minus cheap per call, on the ones it decides
    excess: float  # the same beyond the training mean gain per call (what beats random)
    interval: tuple[float, float] | None  # bootstrap interval of `excess`
    cumulative_share: float  # strong share of training calls with this rule and the above
    frequency: float  # share of bootstrap resamples where its out-of-fold excess is above 0
    folds: str  # how it did on the inner folds
    example: Example | None = None


def _ident(text: str) -> str:
    out = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_").lower()
    return out if out and not out[0].isdigit() else f"m_{out}"


_NAMES = {
    (ABOVE, "length"): "long_prompt",
    (BELOW, "length"): "short_prompt",
    (ABOVE, "turns"): "later_turns",
    (ABOVE, "files"): "many_files",
    (BELOW, "files"): "few_files",
}


def _base_name(item: Item) -> str:
    if item.kind == AND:
        return "_and_".join(_base_name(p) for p in item.parts)[:60].rstrip("_")
    if item.kind == PHRASE:
        where = "words" if item.attr == "prompt" else f"{_ident(item.attr)}_words"
        return f"{where}_{_ident(str(item.value))}"[:30].rstrip("_")
    if item.kind == REGEX:
        return str(item.value)
    family = family_of(item.attr)
    short = item.attr.partition(".")[2] if family is not None else item.attr
    if item.kind == VALUE:
        return f"{_ident(short)}_{_ident(str(item.value))}"[:30].rstrip("_")
    return _NAMES.get((item.kind, item.attr)) or f"{item.kind}_{_ident(short)}"


def _literal(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return fmt_str(value)
    return str(value)


def condition_text(item: Item) -> str:
    """The condition in the language's own words."""
    if item.kind == AND:
        return " and ".join(_part(p) for p in item.parts)
    if item.kind == PHRASE:
        return f"{item.attr} contains {fmt_str(str(item.value))}"
    if item.kind == REGEX:
        pattern, flags = REGEXES[str(item.value)]
        return f"{item.attr} matches {fmt_regex(ast.Regex(pattern, flags))}"
    if item.kind == ABOVE:
        return f"{item.attr} > {item.value}"
    if item.kind == BELOW:
        return f"{item.attr} < {item.value}"
    return f"{item.attr} == {_literal(item.value)}"


def _part(item: Item) -> str:
    text = condition_text(item)
    return f"({text})" if " or " in text else text


def describe(
    chosen: Sequence[int],
    items: Sequence[Item],
    data: Data,
    train: Sequence[Example],
    validation: Validation,
    weights: np.ndarray,
) -> list[LearnedRule]:
    """The chosen conditions as rules, in the order chosen (best excess per call first)."""
    import numpy as np

    masks = data.masks
    n = masks.shape[1]
    e = excess(data.gain, data.cost, np.ones(n))
    total_cost = float(data.cost.sum())
    used: set[str] = set()
    covered = np.zeros(n, dtype=bool)
    rules: list[LearnedRule] = []
    for j in chosen:
        item = items[j]
        matched = masks[j] > 0
        decided = matched & ~covered
        covered |= matched
        spend = float(data.cost[decided].sum())
        w = weights[:, decided]
        sums = w @ data.cost[decided]
        ok = sums > 0
        means = (w @ e[decided])[ok] / sums[ok]
        interval = (
            (float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975)))
            if means.size >= 20
            else None
        )
        folds = validation.why(j)
        rules.append(
            LearnedRule(
                name=_unique(_base_name(item), used),
                item=item,
                condition=condition_text(item),
                matches=int(matched.sum()),
                decides=int(decided.sum()),
                mean_gain=float(data.gain[decided].sum()) / spend if spend else 0.0,
                excess=float(e[decided].sum()) / spend if spend else 0.0,
                interval=interval,
                cumulative_share=float(data.cost[covered].sum()) / total_cost,
                frequency=float(validation.holds[j]),
                folds=folds,
                example=pick_example(train, decided, data.gain, want_gain=True),
            )
        )
    return rules


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def pick_example(
    train: Sequence[Example],
    where: np.ndarray,
    gain: np.ndarray,
    want_gain: bool,
    skip: Collection[str] = (),
) -> Example | None:
    """The shortest training request in `where` that shows the point (the strong tier
    gained, or for the default it did not), else the shortest; printable text only; none
    whose id is in `skip` (its test could not say what the policy does with it)."""
    best: tuple[bool, int, str] | None = None
    found: Example | None = None
    for j in where.nonzero()[0]:
        ex = train[int(j)]
        if ex.id in skip:
            continue
        prompt = ex.request.prompt or ""
        if _CONTROL.search(prompt):
            continue
        shows = (gain[j] > 0) if want_gain else (gain[j] <= 0)
        key = (not shows, len(prompt), ex.id)
        if best is None or key < best:
            best, found = key, ex
    return found


def _unique(base: str, used: set[str]) -> str:
    name = base
    n = 2
    while name in used:
        name = f"{base}_{n}"
        n += 1
    used.add(name)
    return name


def _fmt_gain(x: float) -> str:
    return f"{x:+.3g}"


def rule_comment(rule: LearnedRule, n_train: int, unit: str) -> list[str]:
    ci = (
        f" [{_fmt_gain(rule.interval[0])}, {_fmt_gain(rule.interval[1])}]"
        if rule.interval
        else " (too few resamples for an interval)"
    )
    return [
        f"# cumulative strong share {rule.cumulative_share:.1%} of training calls with this "
        "rule and those above (drop the rules below to spend less);",
        f"# matches {rule.matches} of {n_train} training {unit}s, decides {rule.decides}: strong "
        f"minus cheap {_fmt_gain(rule.mean_gain)} per call, {_fmt_gain(rule.excess)} beyond "
        f"random routing, 95% CI{ci}; inner folds: {rule.folds}.",
    ]


def inline_test_lines(
    example: Example, reads: set[str], tier: str, rule: str, whole: frozenset[str] = frozenset()
) -> list[str]:
    """`whole`: text attributes the rule under test reads that a test cannot set (`text` is
    computed from the prompt there): the prompt then carries that whole text, so the phrase
    found in an earlier turn is in the test too."""
    r = example.request
    prompt = r.prompt or ""
    for name in sorted(whole):
        value = getattr(r, name, None)
        if isinstance(value, str) and value:
            prompt = value
    attrs: list[tuple[str, str]] = [("prompt", fmt_str(prompt))]
    for name in PHRASE_ATTRS:
        value = getattr(r, name, None) if name != "prompt" else None
        info = lookup(name)
        if info is None or not info.settable:
            continue  # `text` is computed from the prompt in a test
        if name in reads and isinstance(value, str) and value != (r.prompt or ""):
            attrs.append((name, fmt_str(value)))
    for name in (*STEP_ATTRS, *NUMERIC_ATTRS, *STRING_ATTRS):
        info = lookup(name)
        if name not in reads or info is None or not info.settable:
            continue  # `length` is computed from the prompt
        value = info.get(r)
        if value is not None:
            attrs.append((name, fmt_str(value) if isinstance(value, str) else str(value)))
    for fam in VALUE_FAMILIES:
        for key, value in sorted(getattr(r, fam.field or "").items()):
            if f"{fam.prefix}.{key}" in reads:
                attrs.append((f"{fam.prefix}.{key}", _literal(value)))
    width = max(len(a) for a, _ in attrs)
    body = [f"  {a.ljust(width)} = {v}" for a, v in attrs]
    return [
        f"test {fmt_str('training request ' + example.id)} {{",
        *body,
        f"}} -> {tier} by {rule}",
    ]


def wrap_comment(line: str, width: int = 100) -> list[str]:
    """A `#` line wrapped at `width`, continuation lines indented under its text; a line
    holding a command (two leading spaces) stays whole so it can be copied."""
    if len(line) <= width or not line.startswith("#") or line.startswith("#   policyroute"):
        return [line]
    import textwrap

    body = line[1:].strip()
    indent = "#   " if line.startswith("#   ") else "# "
    return textwrap.wrap(
        body,
        width,
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_on_hyphens=False,
        break_long_words=False,
    )


# How long a conversation keeps the tier its first turn was given (conversation mode).
STICKY = "sticky conversations 1 hours"
FIRST_TURN = "turns == 1"


def render(
    *,
    header: Sequence[str],
    policy_name: str,
    tier_lines: Sequence[str],
    rules: Sequence[LearnedRule],
    cheap: str,
    strong: str,
    n_train: int,
    unit: str,
    conversation: bool,
    empty_reason: str,
    default_example: Example | None,
) -> str:
    out = [*(w for line in header for w in wrap_comment(line))]
    out += ["", f"policy {fmt_str(policy_name)}", "", *tier_lines, ""]
    if conversation and rules:
        out += [
            "# Conversation-level: each conversation is decided on its first turn (the rules",
            "# read only first turns) and keeps that tier for its later turns.",
            STICKY,
            "",
        ]
    for rule in rules:
        out += [w for line in rule_comment(rule, n_train, unit) for w in wrap_comment(line)]
        condition = f"{FIRST_TURN} and {_part_text(rule)}" if conversation else rule.condition
        out.append(f"rule {rule.name}: {condition} -> {strong}")
    if not rules:
        out += [w for w in wrap_comment(f"# {empty_reason}")]
    out += ["default -> " + cheap, ""]
    reads = {a for r in rules for a in r.item.reads} | ({"turns"} if conversation else set())
    for rule in rules:
        if rule.example is not None:
            whole = frozenset(a for a in rule.item.reads if a in PHRASE_ATTRS and not _settable(a))
            out += [*inline_test_lines(rule.example, reads, strong, rule.name, whole), ""]
    if default_example is not None:
        out += [*inline_test_lines(default_example, reads, cheap, "default"), ""]
    return "\n".join(out)


def _settable(name: str) -> bool:
    info = lookup(name)
    return info is not None and info.settable


def _part_text(rule: LearnedRule) -> str:
    return f"({rule.condition})" if " or " in rule.condition else rule.condition


def verify(text: str, name: str, base_dir: Path) -> tuple[str, Policy]:
    """The canonical form of `text` and its policy, or EmitError: it must load with zero
    diagnostics (analysis lints included), format to itself and pass its inline tests."""
    from ..analysis import lint
    from ..compiler.inline_tests import run_tests
    from ..syntax.diagnostics import render_human

    try:
        formatted = format_source(text, name)
        policy = loads(formatted, name, base_dir)
    except PolicyError as e:
        raise EmitError(render_human(e.diagnostics)) from None
    found: list[Diagnostic] = [*policy.warnings, *lint(policy)]
    if found:
        raise EmitError(render_human(found))
    if format_source(formatted, name) != formatted:
        raise EmitError("the learned policy does not format to itself")
    failed = [r for r in run_tests(policy) if not r.passed]
    if failed:
        raise EmitError(
            "inline tests fail: " + ", ".join(f"{r.test.name} ({r.decision.rule})" for r in failed),
            [r.test.name for r in failed],
        )
    return formatted, policy
