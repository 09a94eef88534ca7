"""Reading the Messages API's server-sent events as they pass through, without holding them.

Serve and the SDK middleware forward the bytes exactly as they arrive; beside that they
split them into events and read the few they need: whether content has started (after which a failure can no longer
be hidden by trying another tier), the usage and stop reason (for cost, records and the
escalation triggers), an `error` event, and the text when a trigger needs to read it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from anthropic.types import Message
from pydantic import ValidationError

from policyroute.decision import ERROR
from policyroute.runtime.answers import MalformedAnswerError, check_message

_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r")
# Events whose arrival means the caller has seen content.
CONTENT_EVENTS = frozenset({"content_block_delta"})
# Events whose data the proxy reads; every other event is only counted through.
_READ = frozenset({"message_start", "message_delta", "error", "content_block_start"})


class StreamErrorEvent(Exception):
    """An `error` event in a 200 stream (overloaded mid-answer, say): the upstream's fault."""

    trigger = ERROR.name


def error_event(err: dict[str, Any]) -> StreamErrorEvent:
    return StreamErrorEvent(f"stream error event: {err.get('type')}: {err.get('message')}")


def check_start(message: dict[str, Any]) -> None:
    """A `message_start` that is no message fails before any content is sent (as the
    Router's check of the SDK's event does)."""
    try:
        check_message(Message.model_validate({**message, "content": []}))
    except (ValidationError, MalformedAnswerError) as e:
        why = e.args[0] if isinstance(e, MalformedAnswerError) else "not a Messages API message"
        raise MalformedAnswerError(f"malformed message_start: {why}") from None


def _fields(block: bytes) -> tuple[str, bytes]:
    event = ""
    data: list[bytes] = []
    for line in block.splitlines():
        if line.startswith(b"event:"):
            event = line[6:].strip().decode("utf-8", "replace")
        elif line.startswith(b"data:"):
            data.append(line[5:].lstrip(b" "))
    return event, b"\n".join(data)


class StreamState:
    """What the events seen so far say about the answer."""

    def __init__(self, keep_text: bool = False) -> None:
        self._pending = b""
        self.keep_text = keep_text
        self.started = False  # content has been seen
        self.message: dict[str, Any] | None = None
        self.stop_reason: str | None = None
        self.usage: dict[str, Any] = {}
        self.error: dict[str, Any] | None = None
        self.finished = False
        # Why the stream is unusable (an event whose data is not JSON), seen before content.
        self.broken: str | None = None
        self._texts: dict[int, list[str]] = {}

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes of the stream (any split: events may straddle chunks)."""
        buf = self._pending + chunk
        start = 0
        for m in _BOUNDARY.finditer(buf):
            self._event(buf[start : m.start()])
            start = m.end()
        self._pending = buf[start:]

    def _event(self, block: bytes) -> None:
        if not block.strip():
            return
        event, data = _fields(block)
        if not data.strip():
            if event == "message_stop":
                self.finished = True
            return  # a comment or keep-alive line
        if not self.started:
            # Until content has reached the caller every event is read: a broken one can
            # still be hidden by trying the next tier. After that only the few needed.
            try:
                obj = json.loads(data)
            except ValueError:
                self.broken = f"the stream's {event or 'unnamed'} event is not JSON"
                return
            if event in CONTENT_EVENTS:
                self.started = True
            elif event == "message_stop":
                self.finished = True
                return
            elif event not in _READ:
                return
        else:
            if event in CONTENT_EVENTS:
                if not self.keep_text:
                    return
            elif event == "message_stop":
                self.finished = True
                return
            elif event not in _READ:
                return
            try:
                obj = json.loads(data)
            except ValueError:
                return
        if not isinstance(obj, dict):
            return
        if event == "message_start" and isinstance(obj.get("message"), dict):
            self.message = obj["message"]
            usage = self.message.get("usage")
            if isinstance(usage, dict):
                self.usage.update(usage)
        elif event == "message_delta":
            delta = obj.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason") is not None:
                self.stop_reason = delta["stop_reason"]
            usage = obj.get("usage")
            if isinstance(usage, dict):
                self.usage.update({k: v for k, v in usage.items() if v is not None})
        elif event == "error":
            err = obj.get("error")
            self.error = err if isinstance(err, dict) else {"message": str(obj)}
        elif event == "content_block_delta":
            delta = obj.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                index = obj.get("index", 0)
                self._texts.setdefault(index if isinstance(index, int) else 0, []).append(
                    str(delta.get("text", ""))
                )

    def final_message(self, model: str) -> Message | None:
        """The answer as a Message (text, stop reason, usage), or None if the stream said
        too little to build one."""
        base = dict(self.message or {})
        content = [
            {"type": "text", "text": "".join(parts)} for _, parts in sorted(self._texts.items())
        ]
        base.update(
            {
                "id": base.get("id") or "msg_stream",
                "type": "message",
                "role": "assistant",
                "model": base.get("model") or model,
                "content": content,
                "stop_reason": self.stop_reason,
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0, **self.usage},
            }
        )
        try:
            return check_message(Message.model_validate(base))
        except (ValidationError, MalformedAnswerError):
            return None
