"""Shadow traffic: a sampled copy of a routed request, sent to a cheaper tier in the background.

A policy's `shadow TIER sample N%` statements say which requests to copy; the runtime is
given a `ShadowConfig` with a daily spend cap in USD and where to write pairs. After the
caller's answer is back (and already on its way to the caller), each sampled request is
queued for its shadow tiers; workers send it with bounded concurrency and write one pair per
shadow call (see `policyroute.pairs`). The caller never waits for, and never sees, a shadow
call: a full queue or an exhausted budget skips the shadow, and a failure is logged and
counted in `stats`, never raised.

The cap holds: before a shadow call is sent, its worst-case cost (the request's input
bounded by its UTF-8 size or the routed call's real input tokens, whichever is larger,
at the cache-write price, plus every output token it may produce) is reserved against the
day's budget (UTC); the reservation is settled to the real cost when the call ends.

The decision record of a shadowed request is written when its shadow calls end, with each
shadow call as an attempt of kind "shadow" (and its cost in `shadow_cost_usd`), so one line
tells the whole story; `close()` waits for the shadows still running.

The stages: this module samples and runs the shadows (a thread runner, an asyncio runner);
shadow_budget.py keeps the cap, shadow_pairs.py builds and writes the pairs.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import queue
import random
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from anthropic.types import Message

from policyroute.decision import Decision, Shadow, Tier
from policyroute.runtime.attempts import Attempt
from policyroute.runtime.escalation import describe, max_tokens_for
from policyroute.runtime.shadow_budget import DailyBudget, ShadowStats, worst_case
from policyroute.runtime.shadow_pairs import PairSink, PairsWriter, make_pair
from policyroute.runtime.state import State

log = logging.getLogger("policyroute.shadow")


@dataclass(frozen=True, slots=True)
class ShadowConfig:
    """What the runtime is given to shadow: without one, `shadow` statements are not acted on.

    `daily_budget_usd` caps the shadow spend per UTC day; `pairs` is a path or a sink for the
    pairs; `max_concurrency` shadow calls run at once and at most `max_pending` wait; `seed`
    fixes the sampling for tests.
    """

    daily_budget_usd: float
    pairs: str | os.PathLike[str] | PairSink | None = None
    max_concurrency: int = 2
    max_pending: int = 100
    seed: int | None = None

    def __post_init__(self) -> None:
        if not (
            isinstance(self.daily_budget_usd, int | float) and math.isfinite(self.daily_budget_usd)
        ):
            raise ValueError("daily_budget_usd must be a finite number of USD")
        if self.daily_budget_usd < 0:
            raise ValueError("daily_budget_usd cannot be negative")
        if self.max_concurrency < 1 or self.max_pending < 1:
            raise ValueError("max_concurrency and max_pending must be 1 or more")


@dataclass(slots=True)
class Served:
    """What the caller got, as the shadow needs it. `finish` writes the decision record,
    given the shadow attempts."""

    request_id: str
    decision: Decision
    params: Mapping[str, Any]  # Messages API parameters without model, stream, max_tokens
    max_tokens: int | None  # the caller's own, if given
    route: Mapping[str, Any]
    text: str | None
    answer: Attempt
    message: Message
    finish: Callable[[Sequence[Attempt]], object]


@dataclass(slots=True)
class _Job:
    served: Served
    chosen: list[Shadow]


class _Shadowing:
    """Sampling, the budget and the pairs; the sync and async runners add the I/O."""

    def __init__(self, config: ShadowConfig, log_prompts: bool, state: State | None = None) -> None:
        self.config = config
        self.log_prompts = log_prompts
        self.budget = DailyBudget(config.daily_budget_usd, state=state)
        self.stats = ShadowStats()
        self._rng = random.Random(config.seed)
        self._rng_lock = threading.Lock()
        pairs = config.pairs
        self.pairs: PairSink | None = (
            PairsWriter(pairs) if isinstance(pairs, str | os.PathLike) else pairs
        )

    # On the caller's path only a draw per statement and a non-blocking hand-over happen;
    # the budget, the counters and everything else are the worker's.

    def _sample(self, served: Served, shadows: Sequence[Shadow]) -> _Job | None:
        with self._rng_lock:
            chosen = [s for s in shadows if self._rng.random() < s.share]
        return _Job(served, chosen) if chosen else None

    def _dropped(self, job: _Job) -> None:
        n = len(job.chosen)
        self.stats.add_from_caller(sampled=n, skipped_full=n)

    def _calls(self, job: _Job) -> list[tuple[Tier, int, float]]:
        """(tier, max_tokens, reserved USD) of each sampled shadow the day's budget allows."""
        self.stats.add(sampled=len(job.chosen))
        calls = []
        served = job.served
        for s in job.chosen:
            # As for a tier escalation climbs to: the caller's value, the tier's cap a ceiling.
            max_tokens = max_tokens_for(served.decision, 1, s.tier, served.max_tokens)
            bound = worst_case(served, s.tier, max_tokens)
            if self.budget.reserve(bound, _ident(served)):
                calls.append((s.tier, max_tokens, bound))
            else:
                self.stats.add(skipped_budget=1)
        return calls

    def _params(self, job: _Job, tier: Tier, max_tokens: int) -> dict[str, Any]:
        return {**job.served.params, "model": tier.model, "max_tokens": max_tokens}

    def _answered(
        self, job: _Job, tier: Tier, reserved: float, message: Message, start: float
    ) -> Attempt:
        attempt = Attempt(kind="shadow", tier=tier.name, model=tier.model)
        attempt.answered(message, tier, start)
        self.budget.settle(reserved, attempt.cost_usd, _ident(job.served))
        self.stats.add(succeeded=1, spent_usd=attempt.cost_usd)
        if self.pairs is not None:
            try:
                self.pairs.write(make_pair(job.served, attempt, message, self.log_prompts))
            except Exception as e:  # a full disk must not stop the shadows
                log.warning("shadow pair for %s not written: %s", job.served.request_id, e)
        return attempt

    def _failed(
        self, job: _Job, tier: Tier, reserved: float, exc: BaseException, start: float
    ) -> Attempt:
        attempt = Attempt(kind="shadow", tier=tier.name, model=tier.model)
        attempt.error = describe(exc)
        attempt.status = getattr(exc, "status_code", None)
        attempt.latency_ms = (time.perf_counter() - start) * 1000
        self.budget.settle(reserved, 0.0, _ident(job.served))
        self.stats.add(failed=1)
        log.warning(
            "shadow call to %s for %s failed: %s", tier.name, job.served.request_id, attempt.error
        )
        return attempt

    def _finish(self, job: _Job, attempts: Sequence[Attempt]) -> None:
        try:
            job.served.finish(attempts)
        except Exception as e:
            log.warning("decision record for %s not written: %s", job.served.request_id, e)


def _ident(served: Served) -> str:
    """Whose shadow spend: the policy's (`spend.shadow.*` of the policy scope)."""
    return served.decision.policy or "(unnamed)"


# How a runner sends a shadow call: the router's client, or the middleware's chain.
SyncSend = Callable[[dict[str, Any]], Any]
AsyncSend = Callable[[dict[str, Any]], Awaitable[Any]]


class ThreadShadow(_Shadowing):
    """Shadowing for the sync `Router` and middleware: a queue and worker threads.

    The hand-over is a `queue.SimpleQueue` (C, no Python-level lock), so a caller never waits
    on a lock a busy worker holds; `max_pending` bounds the jobs waiting in it.
    """

    def __init__(self, config: ShadowConfig, log_prompts: bool, state: State | None = None) -> None:
        super().__init__(config, log_prompts, state)
        self._queue: queue.SimpleQueue[tuple[_Job, SyncSend] | None] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self._queued = 0  # jobs handed over (under the sampling lock: callers only)
        self._done = 0  # jobs finished (under _done_lock: workers only)
        self._done_lock = threading.Lock()

    def offer(self, served: Served, shadows: Sequence[Shadow], send: SyncSend) -> bool:
        """Queue the sampled shadows of a served request; True when the job will write the
        decision record. Never blocks and never raises."""
        try:
            job = self._sample(served, shadows)
            if job is None:
                return False
            if self._queue.qsize() >= self.config.max_pending:
                self._dropped(job)
                return False
            if len(self._workers) < self.config.max_concurrency:
                self._start_workers()
            with self._rng_lock:
                self._queued += 1
            self._queue.put((job, send))
            return True
        except Exception as e:
            log.warning("shadow not queued for %s: %s", served.request_id, e)
            return False

    def _start_workers(self) -> None:
        with self._start_lock:
            while len(self._workers) < self.config.max_concurrency:
                t = threading.Thread(target=self._work, name="policyroute-shadow", daemon=True)
                t.start()
                self._workers.append(t)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                job, send = item
                attempts = []
                for tier, max_tokens, reserved in self._calls(job):
                    start = time.perf_counter()
                    try:
                        message = send(self._params(job, tier, max_tokens))
                    except Exception as e:
                        attempts.append(self._failed(job, tier, reserved, e, start))
                    else:
                        attempts.append(self._answered(job, tier, reserved, message, start))
                self._finish(job, attempts)
            except Exception as e:  # a worker never dies
                log.warning("shadow worker: %s", e)
            finally:
                with self._done_lock:
                    self._done += 1

    def drain(self, poll: float = 0.005) -> None:
        """Wait until every queued shadow has ended."""
        while True:
            with self._rng_lock:
                queued = self._queued
            with self._done_lock:
                if self._done >= queued:
                    return
            time.sleep(poll)

    def close(self) -> None:
        """Finish the queued shadows, then stop the workers."""
        self.drain()
        for _ in self._workers:
            self._queue.put(None)
        for t in self._workers:
            t.join()
        self._workers.clear()


class AsyncShadow(_Shadowing):
    """Shadowing for the `AsyncRouter` and async middleware: tasks on the caller's loop,
    at most `max_concurrency` running."""

    def __init__(self, config: ShadowConfig, log_prompts: bool, state: State | None = None) -> None:
        super().__init__(config, log_prompts, state)
        self._tasks: set[asyncio.Task[None]] = set()
        self._semaphore: asyncio.Semaphore | None = None

    def offer(self, served: Served, shadows: Sequence[Shadow], send: AsyncSend) -> bool:
        try:
            job = self._sample(served, shadows)
            if job is None:
                return False
            if len(self._tasks) >= self.config.max_pending:
                self._dropped(job)
                return False
            task = asyncio.get_running_loop().create_task(self._run(job, send))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return True
        except Exception as e:
            log.warning("shadow not started for %s: %s", served.request_id, e)
            return False

    async def _run(self, job: _Job, send: AsyncSend) -> None:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.config.max_concurrency)
        attempts = []
        try:
            async with self._semaphore:
                if self.budget.state.blocking:  # a reservation is a round trip: off the loop
                    calls = await asyncio.to_thread(self._calls, job)
                else:
                    calls = self._calls(job)
                for tier, max_tokens, reserved in calls:
                    start = time.perf_counter()
                    try:
                        message = await send(self._params(job, tier, max_tokens))
                    except Exception as e:
                        attempts.append(self._failed(job, tier, reserved, e, start))
                    else:
                        attempts.append(self._answered(job, tier, reserved, message, start))
        except asyncio.CancelledError:
            log.warning("shadow for %s cancelled", job.served.request_id)
            raise
        finally:
            self._finish(job, attempts)

    async def drain(self) -> None:
        """Wait until every running shadow has ended."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
