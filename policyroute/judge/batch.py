"""Judging through the Message Batches API: half the price, results within a day.

Submit, save the batch id at once, poll with back-off, and join the results to their
requests by `custom_id` (the request's content hash). A run that stops before the batch ends
(an interruption, or `max_wait`) leaves its batch ids in a state file; the same command run
again resumes polling those batches instead of paying for them twice. Errored and expired
items are reported and left unjudged, so the next run submits them again.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import jsonsafe
from ..decision import Tier
from .cache import JudgeCache
from .online import answer_value
from .plan import JudgeRequest

BATCH_DISCOUNT = 0.5
# The API takes up to 100,000 requests a batch; smaller batches finish sooner.
MAX_BATCH = 10_000


class BatchError(Exception):
    """The Batches API failed (create, retrieve or results); the state file is kept."""


@dataclass(slots=True)
class BatchReport:
    judged: int = 0
    errored: list[tuple[str, str]] = field(default_factory=list)  # (key, why)
    expired: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # batch ids still in progress
    resumed: list[str] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)


class BatchState:
    """The state file: the batches submitted and not yet collected, with their keys."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.batches: list[dict[str, Any]] = []
        if path.exists():
            try:
                data = jsonsafe.loads(path.read_text("utf-8"), where=str(path))
                self.batches = list(data["batches"])
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise BatchError(
                    f"{path}: unreadable batch state ({e}); remove it to start over"
                ) from None

    def save(self) -> None:
        if not self.batches:
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"v": 1, "batches": self.batches}, indent=1), "utf-8")
        os.replace(tmp, self.path)  # never a half-written state file


class BatchJudge:
    def __init__(
        self,
        client: Any,
        cache: JudgeCache,
        tier: Tier,
        state_path: Path,
        *,
        poll_interval: float = 10.0,
        max_poll_interval: float = 300.0,
        max_wait: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
    ) -> None:
        self.client = client
        self.cache = cache
        self.tier = tier
        self.state = BatchState(state_path)
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.max_wait = max_wait
        self.sleep = sleep
        self.log = log

    def run(self, requests: Sequence[JudgeRequest]) -> BatchReport:
        import anthropic

        report = BatchReport()
        started = time.monotonic()
        try:
            waiting = {k for b in self.state.batches for k in b["keys"]}
            report.resumed = [b["id"] for b in self.state.batches]
            for batch_id in report.resumed:
                self.log(f"resuming batch {batch_id}")
            todo = [r for r in requests if r.key not in waiting]
            for i in range(0, len(todo), MAX_BATCH):
                self._submit(todo[i : i + MAX_BATCH], report)
            for batch in list(self.state.batches):
                if self._wait(batch["id"], started):
                    self._collect(batch, report)
                    self.state.batches.remove(batch)
                    self.state.save()
                else:
                    report.pending.append(batch["id"])
        except anthropic.APIError as e:
            from ..runtime.escalation import describe

            raise BatchError(f"Message Batches API: {describe(e)}") from None
        return report

    def _submit(self, requests: Sequence[JudgeRequest], report: BatchReport) -> None:
        batch = self.client.messages.batches.create(
            requests=[{"custom_id": r.key, "params": r.params} for r in requests]
        )
        # Saved before anything else can fail: an interrupted run must find this batch.
        self.state.batches.append({"id": batch.id, "keys": [r.key for r in requests]})
        self.state.save()
        report.submitted.append(batch.id)
        self.log(f"submitted batch {batch.id} ({len(requests)} requests)")

    def _wait(self, batch_id: str, started: float) -> bool:
        """Poll until the batch ends (True) or waiting longer would pass max_wait (False)."""
        interval = self.poll_interval
        while True:
            batch = self.client.messages.batches.retrieve(batch_id)
            if batch.processing_status == "ended":
                return True
            # Some SDK versions leave the counts unset on a batch still being created.
            counts = getattr(batch.request_counts, "processing", None)
            pending = "" if counts is None else f"{counts} "
            elapsed = time.monotonic() - started
            if self.max_wait is not None and elapsed + interval > self.max_wait:
                self.log(
                    f"batch {batch_id} still {batch.processing_status} ({pending}"
                    "processing); run the same command again to resume it"
                )
                return False
            self.sleep(interval)
            interval = min(interval * 1.5, self.max_poll_interval)

    def _collect(self, batch: dict[str, Any], report: BatchReport) -> None:
        expected = set(batch["keys"])
        seen: set[str] = set()
        for item in self.client.messages.batches.results(batch["id"]):
            key = item.custom_id
            if key not in expected:
                continue  # not ours: never join a result to a request it does not answer
            seen.add(key)
            result = item.result
            if result.type == "succeeded":
                value = answer_value(result.message, self.tier, BATCH_DISCOUNT)
                self.cache.put(key, {**value, "via": "batch", "batch_id": batch["id"]})
                report.judged += 1
            elif result.type == "errored":
                err = getattr(result.error, "error", None)
                why = f"{getattr(err, 'type', 'error')}: {getattr(err, 'message', '')}"
                report.errored.append((key, why))
            else:  # expired or canceled: the batch ended before the request ran
                report.expired.append(key)
        for key in expected - seen:
            report.errored.append((key, "missing from the batch's results"))
