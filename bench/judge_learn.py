"""Judge `policyroute learn` on the RouteLLM outcomes the way issue 22 measures it, outside
learn's own report: each dataset is cut in halves by parity, learn is run on one half with
`--holdout 0 --budgets ...`, and every policy it writes is judged here on the other half;
then the other way round (cross-fitted).

    python bench/judge_learn.py                      # every dataset and variant
    python bench/judge_learn.py --only mt-bench-text  # one of them
    python bench/judge_learn.py --inner              # tuning: inner halves of each half only

Halves: MT-Bench by question id, GSM8K by row, MMLU by subject (new subjects) and by row
within each subject (new questions of seen subjects). Variants of MT-Bench: per turn or per
conversation (decided on the first turn, both turns to its tier), text only
(`--exclude metadata.category`) or with the category.

Per half and budget it prints the held-out strong share (in calls), % of the all-strong
score, and the lift over random routing at the same share with a 95% group-bootstrap
interval (2,000 resamples, seed 0); per half, the APGR of the curve through the budgets'
points (with the single tiers at its ends; random routing is 0.5) and the strong share at
which that curve reaches 95% of the all-strong score, against random routing's.

`--inner` is for tuning (docs/learn.md, "Protocol"): each half is cut again by the next bit of
the same number (question id // 2, ...), learn runs on one inner half and is judged on the
other, both ways, and the other outer half is never read. The outer judgement is run once per
committed change of the learner.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import itertools
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "routellm"
TIERS = ROOT / "policies" / "shared" / "tiers.route"
BUDGETS = "5,10,15,20,25,30,40,50"


@dataclass(frozen=True)
class Case:
    name: str
    traffic: str
    outcomes: str
    half: str  # how a request's half is decided
    flags: tuple[str, ...]
    conversation: bool = False


CASES = [
    Case(
        "mt-bench-text",
        "mt-bench.traffic.jsonl",
        "mt-bench.outcomes.jsonl",
        "question",
        ("--group-by", "question", "--exclude", "metadata.category"),
    ),
    Case(
        "mt-bench-category",
        "mt-bench.traffic.jsonl",
        "mt-bench.outcomes.jsonl",
        "question",
        ("--group-by", "question"),
    ),
    Case(
        "mt-bench-text-conversation",
        "mt-bench.traffic.jsonl",
        "mt-bench.outcomes.jsonl",
        "question",
        ("--group-by", "question", "--exclude", "metadata.category", "--conversation"),
        True,
    ),
    Case(
        "mt-bench-category-conversation",
        "mt-bench.traffic.jsonl",
        "mt-bench.outcomes.jsonl",
        "question",
        ("--group-by", "question", "--conversation"),
        True,
    ),
    Case("gsm8k", "gsm8k.traffic.jsonl", "gsm8k.outcomes.jsonl", "row", ()),
    Case(
        "mmlu-new-subjects",
        "mmlu.traffic.jsonl.gz",
        "mmlu.outcomes.csv.gz",
        "subject",
        ("--group-by", "subject"),
    ),
    Case("mmlu-new-questions", "mmlu.traffic.jsonl.gz", "mmlu.outcomes.csv.gz", "row", ()),
]


def _lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
        return [line for line in f if line.strip()]


def _sides(case: Case, lines: list[str]) -> list[tuple[int, int]]:
    """Each line's (outer half, inner half): the outer half by parity of the question id, the
    subject's order or the row within its subject; the inner half by the next bit of the same
    number, so an inner split never mixes the two outer halves."""
    subjects: dict[str, int] = {}
    rows: dict[str, int] = {}
    out = []
    for i, line in enumerate(lines):
        meta = json.loads(line).get("route", {}).get("metadata", {})
        if case.half == "question":
            k = int(meta["question"].rsplit("/", 1)[1])
        elif case.half == "subject":
            k = subjects.setdefault(meta["subject"], len(subjects))
        else:
            key = meta.get("subject", "")
            rows[key] = rows.get(key, -1) + 1
            k = rows[key] if key else i
        out.append((k % 2, (k // 2) % 2))
    return out


def halves(case: Case, folder: Path, within: int | None = None) -> tuple[Path, Path]:
    """The two halves of the data, or with `within`, the two inner halves of that outer half
    (the other outer half is not read)."""
    lines = _lines(DATA / case.traffic)
    out: tuple[list[str], list[str]] = ([], [])
    for line, (outer, inner) in zip(lines, _sides(case, lines), strict=True):
        if within is None:
            out[outer].append(line)
        elif outer == within:
            out[inner].append(line)
    prefix = case.name if within is None else f"{case.name}-in{within}"
    paths = []
    for side in (0, 1):
        p = folder / f"{prefix}-{'even' if side == 0 else 'odd'}.jsonl"
        p.write_text("".join(out[side]), encoding="utf-8")
        paths.append(p)
    return paths[0], paths[1]


def units(case: Case, policy: object, traffic: Path, scores: dict[str, dict[str, float]]):
    """(group, strong?, calls, cheap score sum, strong score sum) per decision on `traffic`."""
    from policyroute.measure.traffic import TrafficItem, read_traffic

    group_by = "question" if case.half == "question" else None
    by: dict[str, list[TrafficItem]] = {}
    for item in read_traffic([str(traffic)], group_by):
        if isinstance(item, TrafficItem) and item.id in scores:
            key = item.group if case.conversation and item.group else item.id
            by.setdefault(key, []).append(item)
    out = []
    for items in by.values():
        first = min(items, key=lambda x: x.request.turns or 0)
        group = first.group or first.id
        if case.conversation:
            strong = policy.decide(first.request).tier == "opus"  # type: ignore[attr-defined]
            out.append(
                (
                    group,
                    strong,
                    len(items),
                    sum(scores[x.id]["haiku"] for x in items),
                    sum(scores[x.id]["opus"] for x in items),
                )
            )
        else:
            for x in items:
                strong = policy.decide(x.request).tier == "opus"  # type: ignore[attr-defined]
                out.append((group, strong, 1, scores[x.id]["haiku"], scores[x.id]["opus"]))
    return out


def point(rows, seed: int = 0, bootstrap: int = 2000):
    import numpy as np

    groups = sorted({r[0] for r in rows})
    index = {g: i for i, g in enumerate(groups)}
    member = np.array([index[r[0]] for r in rows])
    strong = np.array([r[1] for r in rows], dtype=float)
    calls = np.array([r[2] for r in rows], dtype=float)
    cheap = np.array([r[3] for r in rows])
    top = np.array([r[4] for r in rows])
    rng = np.random.default_rng(seed)
    w = np.vstack(
        [
            np.ones(len(groups)),
            rng.multinomial(len(groups), np.full(len(groups), 1 / len(groups)), size=bootstrap),
        ]
    )[:, member]
    n = w @ calls
    share = (w @ (strong * calls)) / n
    c, s = (w @ cheap) / n, (w @ top) / n
    score = (w @ np.where(strong > 0, top, cheap)) / n
    lift = score - (c + share * (s - c))
    lo, hi = np.quantile(lift[1:], [0.025, 0.975])
    return dict(
        share=share[0],
        score=score[0],
        cheap=c[0],
        strong=s[0],
        lift=lift[0],
        lo=lo,
        hi=hi,
        p=float((lift[1:] <= 0).mean()),
    )


def curve(points: list[dict[str, float]]) -> tuple[float, float, float]:
    """APGR of the curve through the points (and the single tiers), the share at which it
    reaches 95% of all-strong, and random routing's share for that."""
    c, s = points[0]["cheap"], points[0]["strong"]
    pts = sorted({(0.0, c), (1.0, s), *((p["share"], p["score"]) for p in points)})
    # The curve is the upper hull a user can reach by mixing neighbouring policies.
    area = sum((x1 - x0) * ((y0 + y1) / 2 - c) for (x0, y0), (x1, y1) in itertools.pairwise(pts))
    apgr = area / (s - c)
    goal = 0.95 * s
    reach = 1.0
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        if y1 >= goal:
            reach = x0 if y0 >= goal else x0 + (goal - y0) / (y1 - y0) * (x1 - x0)
            break
    return apgr, reach, max(0.0, (goal - c) / (s - c))


def judge(case: Case, learn_on: Path, judge_on: Path, label: str, budgets: str, scores) -> float:
    """Learn on `learn_on`, judge every budget's policy on `judge_on`; print; the APGR."""
    from policyroute.cli import main as cli
    from policyroute.policy import load

    out = judge_on.with_name(f"{learn_on.stem}-learned.route")
    argv = [
        "learn",
        str(learn_on),
        "--outcomes",
        str(DATA / case.outcomes),
        "--tiers",
        str(TIERS),
        "--cheap",
        "haiku",
        "--strong",
        "opus",
        "--holdout",
        "0",
        "--budgets",
        budgets,
        *case.flags,
        "-o",
        str(out),
    ]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert cli(argv) == 0, argv
    points = []
    above, below = [], []
    print(f"{case.name} {label}")
    for b in budgets.split(","):
        policy = load(out.with_name(f"{out.stem}-{b}.route"))
        rules = [r.name for r in policy.rules][:-1]
        p = point(units(case, policy, judge_on, scores))
        points.append(p)
        if p["lo"] > 0:
            above.append(b)
        if p["hi"] < 0:
            below.append(b)
        print(
            f"  budget {b:>3}%: share {p['share']:6.1%}  "
            f"{100 * p['score'] / p['strong']:5.1f}% of strong  lift "
            f"{p['lift']:+.3f} [{p['lo']:+.3f}, {p['hi']:+.3f}] p={p['p']:.3f}  "
            f"rules {len(rules)}"
        )
    apgr, reach, rnd = curve(points)
    print(
        f"  APGR {apgr:.3f} (random 0.500); 95% of strong at {reach:.1%} "
        f"(random {rnd:.1%}); all-cheap {100 * points[0]['cheap'] / points[0]['strong']:.1f}%"
    )
    print(
        f"  significantly above random at {', '.join(above) or 'no budget'}; "
        f"below at {', '.join(below) or 'no budget'}"
    )
    return apgr


def main() -> None:
    from policyroute.measure.outcomes import read_outcomes

    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="")
    parser.add_argument("--budgets", default=BUDGETS)
    parser.add_argument(
        "--inner",
        action="store_true",
        help="tune: split each outer half in two by the next bit, learn on one inner half and "
        "judge on the other, both ways; the other outer half is never read",
    )
    args = parser.parse_args()
    wanted = {w for w in args.only.split(",") if w}
    from policyroute.learn.tiers import read_tiers

    tiers = read_tiers(TIERS).tiers
    for case in CASES:
        if wanted and case.name not in wanted:
            continue
        outcomes = read_outcomes([str(DATA / case.outcomes)], tiers)
        scores = {k: {t: o.score for t, o in v.items()} for k, v in outcomes.by_id.items()}
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            found = []
            for within in (0, 1) if args.inner else (None,):
                even, odd = halves(case, folder, within)
                tag = "" if within is None else f"inner {'even' if within == 0 else 'odd'}: "
                for a, b, label in ((even, odd, "even->odd"), (odd, even, "odd->even")):
                    found.append(judge(case, a, b, tag + label, args.budgets, scores))
            print(f"{case.name}: mean APGR {sum(found) / len(found):.3f} over {len(found)}")


if __name__ == "__main__":
    main()
