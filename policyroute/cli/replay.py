"""`policyroute replay` and `policyroute diff OLD NEW --traffic`: measure a policy on real
traffic, and with outcomes, on real quality.

Exit codes: 0 ok (lines that could not be replayed are reported, not fatal), 1 a policy with
errors, an unreadable file, nothing replayed, or with --strict the first bad line; 2 usage
errors. `diff --traffic` exits 1 when requests change tier, as `diff` does for regions.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from .common import EXIT_FAIL, EXIT_OK, UsageError, load_policy

SHOWN_PROBLEMS = 20


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


class _Bar:
    """A progress line on stderr, only when stderr is a terminal; redrawn at most 5 times a second."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.on = stream.isatty()
        self.last = 0.0
        self.drawn = False

    def __call__(self, lines: int, done: int, total: int) -> None:
        if not self.on:
            return
        now = time.monotonic()
        if now - self.last < 0.2:
            return
        self.last = now
        if total:
            frac = min(done / total, 1.0)
            filled = int(frac * 30)
            bar = "#" * filled + "." * (30 - filled)
            text = f"\rreplay [{bar}] {100 * frac:5.1f}%  {lines:,} requests"
        else:
            text = f"\rreplay: {lines:,} requests"
        self.stream.write(text)
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.drawn = False


def _check_files(paths: list[str], what: str) -> None:
    for p in paths:
        if not Path(p).is_file():
            raise UsageError(f"{p}: no such {what} file")


def _read_outcomes(args: argparse.Namespace, tiers: Any) -> Any:
    if not args.outcomes:
        return None
    from ..measure.outcomes import OutcomesFileError, read_outcomes

    _check_files(args.outcomes, "outcomes")
    try:
        outcomes = read_outcomes(args.outcomes, tiers)
    except OutcomesFileError as e:
        raise UsageError(str(e)) from None
    for problem in outcomes.problems[:SHOWN_PROBLEMS]:
        print(f"policyroute {args.command}: {problem}", file=sys.stderr)
    more = len(outcomes.problems) - SHOWN_PROBLEMS
    if more > 0:
        print(
            f"policyroute {args.command}: ... and {more:,} more outcome problems", file=sys.stderr
        )
    if outcomes.problems and args.strict:
        raise _Stop(f"{len(outcomes.problems):,} outcome problem(s) with --strict")
    return outcomes


class _Stop(Exception):
    """A failure already explained on stderr: exit 1."""


def _options(args: argparse.Namespace) -> Any:
    from ..measure.replay import ReplayOptions

    return ReplayOptions(
        group_by=args.group_by,
        output_tokens=args.output_tokens,
        processes=args.jobs,
        strict=args.strict,
    )


def _report_skipped(command: str, examples: list[Any], total: int) -> None:
    for p in examples[:SHOWN_PROBLEMS]:
        print(f"policyroute {command}: {p}", file=sys.stderr)
    if total > len(examples[:SHOWN_PROBLEMS]):
        print(
            f"policyroute {command}: {total:,} line(s) not replayed in all (reasons in the report)",
            file=sys.stderr,
        )


def _measure(args: argparse.Namespace, call: Any) -> Any:
    """Run a replay-like call with the progress bar, turning reader failures into exit codes."""
    from ..measure.replay import StrictStop
    from ..measure.traffic import TrafficFileError

    _check_files(args.traffic, "traffic")
    bar = _Bar(sys.stderr)
    try:
        return call(bar)
    except StrictStop as e:
        bar.close()
        print(f"policyroute {args.command}: {e.problem} (stopped: --strict)", file=sys.stderr)
        raise _Stop from None
    except TrafficFileError as e:
        bar.close()
        print(f"policyroute {args.command}: {e}", file=sys.stderr)
        raise _Stop from None
    finally:
        bar.close()


def _write(args: argparse.Namespace, text: str) -> None:
    if args.output in (None, "-"):
        sys.stdout.write(text)
        return
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as e:
        print(
            f"policyroute {args.command}: {args.output}: cannot write: {e.strerror or e}",
            file=sys.stderr,
        )
        raise _Stop from None
    print(f"wrote {args.output}", file=sys.stderr)


def cmd_replay(args: argparse.Namespace) -> int:
    from ..measure import report_csv, report_html, report_human, report_json
    from ..measure.replay import replay

    policy = load_policy(args.policy)
    try:
        outcomes = _read_outcomes(args, policy.tiers)
        options = _options(args)
        report = _measure(
            args,
            lambda bar: replay(
                policy,
                args.traffic,
                outcomes,
                options,
                bootstrap=args.bootstrap,
                seed=args.seed,
                progress=bar,
            ),
        )
        _report_skipped(args.command, report.skipped_examples, report.skipped_total)
        _check_report(args, report, outcomes)
        renderer = {
            "human": report_human.render,
            "json": report_json.render,
            "csv": report_csv.render,
            "html": report_html.render,
        }[args.format]
        _write(args, renderer(report))
    except _Stop as e:
        if str(e):
            print(f"policyroute {args.command}: {e}", file=sys.stderr)
        return EXIT_FAIL
    if report.replayed == 0:
        print(f"policyroute {args.command}: no request could be replayed", file=sys.stderr)
        return EXIT_FAIL
    if outcomes is not None and len(outcomes) and not report.with_outcomes:
        return EXIT_FAIL  # every outcome missed: the quality section measures nothing
    return EXIT_OK


def _check_report(args: argparse.Namespace, report: Any, outcomes: Any) -> None:
    """What would make the report mislead, said on stderr before it is written; a --group-by
    field that no request has is a usage error (every request would be its own group)."""

    def say(message: str) -> None:
        print(f"policyroute {args.command}: {message}", file=sys.stderr)

    if report.group_by and report.replayed and report.group_missing == report.replayed:
        raise UsageError(
            f"--group-by {report.group_by}: no replayed request has this field (looked in "
            "the line, its route and route.metadata, and a batch line's params.metadata)"
        )
    if report.duplicate_ids:
        say(
            f"{report.duplicate_ids:,} request(s) repeat an earlier request's id, first at "
            f"{report.duplicate_examples[0]}: each is counted"
        )
    if outcomes is None or not len(outcomes) or not report.replayed:
        return
    if not report.with_outcomes:
        say(
            "no outcome's id matches a replayed request's id "
            "(outcomes join on the request's id, custom_id or request_id)"
        )
    elif report.unmatched_outcomes:
        shown = ", ".join(repr(i) for i in report.unmatched_examples[:3])
        say(
            f"{report.unmatched_outcomes:,} outcome id(s) match no replayed request ({shown}"
            f"{', ...' if report.unmatched_outcomes > 3 else ''})"
        )


def impact_requested(args: argparse.Namespace) -> bool:
    """Whether `diff` was given any of the traffic flags (then it measures, or says what is missing)."""
    return bool(
        getattr(args, "traffic", None)
        or getattr(args, "outcomes", None)
        or getattr(args, "group_by", None)
        or getattr(args, "output", None)
        or getattr(args, "strict", False)
        or getattr(args, "output_tokens", None) is not None
        or getattr(args, "jobs", None) is not None
    )


def run_impact(args: argparse.Namespace) -> int:
    """`diff OLD NEW --traffic FILE...`: the change measured on traffic (hooked from cli/diff.py)."""
    if not args.traffic:
        raise UsageError(
            "--outcomes, --group-by, -o and the other measuring flags need --traffic FILE"
        )
    from ..measure import report_human, report_json
    from ..measure.replay import impact

    old = load_policy(args.old)
    new = load_policy(args.new)
    try:
        tiers = list(old.tiers) + [
            t for t in new.tiers if t.name not in {x.name for x in old.tiers}
        ]
        outcomes = _read_outcomes(args, tiers)
        options = _options(args)
        report = _measure(
            args,
            lambda bar: impact(
                old,
                new,
                args.traffic,
                outcomes,
                options,
                bootstrap=args.bootstrap,
                seed=args.seed,
                progress=bar,
            ),
        )
        _report_skipped(args.command, report.new.skipped_examples, report.new.skipped_total)
        _check_report(args, report.new, outcomes)
        _write(args, (report_json.render if args.json else report_human.render_impact)(report))
    except _Stop as e:
        if str(e):
            print(f"policyroute {args.command}: {e}", file=sys.stderr)
        return EXIT_FAIL
    if report.new.replayed == 0:
        print(f"policyroute {args.command}: no request could be replayed", file=sys.stderr)
    return EXIT_FAIL if report.changed or report.new.replayed == 0 else EXIT_OK


def add_measure_flags(p: argparse.ArgumentParser) -> None:
    """Flags shared by `replay` and `diff --traffic`."""
    p.add_argument(
        "--outcomes",
        action="append",
        default=[],
        metavar="FILE",
        help="OUTCOMES: JSON lines or CSV of scores per request and tier (repeatable)",
    )
    p.add_argument(
        "--group-by",
        dest="group_by",
        metavar="FIELD",
        help="resample requests sharing this field together (a conversation, a question's turns)",
    )
    p.add_argument(
        "--bootstrap", type=_positive, default=2000, metavar="N", help="resamples (2000)"
    )
    p.add_argument("--seed", type=_count, default=0, metavar="N", help="bootstrap seed (0)")
    p.add_argument(
        "--output-tokens",
        dest="output_tokens",
        type=_count,
        metavar="N",
        help="output tokens to assume when neither usage nor an answer length is known "
        "(default: the request's max_tokens, an upper bound)",
    )
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable line")
    p.add_argument(
        "--jobs",
        type=_positive,
        metavar="N",
        help="worker processes (default one per core; never more than the cores or the "
        "file's chunks of 500 lines)",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write the report here instead of stdout")


def add_impact_flags(p: argparse.ArgumentParser) -> None:
    """`diff`'s traffic flags: with --traffic, diff measures the change on real requests."""
    p.add_argument(
        "--traffic",
        action="extend",
        nargs="+",
        default=[],
        metavar="FILE",
        help="measure the change on these TRAFFIC files (JSON lines, .gz too)",
    )
    add_measure_flags(p)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "replay",
        help="replay traffic through a policy: tiers, rules, cost, and quality with intervals",
    )
    p.add_argument("policy", metavar="POLICY")
    p.add_argument("traffic", nargs="+", metavar="TRAFFIC", help="JSON lines files (.gz too)")
    p.add_argument(
        "--format", choices=("human", "json", "csv", "html"), default="human", help="(human)"
    )
    add_measure_flags(p)
    p.set_defaults(func=cmd_replay)
