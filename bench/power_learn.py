"""How large must a real effect be for `policyroute learn` to keep it, on MT-Bench-sized
training data? A power check, on the training side only (issue 22, target (a)).

    python bench/power_learn.py              # both checks
    python bench/power_learn.py --draws 20   # more synthetic draws per effect size

Two checks, neither of which judges a policy on data it was not learned from, and neither
reads a held-out half's outcomes beyond the training sets `bench/judge_learn.py --inner`
learns from:

1. **Planted on real training sets.** Each of the four inner training sets of
   `judge_learn.py --inner` (20 MT-Bench questions, 40 turns, 2 or 3 questions a category)
   with `delta` added to the strong tier's score on every math turn: the real noise, a known
   effect. It prints the learner's training-side figures for `metadata.category == "math"`
   (excess per strong call, its t statistic, the inner folds' verdicts) and whether the
   25% policy keeps it.
2. **Twice the questions.** 40 questions (5 per category, 2 turns, as a parity half of
   MT-Bench), each question's two (cheap, strong) score pairs drawn with replacement from one
   inner training set's questions, text made of filler words (so no phrase means anything),
   and `delta` added to the strong score on math turn 2 only (the issue's "math gains only on
   turn 2"). It prints, per `delta`, on how many draws the 25% policy holds a rule reading
   the math category, and on how many it holds any rule at all (at `delta` 0, pure noise
   but for the real categories' spread, any rule is a false discovery).

3. **A whole policy, validated once.** Instead of testing each condition, the greedy
   learner itself is cross-validated: on each inner fold (by question) it learns from the
   other folds (any condition eligible there, at the one-sided bar `--z`, no multiplicity
   correction) and its policy is applied to the left-out fold; the pooled out-of-fold lift
   over random routing at the same share is bootstrapped by question. One test per budget
   instead of thousands: the most power an honest learner can have. Run on the four inner
   training sets of `mt-bench-category` (or `--case`).

4. **Pure noise of the same size** (`--only noise --draws 230`): the generator of
   `tests/learn/test_protocols.py` (40 two-turn questions, 8 categories, both tiers' scores
   drawn alike), and on how many draws any condition is validated: the false discoveries
   the bars let through, against the 5% the families share by design.

The figures are in docs/learn.md ("Why MT-Bench does not validate").
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import judge_learn as J

CATEGORIES = ["coding", "extraction", "humanities", "math", "reasoning", "roleplay", "stem"]
CATEGORIES.append("writing")
FILLER = [
    "apple",
    "river",
    "stone",
    "garden",
    "window",
    "market",
    "table",
    "cloud",
    "paper",
    "light",
    "music",
]


def _settings(budget: float = 0.25):  # type: ignore[no-untyped-def]
    from policyroute.learn.learner import Settings

    return Settings("haiku", "opus", budget, holdout=0, group_by="question")


def _load(traffic: Path, outcomes: Path):  # type: ignore[no-untyped-def]
    from policyroute.learn.data import load_examples
    from policyroute.learn.tiers import read_tiers

    tiers = read_tiers(J.TIERS).tiers
    return load_examples([str(traffic)], [str(outcomes)], tiers, "haiku", "opus", "question")


def _planted(examples, delta: float, turn: int | None):  # type: ignore[no-untyped-def]
    from policyroute.learn.data import Example

    out = []
    for ex in examples:
        meta = ex.request.metadata or {}
        hit = meta.get("category") == "math" and (turn is None or meta.get("turn") == turn)
        scores = dict(ex.scores)
        if hit:
            scores["opus"] += delta
        out.append(Example(ex.id, ex.group, ex.request, scores))
    return out


def _math_rules(examples, s) -> tuple[bool, bool, str]:  # type: ignore[no-untyped-def]
    """(a rule reads the math category, any rule, the figures of `category == "math"`)."""
    import numpy as np

    from policyroute.learn.learner import policy_for, prepare
    from policyroute.learn.select import excess, stats

    model = prepare(examples, s)
    choice = policy_for(model, s.budget, s)
    labels = [r.item.label() for r in choice.rules]
    math = any('category == "math"' in lab for lab in labels)
    items = model.candidates.items
    v = model.validation
    n = len(model.units.examples)
    sums = stats(
        model.data.masks,
        excess(model.data.gain, model.data.cost, np.ones(n)),
        model.data.cost,
        np.ones(n),
    )
    shown = ""
    for j, item in enumerate(items):
        if item.label() == 'metadata.category == "math"':
            count, spend, total, square = sums[j]
            mean = total / spend
            sd = max(square / spend - mean * mean, 0.0) ** 0.5
            t = mean / (sd / max(count - 1, 1) ** 0.5) if sd > 0 else float("inf")
            shown = (
                f"excess {mean:+.2f}/call t={t:.2f} on {int(count)} turns; eligible on "
                f"{int(v.eligible[j])}/{v.folds} folds, beat random on {int(v.wins[j])}/"
                f"{int(v.tried[j])}; pooled 5th pct {v.bound[j]:+.2f}"
            )
    return math, bool(labels), shown


def planted_on_real(deltas: list[float]) -> None:
    case = next(c for c in J.CASES if c.name == "mt-bench-category")
    print("1. planted on the real inner training sets: opus + delta on every math turn")
    with tempfile.TemporaryDirectory() as tmp:
        for within in (0, 1):
            for side, path in zip(("even", "odd"), J.halves(case, Path(tmp), within), strict=True):
                loaded = _load(path, J.DATA / case.outcomes)
                print(
                    f"  inner {'even' if within == 0 else 'odd'} half, train {side}: "
                    f"{len(loaded.examples)} turns"
                )
                for delta in deltas:
                    math, _, shown = _math_rules(
                        _planted(loaded.examples, delta, None), _settings()
                    )
                    print(f"    delta {delta:+4.1f}: kept {'yes' if math else 'no '}  {shown}")


def _synthetic(
    folder: Path, pairs: list[list[tuple[float, float]]], delta: float, rng: random.Random
) -> tuple[Path, Path]:
    traffic, outcomes = folder / "t.jsonl", folder / "o.jsonl"
    with traffic.open("w") as t, outcomes.open("w") as o:
        q = 0
        for category in CATEGORIES:
            for _ in range(5):
                q += 1
                scores = rng.choice(pairs)
                messages: list[dict[str, str]] = []
                for turn, (cheap, strong) in enumerate(scores, start=1):
                    text = " ".join(rng.choice(FILLER) for _ in range(rng.randint(6, 40)))
                    messages = [*messages, {"role": "user", "content": text}]
                    rid = f"q/{q}/{turn}"
                    meta = {"question": f"q/{q}", "category": category, "turn": turn}
                    t.write(
                        json.dumps({"id": rid, "messages": messages, "route": {"metadata": meta}})
                        + "\n"
                    )
                    bump = delta if category == "math" and turn == 2 else 0.0
                    o.write(json.dumps({"id": rid, "tier": "haiku", "score": cheap}) + "\n")
                    o.write(json.dumps({"id": rid, "tier": "opus", "score": strong + bump}) + "\n")
                    messages.append({"role": "assistant", "content": "ok"})
    return traffic, outcomes


def twice_the_questions(deltas: list[float], draws: int) -> None:
    case = next(c for c in J.CASES if c.name == "mt-bench-category")
    print(
        "2. 40 synthetic questions (5 a category), score pairs drawn from the inner even "
        "half's even training set; opus + delta on math turn 2 only; 25% budget"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path, _ = J.halves(case, folder, 0)
        loaded = _load(path, J.DATA / case.outcomes)
        by_q: dict[str, list[tuple[int, float, float]]] = {}
        for ex in loaded.examples:
            turn = int((ex.request.metadata or {}).get("turn", 0))
            by_q.setdefault(ex.group, []).append((turn, ex.scores["haiku"], ex.scores["opus"]))
        pairs = [[(c, s) for _, c, s in sorted(v)] for v in by_q.values() if len(v) == 2]
        for delta in deltas:
            math = anything = 0
            for d in range(draws):
                rng = random.Random(1000 * d + 7)
                traffic, outcomes = _synthetic(folder, pairs, delta, rng)
                hit, some, _ = _math_rules(_load(traffic, outcomes).examples, _settings())
                math += hit
                anything += some
            print(
                f"  delta {delta:+4.1f}: a math rule on {math}/{draws} draws, "
                f"any rule on {anything}/{draws}"
            )


def whole_policy(case_name: str, z: float) -> None:
    import numpy as np

    from policyroute.learn.learner import Settings, prepare
    from policyroute.learn.select import greedy, group_weights
    from policyroute.learn.validate import fold_of

    case = next(c for c in J.CASES if c.name == case_name)
    group_by = {"question": "question", "subject": "subject"}.get(case.half)
    exclude = frozenset({"metadata.category"}) if "--exclude" in case.flags else frozenset()
    print(
        f"3. {case_name}: the greedy learner (z={z}) cross-validated as a whole, per budget: "
        "out-of-fold lift per call over random [one-sided p]"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for within in (0, 1):
            for side, path in zip(("even", "odd"), J.halves(case, Path(tmp), within), strict=True):
                from policyroute.learn.data import load_examples
                from policyroute.learn.tiers import read_tiers

                tiers = read_tiers(J.TIERS).tiers
                loaded = load_examples(
                    [str(path)], [str(J.DATA / case.outcomes)], tiers, "haiku", "opus", group_by
                )
                s = Settings(
                    "haiku",
                    "opus",
                    0.25,
                    holdout=0,
                    group_by=group_by,
                    conversation=case.conversation,
                    exclude=exclude,
                )
                model = prepare(loaded.examples, s)
                d = model.data
                groups = [ex.group for ex in model.units.examples]
                fold = fold_of(groups, s.folds, s.seed)
                weights = group_weights(groups, 2000, 0)
                shown = []
                for budget in (0.1, 0.2, 0.25, 0.3, 0.4):
                    strong = np.zeros(d.masks.shape[1], dtype=bool)
                    for f in range(int(fold.max()) + 1):
                        inside = (fold != f).astype(float)
                        chosen = greedy(
                            d,
                            inside,
                            budget=budget,
                            min_support=model.support * inside.mean(),
                            max_rules=12,
                            z=z,
                            allowed=model.available[:, f],
                            rank_z=2.0,
                        )
                        if chosen:
                            strong |= (d.masks[chosen].max(axis=0) > 0) & (fold == f)
                    e = np.zeros(d.masks.shape[1])
                    for f in range(int(fold.max()) + 1):
                        here = fold == f
                        rate = d.gain[here].sum() / d.cost[here].sum()
                        e[here] = np.where(strong[here], d.gain[here] - rate * d.cost[here], 0.0)
                    lift = (weights @ e) / (weights @ d.cost)
                    point = e.sum() / d.cost.sum()
                    shown.append(f"{budget:.0%} {point:+.3f} [p={(lift <= 0).mean():.2f}]")
                print(
                    f"  inner {'even' if within == 0 else 'odd'} half, train {side} "
                    f"({len(set(groups))} groups): " + "; ".join(shown)
                )


def noise(draws: int) -> None:
    sys.path.insert(0, str(J.ROOT))
    from policyroute.learn.learner import prepare
    from tests.learn.test_protocols import _mt_bench_shaped

    found = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(draws):
            folder = Path(tmp) / str(seed)
            folder.mkdir()
            _mt_bench_shaped(folder, seed, 40, 0.0)
            model = prepare(_load(folder / "t.jsonl", folder / "o.jsonl").examples, _settings())
            kept = model.validation.validated.nonzero()[0]
            if kept.size:
                found.append(f"seed {seed}: {model.candidates.items[int(kept[0])].label()}")
    print(f"4. pure noise, 40 questions: a condition validated on {len(found)} of {draws} draws")
    for line in found:
        print(f"  {line}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--only", choices=["real", "twice", "policy", "noise"], default=None)
    parser.add_argument("--case", default="mt-bench-category")
    parser.add_argument("--z", type=float, default=1.645)
    args = parser.parse_args()
    if args.only in (None, "real"):
        planted_on_real([0.0, 2.0, 4.0, 6.0, 9.0])
    if args.only in (None, "twice"):
        twice_the_questions([0.0, 2.0, 4.0, 6.0, 9.0], args.draws)
    if args.only in (None, "policy"):
        whole_policy(args.case, args.z)
    if args.only == "noise":
        noise(args.draws)


if __name__ == "__main__":
    main()
