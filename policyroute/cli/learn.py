"""`policyroute learn`: a readable `.route` policy learned from outcomes, checked on held-out data.

Exit codes: 0 written (a single-tier policy too, when no condition holds up: that is a
result, said in its header and on stderr); 1 no usable outcomes, an unreadable file, or a
learned text that failed its own checks; 2 usage errors (flags, missing files, unknown tiers).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from .common import EXIT_FAIL, EXIT_OK, UsageError

SHOWN_PROBLEMS = 10


def _percentage(text: str, example: int) -> float:
    raw = text.strip().removesuffix("%").strip()
    try:
        return float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a percentage such as {example} or {example}%, got {text!r}"
        ) from None


def percent(text: str) -> float:
    """`25` and `25%` both mean a quarter."""
    value = _percentage(text, 25)
    if not 0.0 < value <= 100.0:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 100, got {text!r}")
    return value / 100.0


def holdout_percent(text: str) -> float:
    value = _percentage(text, 30)
    if not 0.0 <= value < 100.0:
        raise argparse.ArgumentTypeError(f"must be at least 0 and less than 100, got {text!r}")
    return value / 100.0


def percent_list(text: str) -> list[float]:
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("expected budgets such as 10,20,30,40")
    values = [percent(p) for p in parts]
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"a budget is listed twice in {text!r}")
    return sorted(values)


def _whole(low: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {low} or more, got {value}")
        return value

    return parse


def _budget_path(out: Path, budget: float) -> Path:
    tag = f"{100 * budget:g}".replace(".", "_")
    return out.with_name(f"{out.stem}-{tag}{out.suffix or '.route'}")


def _command(args: argparse.Namespace, budget: float, target: Path) -> str:
    """The command that learns this one file, for its header."""
    words = ["policyroute", "learn", *args.traffic, "--outcomes", *args.outcomes]
    words += ["--tiers", args.tiers, "--cheap", args.cheap, "--strong", args.strong]
    words += ["--budget", f"{100 * budget:g}%", "--holdout", f"{100 * args.holdout:g}%"]
    if args.group_by:
        words += ["--group-by", args.group_by]
    for attr in sorted(set(args.exclude)):
        words += ["--exclude", attr]
    if args.conversation:
        words.append("--conversation")
    if args.cross_fit:
        words.append("--cross-fit")
    if args.max_rules != 12:
        words += ["--max-rules", str(args.max_rules)]
    words += ["--seed", str(args.seed), "-o", str(target)]
    if args.write_heldout:
        words += ["--write-heldout", args.write_heldout]
    return " ".join(shlex.quote(w) for w in words)


def _excluded(values: list[str]) -> frozenset[str]:
    from ..request.attributes import lookup

    out = set()
    for value in values:
        for attr in (v.strip() for v in value.split(",")):
            if not attr:
                continue
            if lookup(attr) is None:
                raise UsageError(
                    f"--exclude {attr}: not an attribute a condition can read (prompt, text, "
                    "length, turns, files, task, domain, user.tier, metadata.KEY, ...)"
                )
            out.add(attr)
    return frozenset(out)


def cmd_learn(args: argparse.Namespace) -> int:
    from ..measure.outcomes import OutcomesFileError
    from ..measure.traffic import TrafficFileError

    try:
        import numpy  # noqa: F401
    except ImportError:
        print("policyroute learn: needs numpy: pip install 'policyroute[learn]'", file=sys.stderr)
        return EXIT_FAIL
    from ..learn.data import load_examples
    from ..learn.emit import EmitError
    from ..learn.learner import LearnError, Settings
    from ..learn.run import Target, run
    from ..learn.tiers import read_tiers

    for path in [*args.traffic, *args.outcomes, args.tiers]:
        if not Path(path).is_file():
            raise UsageError(f"{path}: no such file")
    out = Path(args.output)
    if not out.resolve().parent.is_dir():
        raise UsageError(f"{args.output}: no such folder {str(out.parent)!r}")
    exclude = _excluded(args.exclude)
    if args.conversation and not args.group_by:
        raise UsageError("--conversation needs --group-by FIELD: the field naming a conversation")
    if args.cross_fit and args.holdout == 0:
        raise UsageError("--cross-fit needs a held-out part to learn on (--holdout above 0)")
    tiers = read_tiers(Path(args.tiers))
    names = []
    for flag, given in (("--cheap", args.cheap), ("--strong", args.strong)):
        tier = tiers.tier(given)
        if tier is None:
            known = ", ".join(f"{t.name} ({t.model})" for t in tiers.tiers)
            raise UsageError(
                f"{flag} {given}: {args.tiers} declares no such tier or model; it declares {known}"
            )
        names.append(tier.name)
    cheap, strong = names
    if cheap == strong:
        raise UsageError("--cheap and --strong name the same tier")
    order = [t.name for t in tiers.tiers]
    if order.index(cheap) > order.index(strong):
        raise UsageError(f"--cheap {cheap} stands above --strong {strong} in {args.tiers}'s ladder")

    try:
        loaded = load_examples(
            args.traffic, args.outcomes, tiers.tiers, cheap, strong, args.group_by
        )
    except (TrafficFileError, OutcomesFileError) as e:
        print(f"policyroute learn: {e}", file=sys.stderr)
        return EXIT_FAIL
    if loaded.problems:
        for problem in loaded.problems[:SHOWN_PROBLEMS]:
            print(f"policyroute learn: {problem}", file=sys.stderr)
        more = len(loaded.problems) - SHOWN_PROBLEMS
        if more > 0:
            print(f"policyroute learn: ... and {more} more problem(s)", file=sys.stderr)
    if loaded.no_outcome:
        print(
            f"policyroute learn: {loaded.no_outcome} of {loaded.requests} requests lack an "
            f"outcome on {cheap} or {strong} and are left out",
            file=sys.stderr,
        )

    budgets = args.budgets or [args.budget]
    targets = []
    for budget in budgets:
        target = _budget_path(out, budget) if args.budgets else out
        targets.append(Target(budget, target, _command(args, budget, target)))
    settings = Settings(
        cheap=cheap,
        strong=strong,
        budget=budgets[-1],
        holdout=args.holdout,
        group_by=args.group_by,
        max_rules=args.max_rules,
        seed=args.seed,
        exclude=exclude,
        conversation=args.conversation,
        cross_fit=args.cross_fit,
    )
    try:
        results = run(
            loaded,
            tiers,
            settings,
            targets,
            traffic=args.traffic,
            outcomes=args.outcomes,
            heldout_out=Path(args.write_heldout) if args.write_heldout else None,
        )
    except LearnError as e:
        print(f"policyroute learn: {e}", file=sys.stderr)
        return EXIT_FAIL
    except EmitError as e:
        print(
            "policyroute learn: the learned policy failed its own checks (a bug; please "
            f"report it with the command line):\n{e}",
            file=sys.stderr,
        )
        return EXIT_FAIL
    from ..learn.curve import Point

    points = []
    seen: dict[tuple[str, ...], float] = {}
    for t, result in zip(targets, results, strict=True):
        t.out.write_text(result.text, encoding="utf-8")
        same = seen.setdefault(tuple(r.condition for r in result.rules), t.budget)
        print(
            f"{t.out}: {len(result.rules)} rule(s); {strong} share on training "
            f"{result.train_strong_share:.1%} (budget {t.budget:.0%})"
            + (f"; the same rules as at {same:.0%}" if same != t.budget else "")
        )
        if result.reason:
            print(f"policyroute learn: budget {t.budget:.0%}: {result.reason}", file=sys.stderr)
        if result.heldout is not None:
            for line in result.heldout.figures():
                print("  " + line)
        elif result.curve is not None:
            print("  " + result.curve.point_line(strong))
        if result.curve is not None:
            for line in result.curve.lines():
                print("  " + line)
        if result.cross is not None:
            print("  cross-fitted (learned on the held-out part, judged on the training part):")
            for line in [result.cross.point_line(strong), *result.cross.lines()]:
                print("    " + line)
        points.append(
            Point(
                t.budget, t.out.name, len(result.rules), result.train_strong_share, result.heldout
            )
        )
    if results and results[0].notes:
        for note in results[0].notes:
            print(f"  note: {note}")
    if args.budgets:
        from ..learn.curve import to_csv, to_html

        stem = out.with_name(f"{out.stem}-curve")
        csv_path, html_path = stem.with_suffix(".csv"), stem.with_suffix(".html")
        csv_path.write_text(to_csv(points), encoding="utf-8")
        html_path.write_text(
            to_html(points, cheap, strong, f"{out.stem}: held-out quality against {strong} share"),
            encoding="utf-8",
        )
        distinct = len(seen)
        print(f"{csv_path}, {html_path}: the curve of {len(points)} policies ({distinct} distinct)")
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser(
        "learn",
        help="learn a readable .route policy from outcomes, checked on held-out data",
        description="Learn a two-tier policy (phrases of every turn, length, turns, vetted "
        "regexes, request attributes and metadata, and conjunctions of two or three) from "
        "outcomes, keeping only conditions that beat random routing out of fold; write it "
        "with its held-out report.",
    )
    p.add_argument("traffic", nargs="+", metavar="TRAFFIC", help="JSON lines files (.gz too)")
    p.add_argument(
        "--outcomes",
        action="extend",
        nargs="+",
        required=True,
        metavar="FILE",
        help="OUTCOMES: JSON lines or CSV of scores per request and tier",
    )
    p.add_argument(
        "--tiers", required=True, metavar="TIERS.route", help="the tiers to route between"
    )
    p.add_argument("--cheap", required=True, metavar="TIER", help="tier name or model id")
    p.add_argument("--strong", required=True, metavar="TIER", help="tier name or model id")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--budget",
        type=percent,
        metavar="PCT",
        help="most share of requests sent strong (25 or 25%%)",
    )
    which.add_argument(
        "--budgets",
        type=percent_list,
        metavar="LIST",
        help="one policy per budget (e.g. 10,20,30,40), and the curve as CSV and HTML",
    )
    p.add_argument(
        "--holdout",
        type=holdout_percent,
        default=0.3,
        metavar="PCT",
        help="share held out, by group (30)",
    )
    p.add_argument(
        "--group-by",
        dest="group_by",
        metavar="FIELD",
        help="requests sharing this field stay on one side of the split (a question's turns)",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="ATTR",
        help="never use this attribute as a condition (repeat or comma-separate: "
        "--exclude metadata.category learns from the text only)",
    )
    p.add_argument(
        "--conversation",
        action="store_true",
        help="decide each conversation (--group-by) on its first turn and send all its turns "
        "to that tier, as RouteLLM evaluates MT-Bench",
    )
    p.add_argument(
        "--cross-fit",
        dest="cross_fit",
        action="store_true",
        help="also learn on the held-out part and judge on the training part (both directions)",
    )
    p.add_argument(
        "--max-rules", dest="max_rules", type=_whole(1), default=12, metavar="N", help="(12)"
    )
    p.add_argument(
        "--seed", type=_whole(0), default=0, metavar="N", help="split and resampling seed (0)"
    )
    p.add_argument("-o", "--output", required=True, metavar="LEARNED.route")
    p.add_argument(
        "--write-heldout",
        dest="write_heldout",
        metavar="FILE",
        help="also write the held-out requests' TRAFFIC lines here, to replay them yourself",
    )
    p.set_defaults(func=cmd_learn)
