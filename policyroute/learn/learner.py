"""The whole of `learn`: split, mine, grow conjunctions, validate, select per budget, emit,
judge on the held-out part (and, cross-fitted, the other way round), write.

The held-out part is used once, after the policy is fixed, to write the report in its header;
nothing the learner chooses depends on it. `prepare` does the work shared by every budget
(candidates, conjunctions, inner validation); `policy_for` chooses within one budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..policy import Policy
from .data import Example, Loaded, Split, split_by_group
from .emit import EmitError, LearnedRule, describe, pick_example, render, verify
from .evaluate import HeldOut
from .features import AND, PHRASE, Candidates, Item, generate
from .figures import Curve, Unit
from .select import Data, greedy, group_weights
from .tree import conjunctions
from .validate import Config, Validation, fold_of, validate

if TYPE_CHECKING:
    import numpy as np

    from .tiers import TierFile


# The learners' bar: None, the Benjamini-Hochberg bar over the candidates each learner
# sees. A looser bar (one standard error) let a lucky region of pure noise be eligible on
# every fold, and then win out of fold on most of them, since those folds share its luck.
Z: float | None = None
# Eligibility on an inner fold: the one-sided 95% bound, not the multiplicity bar. (TUNING)
FOLD_Z: float | None = 1.645
PICK_Z = 1.645
# The final order compares lower bounds at two standard errors, so that among validated
# conditions a broad steady one comes before a narrow one that got lucky.
RANK_Z = 2.0
# How many times an inline test's example may be replaced before learn gives up (exit 1).
MAX_REPICKS = 40


class LearnError(Exception):
    """Learning cannot go on (no usable examples, nothing to hold out...): exit 1."""


@dataclass(frozen=True, slots=True)
class Settings:
    cheap: str
    strong: str
    budget: float  # share in [0, 1]
    holdout: float = 0.3
    group_by: str | None = None
    max_rules: int = 12
    seed: int = 0
    resamples: int = 200
    folds: int = 5
    exclude: frozenset[str] = frozenset()
    conversation: bool = False  # decide on a conversation's first turn, for all its turns
    cross_fit: bool = False  # also learn on the held-out part and judge on the training part
    z: float | None = Z  # the learners' bar on excess per call; None: Benjamini-Hochberg


def min_support(n_train: int) -> int:
    """The support floor scales with the data: 1% of the training examples, at least 5."""
    return max(5, math.ceil(0.01 * n_train))


@dataclass(frozen=True, slots=True)
class Units:
    """What one decision is made on: a request, or (conversation mode) a conversation's first
    turn standing for all its turns, with their scores summed."""

    examples: list[Example]
    gain: np.ndarray
    cost: np.ndarray
    cheap: np.ndarray
    strong: np.ndarray


def units_of(examples: Sequence[Example], s: Settings) -> Units:
    import numpy as np

    if s.conversation:
        by_group: dict[str, list[Example]] = {}
        for ex in examples:
            by_group.setdefault(ex.group, []).append(ex)
        firsts = []
        cheap, strong, cost = [], [], []
        for group, turns in by_group.items():
            first = min(turns, key=lambda x: x.request.turns or 0)
            firsts.append(Example(first.id, group, first.request, first.scores))
            cheap.append(sum(x.scores[s.cheap] for x in turns))
            strong.append(sum(x.scores[s.strong] for x in turns))
            cost.append(float(len(turns)))
    else:
        firsts = list(examples)
        cheap = [x.scores[s.cheap] for x in examples]
        strong = [x.scores[s.strong] for x in examples]
        cost = [1.0] * len(examples)
    c, g = np.array(cheap, dtype=np.float64), np.array(strong, dtype=np.float64)
    return Units(firsts, g - c, np.array(cost), c, g)


@dataclass(slots=True)
class Model:
    """Everything learned from one part, shared by every budget."""

    units: Units
    candidates: Candidates
    atoms: int
    data: Data
    validation: Validation
    support: int
    weights: np.ndarray  # bootstrap weights for the rules' intervals
    available: np.ndarray  # (k, folds): whether each fold's learner has the condition


def prepare(examples: Sequence[Example], s: Settings) -> Model:
    units = units_of(examples, s)
    n = len(units.examples)
    support = min_support(n)
    exclude = set(s.exclude)
    if s.group_by:
        exclude |= {s.group_by, f"metadata.{s.group_by}"}
    if s.conversation:
        exclude |= {"turns", "text"}  # a first turn has one message: both say nothing
    groups = [ex.group for ex in units.examples]
    atoms = generate(units.examples, min_support=support, min_groups=3, exclude=frozenset(exclude))
    base = Data(atoms.masks, units.gain, units.cost)
    # Conjunctions are chosen by their gain, so each inner fold grows its own from the folds
    # it learns on: a branch found with a fold's requests is never judged on that fold, and
    # one that no fold's learner finds on its own is never a rule.
    fold = fold_of(groups, s.folds, s.seed)
    folds = int(fold.max()) + 1 if n else 0
    grown_by_fold = [
        conjunctions(
            atoms, base, min_support=support * (fold != f).mean(), weight=(fold != f).astype(float)
        )
        for f in range(folds)
    ]
    import numpy as np

    # One list of every fold's conjunctions (each once), and which folds' learners have each.
    items = list(atoms.items)
    where: dict[Item, int] = {item: j for j, item in enumerate(items)}
    extra_rows: list[np.ndarray] = []
    grown_in: list[set[int]] = [set(range(folds)) for _ in items]
    for f, cands in enumerate(grown_by_fold):
        fresh = zip(cands.items[len(atoms.items) :], cands.masks[len(atoms.items) :], strict=True)
        for item, mask in fresh:
            if item not in where:
                where[item] = len(items)
                items.append(item)
                extra_rows.append(mask)
                grown_in.append(set())
            grown_in[where[item]].add(f)
    masks = np.concatenate([atoms.masks, np.stack(extra_rows)]) if extra_rows else atoms.masks
    available = np.zeros((len(items), folds), dtype=bool)
    for j, fs in enumerate(grown_in):
        available[j, sorted(fs)] = True
    candidates = Candidates(items, masks)
    data = Data(masks, units.gain, units.cost)
    config = Config(
        min_support=support,
        folds=s.folds,
        resamples=s.resamples,
        seed=s.seed,
        z=s.z,
        fold_z=FOLD_Z,
    )
    validation = validate(data, groups, config, available, family_of(items))
    weights = group_weights(groups, 1000, s.seed)
    return Model(units, candidates, len(atoms.items), data, validation, support, weights, available)


def family_of(items: Sequence[Item]) -> np.ndarray:
    """The family each condition is tested in: 0 the few dozen single structural conditions
    (thresholds, regexes, values), 1 their conjunctions, 2 anything that reads a phrase
    (thousands, mined from the text). A category that gains is judged among its peers, not
    as one of thousands of phrases; the families share the false discovery rate."""
    import numpy as np

    def phrase(item: Item) -> bool:
        return item.kind == PHRASE or any(phrase(p) for p in item.parts)

    return np.array([2 if phrase(i) else 1 if i.kind == AND else 0 for i in items], dtype=np.intp)


@dataclass(slots=True)
class Choice:
    rules: list[LearnedRule]
    chosen: list[int]
    train_share: float
    reason: str  # why there are no rules, when there are none


def policy_for(model: Model, budget: float, s: Settings) -> Choice:
    """The best validated policy at or under `budget`: the greedy choice among validated
    conditions, ordered by excess per call."""
    import numpy as np

    n = len(model.units.examples)
    chosen = greedy(
        model.data,
        np.ones(n),
        budget=budget,
        min_support=model.support,
        max_rules=s.max_rules,
        # Validated conditions have cleared the multiplicity bar already; here a step is taken
        # while what it newly covers still beats random at the one-sided 95% bound.
        z=PICK_Z,
        allowed=model.validation.validated,
        rank_z=RANK_Z,
    )
    rules = describe(
        chosen,
        model.candidates.items,
        model.data,
        model.units.examples,
        model.validation,
        model.weights,
    )
    share = rules[-1].cumulative_share if rules else 0.0
    reason = ""
    if not chosen:
        v = model.validation
        if not v.validated.any():
            tried = int((v.eligible > 0).sum())
            reason = (
                f"No condition held up: {_count(tried, 'condition')} eligible on some inner "
                f"fold, none beating random routing out of fold across the {v.folds} folds and "
                f"the bootstrap resamples. Content routing does not pay on this data: every "
                f"request goes to {s.cheap}."
            )
        else:
            sizes = model.data.cost @ model.data.masks[v.validated].T
            least = float(sizes.min()) / float(model.data.cost.sum())
            reason = (
                f"No validated condition fits within a {budget:.0%} budget (the smallest "
                f"of the {int(v.validated.sum())} validated takes {least:.1%}): every request "
                f"goes to {s.cheap}."
            )
    return Choice(rules, chosen, share, reason)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass(slots=True)
class Learned:
    text: str
    policy: Policy
    rules: list[LearnedRule]
    split: Split
    train_strong_share: float
    curve: Curve | None
    heldout: HeldOut | None  # replay's report, per-turn mode only
    reason: str
    cross: Curve | None = None
    notes: list[str] = field(default_factory=list)


def decide_units(policy: Policy, units: Units, rules: Sequence[LearnedRule]) -> list[Unit]:
    """The held-out decisions as curve units: which rule (its index) decided each."""
    index = {r.name: i for i, r in enumerate(rules)}
    out = []
    for j, ex in enumerate(units.examples):
        rule = policy.decide(ex.request).rule
        out.append(
            Unit(
                ex.group,
                index.get(rule),
                float(units.cost[j]),
                float(units.cheap[j]),
                float(units.strong[j]),
            )
        )
    return out


def split_of(loaded: Loaded, s: Settings) -> Split:
    if not loaded.examples:
        raise LearnError(
            f"no request has an outcome on both {s.cheap} and {s.strong} "
            f"({loaded.requests} requests read, {loaded.no_outcome} without both outcomes)"
        )
    return split_by_group(loaded.examples, s.holdout, s.seed)


def write_policy(
    model: Model,
    choice: Choice,
    tiers: TierFile,
    s: Settings,
    out: Path,
    header: Sequence[str],
    name: str | None = None,
) -> tuple[str, Policy]:
    """The policy text (checked, formatted, tested) and its compiled policy; the emitted
    rules must decide every training unit as the selection did."""
    import numpy as np

    from .tiers import tier_lines

    strong = (
        model.data.masks[choice.chosen].max(axis=0) > 0
        if choice.chosen
        else np.zeros(len(model.units.examples), dtype=bool)
    )
    train, gain = model.units.examples, model.units.gain
    default_example = pick_example(train, ~strong, gain, False)
    # Each rule's training requests not taken by an earlier rule: where its example comes from.
    decides, covered = [], np.zeros(len(train), dtype=bool)
    for j in choice.chosen:
        decides.append((model.data.masks[j] > 0) & ~covered)
        covered |= decides[-1]
    rules = list(choice.rules)
    skip: list[set[str]] = [set() for _ in range(len(rules) + 1)]  # the last: the default's
    for _ in range(MAX_REPICKS + 1):
        text = render(
            header=header,
            policy_name=name or out.stem,
            tier_lines=tier_lines(tiers, [s.cheap, s.strong] if rules else [s.cheap], out),
            rules=rules,
            cheap=s.cheap,
            strong=s.strong,
            n_train=len(train),
            unit="conversation" if s.conversation else "request",
            conversation=s.conversation,
            empty_reason=choice.reason,
            default_example=default_example,
        )
        try:
            text, policy = verify(text, out.name, out.resolve().parent)
            break
        except EmitError as e:
            # A test can set the prompt but not the earlier turns, so for a rule reading
            # `text` its prompt carries the whole conversation, and that moves `length` and
            # what `prompt contains` sees: on some requests the test cannot say what the
            # policy does with the real one. Such a request is not an example; the next one
            # is tried (found by the MT-Bench-sized noise test in tests/learn).
            failed = set(e.failed)
            moved = False
            for i, rule in enumerate(rules):
                if rule.example is not None and f"training request {rule.example.id}" in failed:
                    skip[i].add(rule.example.id)
                    pick = pick_example(train, decides[i], gain, True, skip[i])
                    rules[i] = replace(rule, example=pick)
                    moved = True
            if default_example and f"training request {default_example.id}" in failed:
                skip[-1].add(default_example.id)
                default_example = pick_example(train, ~strong, gain, False, skip[-1])
                moved = True
            if not moved:
                raise
    else:
        raise EmitError(f"no training request makes an inline test that passes ({MAX_REPICKS})")
    choice.rules[:] = rules
    decided = [policy.decide(ex.request).tier == s.strong for ex in model.units.examples]
    if decided != [bool(x) for x in strong]:
        raise EmitError("the emitted rules do not decide the training requests as selected")
    return text, policy
