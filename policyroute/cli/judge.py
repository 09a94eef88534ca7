"""`policyroute judge`: shadow pairs -> OUTCOMES lines that `policyroute replay --outcomes` reads.

An LLM judge (single 1-10 grading under a rubric, or pairwise preference asked in both
orders) through the Anthropic SDK, one request at a time or by Message Batches; or a
deterministic judge (JSON schema, reference answer). The estimated cost is printed first and
a run above `--confirm-above` needs `--yes`; every judgement is cached by content hash.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import jsonsafe
from .common import EXIT_FAIL, EXIT_OK, UsageError

if TYPE_CHECKING:
    from ..decision import Tier
    from ..judge.run import Estimate, Options, Summary

# The Claude tiers as policies/shared/tiers.route declares them: the judge tier's model and
# prices when no --policy is given.
STANDARD_TIERS = """
tier haiku  = "claude-haiku-4-5"  { input 1.00  output 5.00 }
tier sonnet = "claude-sonnet-4-6" { input 3.00  output 15.00 }
tier opus   = "claude-opus-4-7"   { input 5.00  output 25.00 }
default -> haiku
"""


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "judge",
        help="judge shadow pairs into OUTCOMES for replay",
        description="Judge the answers of shadow pairs (written by the runtime's `shadow` "
        "statement) and write OUTCOMES lines that `policyroute replay --outcomes` reads. "
        "Calls the Anthropic API (ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL) for the LLM modes.",
    )
    p.add_argument("pairs", nargs="+", metavar="PAIRS", help="pairs files (JSON lines, .gz too)")
    p.add_argument(
        "-o", "--output", required=True, metavar="OUTCOMES", help="OUTCOMES file to write"
    )
    p.add_argument(
        "--mode",
        choices=("single", "pairwise", "schema", "reference"),
        default="single",
        help="single: grade each answer 1-10 (default); pairwise: which answer is better, asked "
        "in both orders; schema: the answer validates against --schema; reference: the answer "
        "equals the pair's 'reference'",
    )
    p.add_argument(
        "--judge-tier", dest="judge_tier", metavar="TIER", help="tier (or model id) that judges"
    )
    p.add_argument(
        "--policy",
        metavar="POLICY",
        help="resolve --judge-tier against this policy's tiers (default: haiku, sonnet, opus at "
        "their list prices)",
    )
    p.add_argument("--rubric", metavar="FILE", help="the rubric, replacing the default one")
    p.add_argument("--schema", metavar="FILE", help="JSON schema for --mode schema")
    p.add_argument("--batch", action="store_true", help="use the Message Batches API (half price)")
    p.add_argument("--yes", action="store_true", help="go ahead above --confirm-above")
    p.add_argument(
        "--confirm-above",
        dest="confirm_above",
        type=float,
        default=1.0,
        metavar="USD",
        help="estimated cost above which --yes is needed (default 1.00)",
    )
    p.add_argument("--dry-run", dest="dry_run", action="store_true", help="print the estimate only")
    p.add_argument(
        "--cache", metavar="FILE", help="judgement cache (default: the user's cache folder)"
    )
    p.add_argument("--concurrency", type=int, default=4, help="judge calls at once (default 4)")
    p.add_argument(
        "--poll-interval",
        dest="poll_interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="first wait between batch polls; it grows 1.5x up to 5 minutes (default 10)",
    )
    p.add_argument(
        "--max-wait",
        dest="max_wait",
        type=float,
        metavar="SECONDS",
        help="stop polling after this long; the same command resumes the batch later",
    )
    p.add_argument(
        "--by",
        choices=("tier", "model"),
        default="tier",
        help="name answers by tier name (default) or model id in the outcomes",
    )
    p.add_argument("--traffic", metavar="FILE", help="also write the judged requests as TRAFFIC")
    p.add_argument("--strict", action="store_true", help="stop on the first unreadable pair line")
    p.set_defaults(func=run)


def _judge_tier(args: argparse.Namespace) -> Tier | None:
    if args.mode in ("schema", "reference"):
        if args.judge_tier is not None or args.batch:
            raise UsageError(
                f"--mode {args.mode} judges without a model: drop --judge-tier/--batch"
            )
        return None
    if args.judge_tier is None:
        raise UsageError(f"--mode {args.mode} needs --judge-tier TIER")
    from ..policy import loads
    from .common import load_policy

    policy = load_policy(args.policy) if args.policy else loads(STANDARD_TIERS, "<standard tiers>")
    for tier in policy.tiers:
        if args.judge_tier in (tier.name, tier.model):
            return tier
    names = ", ".join(t.name for t in policy.tiers)
    raise UsageError(f"--judge-tier {args.judge_tier!r} is not a tier here (tiers: {names})")


def _read_file(path: str, what: str) -> str:
    try:
        return Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(
            f"{what} {path}: cannot read: {getattr(e, 'strerror', None) or e}"
        ) from None


def _options(args: argparse.Namespace) -> Options:
    from ..judge.prompts import DEFAULT_RUBRIC
    from ..judge.run import Options

    tier = _judge_tier(args)
    rubric = DEFAULT_RUBRIC
    if args.rubric:
        if args.mode not in ("single", "pairwise"):
            raise UsageError("--rubric is for the single and pairwise modes")
        rubric = _read_file(args.rubric, "--rubric").strip()
        if not rubric:
            raise UsageError(f"--rubric {args.rubric}: the file is empty")
    schema = None
    if args.mode == "schema":
        if not args.schema:
            raise UsageError("--mode schema needs --schema FILE")
        schema = _schema(args.schema)
    elif args.schema:
        raise UsageError("--schema is for --mode schema")
    if args.concurrency < 1:
        raise UsageError("--concurrency must be 1 or more")
    return Options(args.mode, tier, rubric, args.batch, schema, args.by, args.concurrency)


def _schema(path: str) -> dict[str, Any]:
    import jsonschema

    text = _read_file(path, "--schema")
    try:
        schema = jsonsafe.loads(text, where=f"--schema {path}")
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonsafe.JSONError as e:
        raise UsageError(str(e)) from None
    except (jsonschema.SchemaError, TypeError, AttributeError) as e:
        raise UsageError(f"--schema {path}: not a JSON schema: {str(e).splitlines()[0]}") from None
    if not isinstance(schema, dict):
        raise UsageError(f"--schema {path}: a schema is a JSON object")
    return schema


def usd(amount: float) -> str:
    """Dollars with the digits the amount needs: $0.25, $0.001 (not $0.00), $12.50."""
    if amount == round(amount, 2):
        return f"${amount:,.2f}"
    return "$" + f"{amount:,.8f}".rstrip("0")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _print_estimate(est: Estimate, options: Options, pairs: int) -> None:
    if options.judge is None:
        _say(f"judge: {pairs} pair(s), {options.mode} check, no API calls")
        return
    how = "Message Batches (half price)" if options.batch else "messages.create"
    _say(
        f"judge: {pairs} pair(s), {est.requests} judge request(s) to send, {est.cached} from the "
        f"cache; {options.judge.name} ({options.judge.model}) via {how}"
    )
    _say(f"estimated cost: ${est.usd:.6f} (at most ${est.usd_max:.6f} if every verdict is long)")


def _print_summary(summary: Summary, out: str) -> None:
    for where, why in summary.skipped:
        _say(f"{where}: skipped: {why}")
    for where, why in summary.failed:
        _say(f"{where}: not judged: {why}")
    b = summary.batch
    if b is not None:
        for batch_id in b.pending:
            _say(f"batch {batch_id} is still running: run the same command again to collect it")
        if b.errored or b.expired:
            _say(
                f"batch items: {len(b.errored)} errored, {len(b.expired)} expired (resubmitted by the next run)"
            )
    _say(
        f"{summary.judged_pairs} of {summary.pairs} pair(s) judged, {summary.written} outcome(s) "
        f"written to {out}; judge usage this run: {summary.judge_calls} call(s), "
        f"{summary.judge_input_tokens} input + {summary.judge_output_tokens} output tokens, "
        f"${summary.judge_cost_usd:.4f}"
    )


def run(args: argparse.Namespace) -> int:
    from ..judge.cache import JudgeCache, default_cache_path
    from ..judge.read import PairsFileError, read_pairs
    from ..judge.run import Summary, estimate, plan, unique_requests, write_outcomes

    options = _options(args)
    for path in args.pairs:
        if not Path(path).is_file():
            raise UsageError(f"{path}: no such file")
    try:
        read = read_pairs(args.pairs)
    except PairsFileError as e:
        _say(f"policyroute judge: {e}")
        return EXIT_FAIL
    for problem in read.problems:
        _say(f"{problem}: skipped")
    if read.problems and args.strict:
        return EXIT_FAIL
    plans, skipped = plan(read, options)
    summary = Summary(pairs=len(read.pairs), skipped=skipped)
    cache = JudgeCache(args.cache or default_cache_path())
    try:
        requests = unique_requests(plans)
        est = estimate(requests, cache, options)
        _print_estimate(est, options, len(plans))
        if args.dry_run:
            return EXIT_OK
        if est.usd > args.confirm_above and not args.yes:
            _say(
                f"the estimate is above {usd(args.confirm_above)}: rerun with --yes to go ahead "
                "(or --confirm-above USD)"
            )
            return EXIT_FAIL
        before = {r.key for r in requests if cache.get(r.key) is None}
        failures: list[Any] = []
        if before:
            called = _call(args, options, requests, cache, summary)
            if called is None:
                return EXIT_FAIL
            failures = called
        fresh = {k for k in before if cache.get(k) is not None}
        out = Path(args.output)
        write_outcomes(plans, cache, options, out, summary, fresh, failures)
        if args.traffic:
            _write_traffic(Path(args.traffic), plans)
    finally:
        cache.close()
    _print_summary(summary, args.output)
    pending = summary.batch is not None and bool(summary.batch.pending)
    if not summary.judged_pairs and not pending:
        # Every pair skipped (no reference, no answers) is a run that measured nothing.
        _say("policyroute judge: no pair was judged")
        return EXIT_FAIL
    return EXIT_FAIL if summary.failed or pending or read.problems else EXIT_OK


def _call(
    args: argparse.Namespace, options: Options, requests: list[Any], cache: Any, summary: Summary
) -> list[Any] | None:
    import anthropic

    from ..judge.batch import BatchError
    from ..judge.run import execute

    try:
        client = anthropic.Anthropic()
    except anthropic.AnthropicError as e:
        raise UsageError(f"cannot create the Anthropic client: {e}") from None
    state = Path(args.output).with_name(Path(args.output).name + ".batch.json")
    try:
        failures, report = execute(
            requests,
            cache,
            options,
            client,
            state,
            poll_interval=args.poll_interval,
            max_wait=args.max_wait,
            log=_say,
        )
    except BatchError as e:
        _say(f"policyroute judge: {e} (batch ids kept in {state}; run again to resume)")
        return None
    finally:
        client.close()
    summary.batch = report
    return failures


def _write_traffic(path: Path, plans: list[Any]) -> None:
    seen: set[str] = set()
    with path.open("w", encoding="utf-8") as f:
        for p in plans:
            if p.pair.request is not None and p.pair.id not in seen:
                seen.add(p.pair.id)
                f.write(json.dumps({**p.pair.request, "id": p.pair.id}, ensure_ascii=False) + "\n")
