"""Replay: every TRAFFIC line through one policy (or two, for an impact diff), in parallel.

The parent reads raw lines in chunks and hands them to worker processes, at most a few chunks
ahead, so memory stays flat however long the files are; each worker parses, decides, prices
and tallies its chunk and sends back a small `Tally`. Workers are forked, so they share the
compiled policies and the outcomes without pickling them.

`replay()` and `impact()` are pure: (policies, traffic, outcomes, options) in, a report object
out. Formatting is the renderers' job.
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..decision import FAILED_CLASSIFICATION, Classification, ClassifierSpec
from ..policy import Policy
from ..request import Request
from .costing import price
from .outcomes import Outcome, Outcomes
from .reading import Chunk, iter_blocks
from .replay_ids import Ids
from .report import ImpactReport, Report, build
from .spend_sim import SpendSimulation, spend_attributes_of
from .tally import PolicyTally, Tally
from .traffic import Location, RawLine, TrafficItem, Unreplayable, parse_line

Progress = Callable[[int, int, int], None]  # (lines done, bytes done, bytes total or 0)


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    group_by: str | None = None
    output_tokens: int | None = None  # assumed output tokens when nothing better is known
    processes: int | None = None  # None: one per core
    chunk_size: int = 500
    strict: bool = False


class StrictStop(Exception):
    """--strict: the first unreadable line, which stopped the run."""

    def __init__(self, problem: Unreplayable) -> None:
        super().__init__(str(problem))
        self.problem = problem


class _Unasked:
    """Replay never calls an API: a classifier a rule consults answers as a failed one does
    live (no label, confidence 0), and the report counts how often that happened."""

    def __init__(self) -> None:
        self.asked = 0

    def classify(self, spec: ClassifierSpec, request: Request) -> Classification:
        self.asked += 1
        return FAILED_CLASSIFICATION


@dataclass
class _TallySetup:
    """What tallying a chunk reads besides its lines, the same for every chunk of a run: the
    policies and their indexes, the outcomes, and the spend counters. Workers inherit it."""

    policies: Sequence[Policy]
    outcomes: dict[str, dict[str, Outcome]] | None
    universe: tuple[str, ...]  # every tier name of the policies, first policy's order first
    group_by: tuple[str, ...] | None
    output_tokens: int | None

    def __post_init__(self) -> None:
        self.tier_index = [{t.name: i for i, t in enumerate(p.tiers)} for p in self.policies]
        self.rule_index = [{r.name: r.index for r in p.rules} for p in self.policies]
        # Each tier's prices for the simple costing below: Tier.cost's own arithmetic,
        # written out, so every sum is the same to the last bit without a call per tier.
        # Its cache terms are 0 there (no cache tokens) and prices are finite (the checker
        # refuses others), so adding them changes no bit and they are left out.
        self.prices = [
            [(t.input_price / 1_000_000, t.output_price, t.max_tokens or 0) for t in p.tiers]
            for p in self.policies
        ]
        # Spend counters of each policy that reads spend (filled in time order: one process).
        self.spend: list[SpendSimulation | None] = [
            SpendSimulation(p) if spend_attributes_of(p) else None for p in self.policies
        ]


_SETUP: _TallySetup | None = None


def universe_of(policies: Sequence[Policy]) -> tuple[str, ...]:
    names: list[str] = []
    for p in policies:
        names.extend(t.name for t in p.tiers if t.name not in names)
    return tuple(names)


def tally_chunk(
    state: _TallySetup, file: str, start: int, lines: Sequence[RawLine]
) -> tuple[Tally, int]:
    """Parse, decide, price and count one chunk; also how often a classifier went unasked."""
    policies = state.policies
    tally = Tally([PolicyTally.empty(len(p.tiers), len(p.rules)) for p in policies])
    tally.ids_file = file
    unasked = _Unasked()
    outcomes = state.outcomes
    universe = state.universe
    for offset, raw in enumerate(lines):
        item = parse_line(raw, Location(file, start + offset), state.group_by)
        if item is None:
            continue
        tally.lines += 1
        if isinstance(item, Unreplayable):
            tally.skip(item)
            continue
        _tally_item(state, tally, item, outcomes, universe, unasked)
    return tally, unasked.asked


def _tally_item(
    state: _TallySetup,
    tally: Tally,
    item: TrafficItem,
    outcomes: dict[str, dict[str, Outcome]] | None,
    universe: tuple[str, ...],
    unasked: _Unasked,
) -> None:
    tally.replayed += 1
    tally.shapes[item.shape] += 1
    row = outcomes.get(item.id) if outcomes is not None else None
    if item.shape != "request" or item.id != str(item.where.line):  # not a defaulted id
        tally.ids.append((item.where.line, item.id))
        if row is not None:
            tally.matched.append(item.id)
    estimate = item.request.estimated_context_tokens() or 0
    tiers_chosen: list[int] = []
    rules_chosen: list[int] = []
    decisions = []
    rec = item.recorded
    # Without outcomes or records every token count comes from the request alone: price each
    # tier with one multiply-add instead of the full costing (the common, large-file case).
    simple = row is None and rec is None
    if simple:
        isrc = "caller" if item.request.context_tokens is not None else "text"
        cap = item.request.output_tokens
        assumed = state.output_tokens
        osrc = "assumed" if assumed is not None else "max_tokens"
    for pi, policy in enumerate(state.policies):
        sim = state.spend[pi]
        if sim is None:
            decision = policy.decide(item.request, classifier=unasked)
        else:
            owners = sim.owners(item.request.user_id)
            spent = item.request.replace(spend=sim.values(owners, item.time))
            decision = policy.decide(spent, classifier=unasked)
            unspent = policy.decide(item.request.replace(spend={}), classifier=unasked)
            if unspent.tier != decision.tier:
                sim.changed += 1
        decisions.append(decision)
        ti = state.tier_index[pi][decision.tier]
        ri = state.rule_index[pi][decision.rule]
        tiers_chosen.append(ti)
        rules_chosen.append(ri)
        pt = tally.policies[pi]
        if simple:
            out = assumed if assumed is not None else cap  # None: each tier's max_tokens
            costs = [
                estimate * pin + (out if out is not None else most) * op / 1_000_000
                for pin, op, most in state.prices[pi]
            ]
            if pi == 0:
                tally.input_sources[isrc] += len(costs)
                tally.output_sources[osrc] += len(costs)
        else:
            costs = []
            for tier in policy.tiers:
                priced = price(item, tier, row, state.output_tokens, estimate)
                costs.append(priced.cost)
                if pi == 0:
                    tally.input_sources[priced.input_source] += 1
                    tally.output_sources[priced.output_source] += 1
        baseline = pt.baseline_cost
        for j, cost in enumerate(costs):
            baseline[j] += cost
        pt.tier_count[ti] += 1
        pt.tier_cost[ti] += costs[ti]
        pt.rule_count[ri] += 1
        pt.rule_cost[ri] += costs[ti]
        if sim is not None:
            recorded = rec.cost_usd if rec is not None else None
            sim.add(owners, item.time, costs[ti], recorded)
    if len(decisions) == 2 and decisions[0].tier != decisions[1].tier:
        old, new = decisions
        tally.moves[(old.tier, new.tier, old.rule, new.rule)] += 1
    if state.group_by is not None and item.group is None:
        tally.group_missing += 1
    if row is not None:
        group = item.group if item.group is not None else "\0" + item.id
        scores = tuple(row[t].score if t in row else None for t in universe)
        tally.rows.append((group, tuple(tiers_chosen), tuple(rules_chosen), scores))
    if rec is not None:
        tally.served.add(
            rec.attempts, rec.triggers, rec.outcome, rec.final_tier or rec.tier, rec.latency_ms
        )
        first = decisions[0]
        tally.served.compare(
            item.id, (rec.decided_tier or rec.tier, rec.rule), (first.tier, first.rule)
        )


def _work(chunk: Chunk) -> tuple[Tally, int]:
    # A chunk travels as one bytes object of its lines, as the parent read them (one
    # allocation and one pickle, not one per line); the lines are split out here.
    assert _SETUP is not None
    return tally_chunk(_SETUP, chunk.file, chunk.start, chunk.lines())


def _total_bytes(paths: Sequence[str | Path]) -> int:
    total = 0
    for p in paths:
        if str(p).endswith(".gz"):
            return 0  # the decompressed size is not known up front
        try:
            total += os.path.getsize(p)
        except OSError:
            return 0
    return total


def run(
    policies: Sequence[Policy],
    traffic: Sequence[str | Path],
    outcomes: Outcomes | None,
    options: ReplayOptions = ReplayOptions(),
    progress: Progress | None = None,
    spend: list[SpendSimulation | None] | None = None,
) -> tuple[Tally, int]:
    """The merged tally of every line, and how many times a classifier went unasked;
    `spend` receives each policy's spend simulation (None: it reads no spend)."""
    with Ids() as ids:  # its spill files go, whatever happens
        return _run(policies, traffic, outcomes, options, progress, spend, ids)


def _run(
    policies: Sequence[Policy],
    traffic: Sequence[str | Path],
    outcomes: Outcomes | None,
    options: ReplayOptions,
    progress: Progress | None,
    spend: list[SpendSimulation | None] | None,
    ids: Ids,
) -> tuple[Tally, int]:
    global _SETUP
    state = _TallySetup(
        policies,
        outcomes.by_id if outcomes is not None else None,
        universe_of(policies),
        tuple(options.group_by.split(".")) if options.group_by else None,
        options.output_tokens,
    )
    if spend is not None:
        spend[:] = state.spend
    total = Tally([PolicyTally.empty(len(p.tiers), len(p.rules)) for p in policies])
    unasked = 0
    done_bytes = 0
    total_bytes = _total_bytes(traffic) if progress else 0
    chunks = iter_blocks(traffic, options.chunk_size)

    def absorb(part: Tally, asked: int, size: int) -> None:
        nonlocal unasked, done_bytes
        ids.absorb(part)  # chunks come back in file order: "earlier" is earlier in the file
        total.merge(part)
        unasked += asked
        done_bytes += size
        if options.strict and part.skipped_kind["unreadable"]:
            first = next(p for p in part.examples if p.kind == "unreadable")
            raise StrictStop(first)
        if progress is not None:
            progress(total.lines, done_bytes, total_bytes)

    # More workers than cores only contend, and more than chunks only cost their fork: read
    # up to one chunk per worker ahead to know how many the file has.
    cores = os.cpu_count() or 1
    processes = min(options.processes or cores, cores)
    head = list(itertools.islice(chunks, processes))
    processes = min(processes, len(head))
    chunks = itertools.chain(head, chunks)
    if any(state.spend):
        processes = 1  # spend counters are filled line after line, in the traffic's order
    if processes <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for chunk in chunks:
            part, asked = tally_chunk(state, chunk.file, chunk.start, chunk.lines())
            absorb(part, asked, len(chunk.blob))
        ids.finish(total, outcomes.by_id if outcomes is not None else None)
        return total, unasked

    _SETUP = state
    # Forked workers share the parent's objects page by page until one is written; the
    # collector's passes over them write every object header it visits, so each worker
    # would copy the compiled policies, the parser and the rest and scan them again on
    # every full collection. Frozen, they are out of the collector's sight.
    gc.freeze()
    try:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(processes) as pool:
            pending: deque[tuple[Any, int]] = deque()
            try:
                for chunk in chunks:
                    pending.append((pool.apply_async(_work, (chunk,)), len(chunk.blob)))
                    del chunk
                    # A few chunks in flight per worker keeps every core busy without reading
                    # the whole file ahead into memory.
                    while len(pending) >= 3 * processes:
                        result, size = pending.popleft()
                        part, asked = result.get()
                        absorb(part, asked, size)
                while pending:
                    result, size = pending.popleft()
                    part, asked = result.get()
                    absorb(part, asked, size)
            except BaseException:
                pool.terminate()
                raise
    finally:
        _SETUP = None
        gc.unfreeze()
    ids.finish(total, outcomes.by_id if outcomes is not None else None)
    return total, unasked


def replay(
    policy: Policy,
    traffic: Sequence[str | Path],
    outcomes: Outcomes | None = None,
    options: ReplayOptions = ReplayOptions(),
    *,
    bootstrap: int = 2000,
    seed: int = 0,
    progress: Progress | None = None,
) -> Report:
    """What ``policy`` would have done with ``traffic``: tiers, rules, cost against every
    single tier and, with ``outcomes``, quality with bootstrap intervals."""
    sims: list[SpendSimulation | None] = []
    tally, unasked = run([policy], traffic, outcomes, options, progress, sims)
    universe = universe_of([policy])
    quality = None
    if outcomes is not None and tally.rows:
        from .stats import quality as measure

        quality = measure(tally.rows, 0, [t.name for t in policy.tiers], universe, bootstrap, seed)
    return build(
        policy,
        tally,
        0,
        [str(p) for p in traffic],
        universe,
        outcomes is not None,
        quality,
        unasked,
        options.group_by,
        spend=sims[0].summary() if sims and sims[0] is not None else None,
    )


def impact(
    old: Policy,
    new: Policy,
    traffic: Sequence[str | Path],
    outcomes: Outcomes | None = None,
    options: ReplayOptions = ReplayOptions(),
    *,
    bootstrap: int = 2000,
    seed: int = 0,
    progress: Progress | None = None,
) -> ImpactReport:
    """How replacing ``old`` by ``new`` changes routing, cost and quality on ``traffic``."""
    sims: list[SpendSimulation | None] = []
    tally, unasked = run([old, new], traffic, outcomes, options, progress, sims)
    universe = universe_of([old, new])
    files = [str(p) for p in traffic]
    given = outcomes is not None
    summaries = [sim.summary() if sim is not None else None for sim in sims]
    reports = [
        build(p, tally, i, files, universe, given, None, unasked, options.group_by, summaries[i])
        for i, p in enumerate((old, new))
    ]
    difference = None
    if given and tally.rows:
        from .stats import difference as paired

        difference = paired(
            tally.rows,
            [t.name for t in old.tiers],
            [t.name for t in new.tiers],
            universe,
            bootstrap,
            seed,
        )
    moves = sorted(
        ((a, b, r0, r1, n) for (a, b, r0, r1), n in tally.moves.items()),
        key=lambda m: (-m[4], m[:4]),
    )
    return ImpactReport(reports[0], reports[1], moves, difference)
