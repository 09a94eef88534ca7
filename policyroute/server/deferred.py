"""Decision records written once the answer they describe has gone out.

A routed request's record is made when its ladder ends, which is before the answer's last
bytes are sent (a JSON body, a stream's closing chunk). Serialising it and appending it to
the file there put both on the request's latency. This sink keeps the records handed to it
and writes them, in order, when the event loop next runs its callbacks: after the current
request's task has written its answer and yielded.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from policyroute.runtime.records import DecisionRecord, RecordSink, write_record


class DeferredSink:
    """A RecordSink in front of another; records from outside the event loop's thread are
    written at once."""

    def __init__(self, sink: RecordSink) -> None:
        self.sink = sink
        self._pending: list[DecisionRecord] = []

    def write(self, record: BaseModel) -> None:
        assert isinstance(record, DecisionRecord)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            write_record(self.sink, record)
            return
        self._pending.append(record)
        if len(self._pending) == 1:
            loop.call_soon(self.flush)

    def close(self) -> None:
        self.flush()
        close = getattr(self.sink, "close", None)
        if close is not None:
            close()

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        for record in pending:
            # A failing sink is logged there, never raised: as when written in place.
            write_record(self.sink, record)
