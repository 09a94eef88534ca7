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
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import queue
import random
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from anthropic.types import Message

from policyroute.decision import Decision, Shadow, Tier
from policyroute.pairs import Answer, DecisionRef, Pair, PromptDigest, Usage
from policyroute.runtime.answers import message_text
from policyroute.runtime.attempts import Attempt
from policyroute.runtime.escalation import describe, max_tokens_for
from policyroute.runtime.records import JsonlWriter

log = logging.getLogger("policyroute.shadow")

# Per message and per request, tokens the API adds around the text (roles, separators).
_OVERHEAD_TOKENS = 64


class PairSink(Protocol):
    def write(self, pair: Pair) -> None: ...


class PairsWriter(JsonlWriter):
    """Appends pairs to a JSON-lines file: the record writer's one locked write per line."""


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


class DailyBudget:
    """USD per UTC day; reservations make the cap hold with calls in flight."""

    def __init__(self, usd: float, clock: Callable[[], float] = time.time) -> None:
        self.usd = usd
        self._clock = clock
        self._lock = threading.Lock()
        self._day = self._today()
        self.committed = 0.0  # spent and reserved today

    def _today(self) -> int:
        return int(self._clock() // 86_400)

    def _roll(self) -> None:
        day = self._today()
        if day != self._day:
            self._day, self.committed = day, 0.0

    def reserve(self, usd: float) -> bool:
        with self._lock:
            self._roll()
            if self.committed + usd > self.usd:
                return False
            self.committed += usd
            return True

    def settle(self, reserved: float, actual: float) -> None:
        with self._lock:
            self._roll()
            self.committed = max(0.0, self.committed - reserved + actual)


class ShadowStats:
    """Counters, for logs and metrics. `sampled` counts shadow calls chosen by sampling.

    Callers and workers count under separate locks, so the caller's path never waits for a
    worker; `as_dict()` adds them up.
    """

    FIELDS = ("sampled", "skipped_budget", "skipped_full", "succeeded", "failed", "spent_usd")

    def __init__(self) -> None:
        self._worker: dict[str, float] = dict.fromkeys(self.FIELDS, 0)
        self._caller: dict[str, float] = dict.fromkeys(self.FIELDS, 0)
        self._worker_lock = threading.Lock()
        self._caller_lock = threading.Lock()

    def add(self, **counts: float) -> None:
        """Count from a worker (or the event loop)."""
        with self._worker_lock:
            for k, v in counts.items():
                self._worker[k] += v

    def add_from_caller(self, **counts: float) -> None:
        with self._caller_lock:
            for k, v in counts.items():
                self._caller[k] += v

    def as_dict(self) -> dict[str, float]:
        with self._worker_lock, self._caller_lock:
            return {k: self._worker[k] + self._caller[k] for k in self.FIELDS}


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

    def __init__(self, config: ShadowConfig, log_prompts: bool) -> None:
        self.config = config
        self.log_prompts = log_prompts
        self.budget = DailyBudget(config.daily_budget_usd)
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
            bound = _worst_case(served, s.tier, max_tokens)
            if self.budget.reserve(bound):
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
        self.budget.settle(reserved, attempt.cost_usd)
        self.stats.add(succeeded=1, spent_usd=attempt.cost_usd)
        if self.pairs is not None:
            try:
                self.pairs.write(self._pair(job.served, attempt, message))
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
        self.budget.settle(reserved, 0.0)
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

    def _pair(self, served: Served, shadow: Attempt, message: Message) -> Pair:
        decision = served.decision
        keep = self.log_prompts
        routed_text = message_text(served.message)
        shadow_text = message_text(message)
        request = None
        if keep:
            request = _jsonable(
                {
                    **served.params,
                    **({"max_tokens": served.max_tokens} if served.max_tokens is not None else {}),
                    "route": dict(served.route),
                    "id": served.request_id,
                }
            )
        return Pair(
            id=served.request_id,
            time=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            policy=decision.policy,
            revision=decision.revision,
            decision=DecisionRef(tier=decision.tier, model=decision.model, rule=decision.rule),
            request=request,
            prompt=_digest(served.text),
            routed=_answer(served.answer, routed_text, keep),
            shadow=_answer(shadow, shadow_text, keep),
        )


def _worst_case(served: Served, tier: Tier, max_tokens: int) -> float:
    text = served.text or ""
    a = served.answer
    real = a.input_tokens + a.cache_creation_tokens + a.cache_read_tokens
    # A token is at least one byte of text, so the byte count bounds a text-only request
    # for any tokenizer; the routed call's real count covers tools and images.
    turns = len(served.params.get("messages") or ()) + 1
    inputs = max(len(text.encode("utf-8", "surrogatepass")) + _OVERHEAD_TOKENS * turns, real)
    per_input = tier.input_price / 1_000_000 * max(1.0, tier.cache_write_multiplier)
    return inputs * per_input + max_tokens * tier.output_price / 1_000_000


def _digest(text: str | None) -> PromptDigest | None:
    if text is None:
        return None
    import hashlib

    return PromptDigest(
        length=len(text), sha256=hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    )


def _answer(attempt: Attempt, text: str, keep: bool) -> Answer:
    return Answer(
        tier=attempt.tier,
        model=attempt.model,
        text=text if keep else None,
        chars=len(text),
        stop_reason=attempt.stop_reason,
        usage=Usage(
            input_tokens=attempt.input_tokens,
            output_tokens=attempt.output_tokens,
            cache_creation_tokens=attempt.cache_creation_tokens,
            cache_read_tokens=attempt.cache_read_tokens,
        ),
        cost_usd=attempt.cost_usd,
        latency_ms=round(attempt.latency_ms, 3),
    )


def _jsonable(obj: Any) -> dict[str, Any]:
    def default(o: Any) -> Any:
        dump = getattr(o, "model_dump", None)
        if callable(dump):
            return dump(mode="json")
        return str(o)

    value: dict[str, Any] = json.loads(json.dumps(obj, default=default))
    return value


# How a runner sends a shadow call: the router's client, or the middleware's chain.
SyncSend = Callable[[dict[str, Any]], Any]
AsyncSend = Callable[[dict[str, Any]], Awaitable[Any]]


class ThreadShadow(_Shadowing):
    """Shadowing for the sync `Router` and middleware: a queue and worker threads.

    The hand-over is a `queue.SimpleQueue` (C, no Python-level lock), so a caller never waits
    on a lock a busy worker holds; `max_pending` bounds the jobs waiting in it.
    """

    def __init__(self, config: ShadowConfig, log_prompts: bool) -> None:
        super().__init__(config, log_prompts)
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

    def __init__(self, config: ShadowConfig, log_prompts: bool) -> None:
        super().__init__(config, log_prompts)
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
                for tier, max_tokens, reserved in self._calls(job):
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
