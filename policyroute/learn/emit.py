"""The learned `.route` file: rules that explain themselves, inline tests, checked clean.

Conditions of one family merge into one rule (every phrase into one keyword set, every regex
into one `or`, thresholds on one attribute into the loosest): all of them send requests to
the strong tier, so merging changes no decision and leaves fewer, broader rules to review.
Each rule carries a comment with its support, the strong tier's mean gain on the requests it
decides (with a bootstrap interval over groups) and its stability; each rule and the default
get an inline test made from a real training request. Nothing is written that does not
check with zero diagnostics, format to itself and pass its own tests.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    BELOW,
    NUMERIC_ATTRS,
    PHRASE,
    REGEX,
    REGEXES,
    STEP_ATTRS,
    STRING_ATTRS,
    VALUE,
    VALUE_FAMILIES,
    Item,
)
from .select import Selection

if TYPE_CHECKING:
    import numpy as np


class EmitError(Exception):
    """The learned text did not check clean or failed its own tests (a bug worth reporting)."""


@dataclass(slots=True)
class LearnedRule:
    name: str
    items: list[Item]
    condition: str
    keywords: tuple[str, list[str]] | None
    matches: int
    decides: int
    mean_gain: float
    interval: tuple[float, float] | None
    stability: float
    frequencies: list[tuple[Item, float]] = field(default_factory=list)
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


def _base_name(kind: str, attr: str) -> str:
    if kind == PHRASE:
        return "learned_words"
    if kind == REGEX:
        return "learned_patterns"
    family = family_of(attr)
    short = attr.partition(".")[2] if family is not None else attr
    return _NAMES.get((kind, attr)) or f"{'by' if kind == VALUE else kind}_{_ident(short)}"


def _literal(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return fmt_str(value)
    return str(value)


def condition_text(kind: str, attr: str, items: Sequence[Item], set_name: str) -> str:
    values = [i.value for i in items]
    if kind == PHRASE:
        if len(values) == 1:
            return f"{attr} contains {fmt_str(str(values[0]))}"
        return f"{attr} contains any {set_name}"
    if kind == REGEX:
        parts = []
        for v in values:
            pattern, flags = REGEXES[str(v)]
            parts.append(f"{attr} matches {fmt_regex(ast.Regex(pattern, flags))}")
        return " or ".join(parts)
    if kind == ABOVE:
        return f"{attr} > {min(values)}"
    if kind == BELOW:
        return f"{attr} < {max(values)}"
    if len(values) == 1 or all(isinstance(v, bool) for v in values):
        return " or ".join(f"{attr} == {_literal(v)}" for v in values)
    return f"{attr} in [{', '.join(_literal(v) for v in values)}]"


def describe(
    selection: Selection,
    candidates_items: Sequence[Item],
    masks: np.ndarray,
    train: Sequence[Example],
    gain: np.ndarray,
    taken_names: frozenset[str],
) -> list[LearnedRule]:
    """The chosen conditions, merged by family, in the order first chosen, with their figures."""
    import numpy as np

    index = {item: j for j, item in enumerate(candidates_items)}
    families: dict[tuple[str, str], list[Item]] = {}
    for item in selection.items:
        families.setdefault(item.family, []).append(item)
    used = set(taken_names)
    covered = np.zeros(len(train), dtype=bool)
    rules: list[LearnedRule] = []
    for (kind, attr), items in families.items():
        matched = masks[[index[i] for i in items]].max(axis=0) > 0
        decided = matched & ~covered
        if not decided.any():
            # A later condition merged into an earlier rule took every request this family
            # covers: the rule would never decide a training request, so it is left out
            # (no decision changes).
            continue
        covered |= matched
        name = _unique(_base_name(kind, attr), used)
        set_name = _unique("learned", used) if kind == PHRASE and len(items) > 1 else ""
        g = gain[decided]
        w = selection.weights[:, decided]
        sums = w.sum(axis=1)
        means = (w @ g)[sums > 0] / sums[sums > 0]
        interval = (
            (float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975)))
            if means.size >= 20
            else None
        )
        stability = float(selection.resampled_strong[:, decided].mean()) if decided.any() else 0.0
        phrases = [str(i.value) for i in items] if kind == PHRASE else []
        example = pick_example(train, decided, gain, want_gain=True)
        rules.append(
            LearnedRule(
                name=name,
                items=items,
                condition=condition_text(kind, attr, items, set_name),
                keywords=(set_name, phrases) if set_name else None,
                matches=int(matched.sum()),
                decides=int(decided.sum()),
                mean_gain=float(g.mean()) if g.size else 0.0,
                interval=interval,
                stability=stability,
                frequencies=[(i, selection.frequency.get(i, 0.0)) for i in items],
                example=example,
            )
        )
    return rules


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def pick_example(
    train: Sequence[Example], where: np.ndarray, gain: np.ndarray, want_gain: bool
) -> Example | None:
    """The shortest training request in `where` that shows the point (the strong tier
    gained, or for the default it did not), else the shortest; printable text only."""
    best: tuple[bool, int, str] | None = None
    found: Example | None = None
    for j in where.nonzero()[0]:
        ex = train[int(j)]
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


def rule_comment(rule: LearnedRule, n_train: int, resamples: int) -> list[str]:
    ci = (
        f" [{_fmt_gain(rule.interval[0])}, {_fmt_gain(rule.interval[1])}]"
        if rule.interval
        else " (too few resamples for an interval)"
    )
    lines = [
        f"# matches {rule.matches} training requests ({rule.matches / n_train:.1%}), "
        f"decides {rule.decides}; strong minus cheap score on them: "
        f"{_fmt_gain(rule.mean_gain)} per request, 95% CI{ci};",
        f"# stability {rule.stability:.0%}: learners on {resamples} bootstrap resamples "
        "of the training groups send that share of them to the strong tier too.",
    ]
    if len(rule.items) > 1 or rule.items[0].kind != VALUE:
        shown = ", ".join(
            f"{_short(i)} {f:.0%}" for i, f in sorted(rule.frequencies, key=lambda x: -x[1])
        )
        lines.append(f"# chosen by the resampled learners: {shown}")
    return lines


def _short(item: Item) -> str:
    if item.kind in (PHRASE, VALUE):
        return fmt_str(str(item.value)) if not isinstance(item.value, bool) else str(item.value)
    if item.kind == REGEX:
        return str(item.value)
    return f"{'>' if item.kind == ABOVE else '<'} {item.value}"


def inline_test_lines(example: Example, reads: set[str], tier: str, rule: str) -> list[str]:
    r = example.request
    attrs: list[tuple[str, str]] = [("prompt", fmt_str(r.prompt or ""))]
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


def render(
    *,
    header: Sequence[str],
    policy_name: str,
    tier_lines: Sequence[str],
    rules: Sequence[LearnedRule],
    cheap: str,
    strong: str,
    n_train: int,
    resamples: int,
    default_example: Example | None,
) -> str:
    out = [*(w for line in header for w in wrap_comment(line))]
    out += ["", f"policy {fmt_str(policy_name)}", "", *tier_lines, ""]
    for rule in rules:
        if rule.keywords is not None:
            name, phrases = rule.keywords
            out.append(f"keywords {name} = [{', '.join(fmt_str(p) for p in phrases)}]")
    if any(r.keywords for r in rules):
        out.append("")
    for rule in rules:
        out += [w for line in rule_comment(rule, n_train, resamples) for w in wrap_comment(line)]
        out.append(f"rule {rule.name}: {rule.condition} -> {strong}")
    if not rules:
        out.append("# No condition bought the strong tier a steady gain within the budget.")
    out += ["default -> " + cheap, ""]
    reads = {i.attr for r in rules for i in r.items}
    for rule in rules:
        if rule.example is not None:
            out += [*inline_test_lines(rule.example, reads, strong, rule.name), ""]
    if default_example is not None:
        out += [*inline_test_lines(default_example, reads, cheap, "default"), ""]
    return "\n".join(out)


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
            "inline tests fail: " + ", ".join(f"{r.test.name} ({r.decision.rule})" for r in failed)
        )
    return formatted, policy
