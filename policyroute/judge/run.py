"""One `policyroute judge` run: pairs in, estimated cost, judgements (cached, online or by
batch), outcome lines out."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..decision import Tier
from .batch import BATCH_DISCOUNT, BatchJudge, BatchReport
from .cache import JudgeCache
from .deterministic import ReferenceJudge, SchemaJudge
from .online import FailedJudgement, judge_online
from .plan import (
    JUDGE_MAX_TOKENS,
    LLM_MODES,
    TYPICAL_JUDGE_OUTPUT,
    JudgeRequest,
    Mode,
    PairFailed,
    PairPlan,
    outcome_line,
    plan_pair,
    scores,
)
from .read import PairsRead


@dataclass(slots=True)
class Options:
    mode: Mode
    judge: Tier | None  # None for the deterministic modes
    rubric: str
    batch: bool = False
    schema: dict[str, Any] | None = None
    by: str = "tier"
    concurrency: int = 4


@dataclass(slots=True)
class Estimate:
    requests: int  # judge requests to send (not in the cache)
    cached: int
    usd: float  # with typical judge answers
    usd_max: float  # every judge answer at its max_tokens


@dataclass(slots=True)
class Summary:
    pairs: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file:line, why)
    failed: list[tuple[str, str]] = field(default_factory=list)
    written: int = 0
    judged_pairs: int = 0
    judge_calls: int = 0  # judgements made by this run
    judge_input_tokens: int = 0
    judge_output_tokens: int = 0
    judge_cost_usd: float = 0.0
    batch: BatchReport | None = None


def plan(read: PairsRead, options: Options) -> tuple[list[PairPlan], list[tuple[str, str]]]:
    """The judge requests of every pair that can be judged, and why the others cannot."""
    plans: list[PairPlan] = []
    skipped: list[tuple[str, str]] = []
    for pair, where in read.pairs:
        if options.mode in LLM_MODES and not pair.has_text():
            skipped.append(
                (where, "no prompt or answers (written without log_prompts): cannot be judged")
            )
            continue
        if options.mode in ("schema", "reference") and (
            pair.routed.text is None or pair.shadow.text is None
        ):
            skipped.append((where, "no answers (written without log_prompts): cannot be judged"))
            continue
        if options.mode == "reference" and pair.reference is None:
            skipped.append((where, "no 'reference' answer in the pair"))
            continue
        plans.append(plan_pair(pair, where, options.mode, options.judge, options.rubric))
    return plans, skipped


def unique_requests(plans: Iterable[PairPlan]) -> list[JudgeRequest]:
    seen: dict[str, JudgeRequest] = {}
    for p in plans:
        for r in p.requests:
            seen.setdefault(r.key, r)
    return list(seen.values())


def estimate(requests: list[JudgeRequest], cache: JudgeCache, options: Options) -> Estimate:
    todo = [r for r in requests if cache.get(r.key) is None]
    if options.judge is None:
        return Estimate(0, len(requests) - len(todo), 0.0, 0.0)
    discount = BATCH_DISCOUNT if options.batch else 1.0
    tokens_in = sum(r.input_tokens_estimate() for r in todo)
    typical = options.judge.cost(tokens_in, TYPICAL_JUDGE_OUTPUT * len(todo)) * discount
    most = options.judge.cost(tokens_in, JUDGE_MAX_TOKENS * len(todo)) * discount
    return Estimate(len(todo), len(requests) - len(todo), typical, most)


def execute(
    requests: list[JudgeRequest],
    cache: JudgeCache,
    options: Options,
    client: Any,
    state_path: Path,
    *,
    poll_interval: float = 10.0,
    max_wait: float | None = None,
    progress: Callable[[], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[list[FailedJudgement], BatchReport | None]:
    """Send every request the cache cannot answer; failures are returned, never raised."""
    todo = [r for r in requests if cache.get(r.key) is None]
    assert options.judge is not None
    if options.batch:
        kwargs: dict[str, Any] = {"poll_interval": poll_interval, "max_wait": max_wait}
        if log is not None:
            kwargs["log"] = log
        judge = BatchJudge(client, cache, options.judge, state_path, **kwargs)
        report = judge.run(todo)
        failures = [FailedJudgement(k, f"batch item errored: {why}") for k, why in report.errored]
        failures += [FailedJudgement(k, "batch item expired before it ran") for k in report.expired]
        return failures, report
    if not todo:
        return [], None
    return judge_online(client, todo, cache, options.judge, options.concurrency, progress), None


def write_outcomes(
    plans: list[PairPlan],
    cache: JudgeCache,
    options: Options,
    out: Path,
    summary: Summary,
    fresh: set[str],
    failures: Iterable[FailedJudgement] = (),
) -> None:
    """Write the outcome lines of every judged pair (atomically: a reader never sees half)."""
    why_failed = {f.key: f.why for f in failures}
    checker: SchemaJudge | ReferenceJudge | None = None
    if options.mode == "schema":
        assert options.schema is not None
        checker = SchemaJudge(options.schema)
    elif options.mode == "reference":
        checker = ReferenceJudge()
    tmp = out.with_name(out.name + ".tmp")
    # A request shadowed to two tiers makes two pairs with the same routed answer: its outcome
    # is written once, as replay takes one outcome per request and tier.
    written: set[tuple[str, str]] = set()
    with tmp.open("w", encoding="utf-8") as f:
        for p in plans:
            answers = {r.key: v for r in p.requests if (v := cache.get(r.key)) is not None}
            try:
                routed, shadow = scores(p, options.mode, answers, checker)
            except PairFailed as e:
                missing = [why_failed[r.key] for r in p.requests if r.key in why_failed]
                summary.failed.append((p.where, missing[0] if missing else str(e)))
                continue
            used = [answers[r.key] for r in p.requests]
            judge = {
                "mode": options.mode,
                "model": options.judge.model if options.judge is not None else None,
                "input_tokens": sum(int(u.get("input_tokens", 0)) for u in used),
                "output_tokens": sum(int(u.get("output_tokens", 0)) for u in used),
                "cost_usd": round(sum(float(u.get("cost_usd", 0.0)) for u in used), 8),
                "cached": all(r.key not in fresh for r in p.requests) and bool(p.requests),
            }
            for answer, score in ((p.pair.routed, routed), (p.pair.shadow, shadow)):
                if (p.pair.id, answer.tier) in written:
                    continue
                written.add((p.pair.id, answer.tier))
                line = outcome_line(p.pair, answer, score, judge, options.by)
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
                summary.written += 1
            summary.judged_pairs += 1
    os.replace(tmp, out)
    for p in plans:
        for r in p.requests:
            if r.key in fresh and (v := cache.get(r.key)) is not None:
                summary.judge_calls += 1
                summary.judge_input_tokens += int(v.get("input_tokens", 0))
                summary.judge_output_tokens += int(v.get("output_tokens", 0))
                summary.judge_cost_usd += float(v.get("cost_usd", 0.0))
                fresh.discard(r.key)  # a request shared by two pairs counts once
