"""Decision records made and written once the answer they describe has gone out.

A routed request's record is due when its ladder ends, which is before the answer's last
bytes are sent (a JSON body, a stream's closing chunk). Building the record, serialising it
and appending it to the file there put all three on the request's latency (about a tenth of
a routed request's CPU, `bench/bench_serve.py` under py-spy). This sink keeps what it is
handed and does it, in order, when the event loop next runs its callbacks: after the
current request's task has written its answer and yielded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial

from pydantic import BaseModel

from policyroute.runtime.records import DecisionRecord, RecordSink, write_record

log = logging.getLogger("policyroute.records")


class DeferredSink:
    """A RecordSink in front of another. Outside the event loop's thread a record is
    written at once."""

    def __init__(self, sink: RecordSink) -> None:
        self.sink = sink
        self._pending: list[Callable[[], None]] = []

    def write(self, record: BaseModel) -> None:
        assert isinstance(record, DecisionRecord)
        self.defer(partial(write_record, self.sink, record))

    def defer(self, work: Callable[[], None]) -> None:
        """Run `work` (which builds a record and writes it to `self.sink`) after the answer."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._run(work)
            return
        self._pending.append(work)
        if len(self._pending) == 1:
            loop.call_soon(self.flush)

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        for work in pending:
            self._run(work)

    def close(self) -> None:
        self.flush()
        close = getattr(self.sink, "close", None)
        if close is not None:
            close()

    @staticmethod
    def _run(work: Callable[[], None]) -> None:
        # A record that cannot be made is logged, never raised: the answer has gone out.
        try:
            work()
        except Exception:
            log.exception("could not write a decision record")
