"""A small fake of the Anthropic Messages API on 127.0.0.1, for tests and benchmarks.

It speaks the real wire format (JSON answers, SSE streams, error bodies, `retry-after`,
`request-id`) so the real SDK runs end to end against it. Answers are scripted per model:
each request for a model pops the next `Reply` from that model's queue; an empty queue
answers with `default_reply`.

Run it alone (for `policyroute ask` by hand): `python tests/fake_anthropic.py [PORT]`.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class Reply:
    """One scripted answer.

    `status` other than 200 answers with an error body. `delay` sleeps before answering (a
    slow answer past the client's timeout). `stream_error_after` makes a stream send that
    many text deltas and then an `overloaded_error` event.
    """

    text: str = "ok"
    stop_reason: str = "end_turn"
    status: int = 200
    retry_after: float | None = None
    delay: float = 0.0
    input_tokens: int = 10
    output_tokens: int = 5
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    stream_error_after: int | None = None
    chunks: int = 2
    # Seconds between stream events (a slow stream, for disconnect tests).
    chunk_delay: float = 0.0
    # Answer exactly these bytes (status `status`, JSON content type): a malformed answer.
    raw: bytes | None = None
    fault: Fault | None = None  # a broken answer (see Fault); None answers normally
    # Tool calls after the text, each {"name": ..., "input": {...}} (an agent's tool loop);
    # the answer's content gets one `tool_use` block each, with a fresh id.
    tool_uses: tuple[dict[str, Any], ...] = ()
    # A `thinking` block (with a signature) before the text, as a model with thinking on sends.
    thinking: str | None = None

    @classmethod
    def json(cls, obj: Any, **kw: Any) -> Reply:
        return cls(text=json.dumps(obj), **kw)


@dataclass
class Fault:
    """A broken 200 answer or a hostile upstream, for the runtime's fault matrix.

    `body`: answer 200 with exactly these bytes (`content_type`), stream request or not.
    `patch`: keys merged into the message (the `message_start` message of a stream); a None
    value deletes the key. `usage_patch`: the same for `usage` (and a stream's final usage).
    `cut`: end a stream early, "start" right after `message_start`, "content" after the
    first text delta (no `message_stop`). `sse`: this raw text as the stream body.
    `trickle`: seconds between single bytes of the body. `echo_credentials`: answer
    `Reply.status` (500 if 200) with an error quoting the request's key headers.
    `echo_headers`: the same, quoting every request header; to a stream request with status
    200, a stream whose `error` event quotes them. `hang_up`: close the connection without
    a word once the request is read (after `trickle`-paced bytes of `body`, if any).
    """

    body: bytes | None = None
    content_type: str = "application/json"
    patch: dict[str, Any] | None = None
    usage_patch: dict[str, Any] | None = None
    cut: str | None = None
    sse: str | None = None
    trickle: float = 0.0
    echo_credentials: bool = False
    echo_headers: bool = False
    hang_up: bool = False


@dataclass
class Seen:
    model: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    path: str = ""  # the request line's path with its query (`/v1/messages?beta=true`)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 resets connections under tens of concurrent clients.
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (a timeout, a closed keep-alive) is routine here.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeAnthropic:
    """The server. Use as a context manager, or call `start()` / `stop()`."""

    def __init__(self, port: int = 0) -> None:
        self._queues: dict[str, deque[Reply]] = defaultdict(deque)
        self._lock = threading.Lock()
        self.requests: list[Seen] = []
        self.default_reply = Reply(text="hello")
        self.unknown_models: set[str] = set()
        self.record_requests = True
        self.batches = BatchState()
        # model (or "*": any model) -> a function of the request body giving the reply, when
        # its queue is empty.
        self.responders: dict[str, Callable[[dict[str, Any]], Reply]] = {}
        # Streams whose client hung up before the end (counted by the serve tests).
        self.streams_aborted = 0
        handler = _make_handler(self)
        self._server = _Server(("127.0.0.1", port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, model: str, replies: Iterable[Reply]) -> None:
        with self._lock:
            self._queues[model].extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._queues.clear()
            self.requests.clear()
            self.unknown_models.clear()
            self.default_reply = Reply(text="hello")
            self.responders.clear()
            self.streams_aborted = 0
        self.batches = BatchState()

    def models_called(self) -> list[str]:
        return [s.model for s in self.requests]

    def _next(
        self, model: str, body: dict[str, Any], headers: dict[str, str], path: str = ""
    ) -> Reply:
        with self._lock:
            if self.record_requests:
                self.requests.append(Seen(model, body, headers, path))
            if model in self.unknown_models:
                return Reply(status=404, text=f"model: {model}")
            queue = self._queues.get(model)
            if queue:
                return queue.popleft()
            # "*" answers every model that has no responder of its own (an agent's script).
            responder = self.responders.get(model) or self.responders.get("*")
        if responder is not None:
            return responder(body)
        with self._lock:
            return self.default_reply


def _usage(r: Reply) -> dict[str, Any]:
    return {
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "cache_creation_input_tokens": r.cache_creation_input_tokens,
        "cache_read_input_tokens": r.cache_read_input_tokens,
    }


def _content(r: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if r.thinking is not None:
        signature = "sig_" + uuid.uuid4().hex
        blocks.append({"type": "thinking", "thinking": r.thinking, "signature": signature})
    if r.text:
        blocks.append({"type": "text", "text": r.text})
    for call in r.tool_uses:
        tool_id = "toolu_" + uuid.uuid4().hex[:24]
        blocks.append({"type": "tool_use", "id": tool_id, **call})
    return blocks


def _refusal(body: dict[str, Any]) -> str | None:
    """The API's own 400s that the tests rely on: a thinking budget must be at least 1024
    and below `max_tokens` (a capped request that keeps its budget is refused upstream)."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return None
    budget, max_tokens = thinking.get("budget_tokens"), body.get("max_tokens")
    if not isinstance(budget, int) or budget < 1024:
        return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    if isinstance(max_tokens, int) and max_tokens <= budget:
        return "`max_tokens` must be greater than `thinking.budget_tokens`"
    return None


def _message(model: str, r: Reply) -> dict[str, Any]:
    content = _content(r)
    return {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": r.stop_reason,
        "stop_sequence": None,
        "usage": _usage(r),
    }


def _make_handler(fake: FakeAnthropic) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in separate writes; without this, Nagle and delayed
            # ACKs add ~40 ms to every answer and swamp what the benchmark measures.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # silence stderr
            pass

        def do_GET(self) -> None:
            if self.path.split("?")[0].startswith("/v1/models"):
                _models(self, fake)
                return
            handled = _batch_get(fake, self.path)
            if handled is None:
                self._error(404, f"no route {self.path}")
            elif isinstance(handled[1], bytes):
                self._jsonl(*handled)  # type: ignore[arg-type]
            else:
                self._json(*handled)

        def _jsonl(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", "application/binary")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            if self.path.startswith("/v1/messages/batches"):
                self._json(*_batch_post(fake, self.path, raw))
                return  # a second answer on this connection would be read by the next request
            if self.path.split("?")[0] == "/v1/messages/count_tokens":
                _count_tokens(self, fake, raw)
                return
            if not self.path.startswith("/v1/messages"):
                self._error(404, f"no route {self.path}")
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._error(400, "body is not JSON")
                return
            model = str(body.get("model", ""))
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = fake._next(model, body, headers, self.path)
            refused = _refusal(body)
            if refused is not None:
                reply = Reply(status=400, text=refused)
            if reply.delay:
                time.sleep(reply.delay)
            try:
                if reply.raw is not None:
                    _raw_answer(self, reply)
                elif reply.fault is not None:
                    _send_fault(self, model, body, reply, reply.fault)
                elif reply.status != 200:
                    self._error(reply.status, reply.text, reply.retry_after)
                elif body.get("stream"):
                    self._stream(model, reply)
                else:
                    self._json(200, _message(model, reply))
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up (a timeout, a disconnect); nothing to answer.
                if body.get("stream"):
                    with fake._lock:
                        fake.streams_aborted += 1

        def _json(self, status: int, obj: Any, extra: dict[str, str] | None = None) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("request-id", "req_" + uuid.uuid4().hex[:20])
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, retry_after: float | None = None) -> None:
            kind = ERROR_TYPES.get(status, "api_error")
            extra = {"retry-after": str(retry_after)} if retry_after is not None else {}
            # Tests script their own retries; tell the SDK plainly when not to retry.
            self._json(
                status, {"type": "error", "error": {"type": kind, "message": message}}, extra
            )

        def _sse(self, event: str, data: dict[str, Any]) -> None:
            if self._chunk_delay:
                time.sleep(self._chunk_delay)
            frame = f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
            # One HTTP/1.1 chunk an event, as the API sends them; the connection stays open.
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            self.wfile.flush()

        _chunk_delay = 0.0

        def _stream(self, model: str, r: Reply) -> None:
            self._chunk_delay = r.chunk_delay
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("request-id", "req_" + uuid.uuid4().hex[:20])
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            self._events(model, r)
            self.wfile.write(b"0\r\n\r\n")  # the end of the body; the connection is kept
            self.wfile.flush()

        def _events(self, model: str, r: Reply) -> None:
            start = _message(model, r)
            blocks, start["content"] = start["content"], []
            start["stop_reason"] = None
            start["usage"] = {**_usage(r), "output_tokens": 1}
            self._sse("message_start", {"type": "message_start", "message": start})
            for index, block in enumerate(blocks):
                if not self._block(index, block, r):
                    return  # a stream error was sent instead
            self._sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": r.stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": r.output_tokens},
                },
            )
            self._sse("message_stop", {"type": "message_stop"})

        def _block(self, index: int, block: dict[str, Any], r: Reply) -> bool:
            """One content block as the API streams it: start, deltas, stop."""
            kind = block["type"]
            empty = {"text": {"text": ""}, "thinking": {"thinking": "", "signature": ""}}
            first = {**block, **empty.get(kind, {})}
            if kind == "tool_use":
                first["input"] = {}
            self._sse(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": first},
            )

            def delta(d: dict[str, Any]) -> None:
                self._sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": d},
                )

            if kind == "thinking":
                delta({"type": "thinking_delta", "thinking": block["thinking"]})
                delta({"type": "signature_delta", "signature": block["signature"]})
            elif kind == "tool_use":
                delta({"type": "input_json_delta", "partial_json": json.dumps(block["input"])})
            else:
                text = block["text"]
                size = -(-len(text) // max(1, r.chunks))
                pieces = [text[i : i + size] for i in range(0, len(text), size)]
                for i, piece in enumerate(pieces):
                    if r.stream_error_after is not None and i >= r.stream_error_after:
                        break
                    delta({"type": "text_delta", "text": piece})
                if r.stream_error_after is not None:
                    error = {"type": "overloaded_error", "message": "Overloaded"}
                    self._sse("error", {"type": "error", "error": error})
                    return False
            self._sse("content_block_stop", {"type": "content_block_stop", "index": index})
            return True

    return Handler


# -- Message Batches -------------------------------------------------------------------------
# Create, retrieve and results, as the API answers them. Each request of a batch is answered
# when the batch is created, from the same per-model script as `/v1/messages` (a scripted
# error status makes the item `errored`); a custom_id in `expire` makes it `expired`. A batch
# reports `in_progress` to its first `polls` retrievals, then `ended` with a results URL.


@dataclass
class BatchState:
    """The fake's batches. `polls`: retrievals that still see `in_progress`; `expire`:
    custom_ids that expire instead of running; `fail_create`: statuses to answer the next
    creates with (an outage while submitting)."""

    polls: int = 0
    expire: set[str] = field(default_factory=set)
    fail_create: list[int] = field(default_factory=list)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)


def _now(offset_s: float = 0) -> str:
    from datetime import UTC, datetime, timedelta

    when = datetime.now(UTC) + timedelta(seconds=offset_s)
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def _batch_item(fake: FakeAnthropic, item: Any) -> dict[str, Any]:
    custom_id = str(item.get("custom_id", ""))
    params = item.get("params") or {}
    if custom_id in fake.batches.expire:
        return {"custom_id": custom_id, "result": {"type": "expired"}}
    model = str(params.get("model", ""))
    reply = fake._next(model, params, {})
    if reply.status != 200:
        kind = ERROR_TYPES.get(reply.status, "api_error")
        error = {"type": "error", "error": {"type": kind, "message": reply.text}}
        return {"custom_id": custom_id, "result": {"type": "errored", "error": error}}
    message = _message(model, reply)
    return {"custom_id": custom_id, "result": {"type": "succeeded", "message": message}}


def _batch_object(batch: dict[str, Any], base_url: str) -> dict[str, Any]:
    ended = batch["polls_left"] <= 0
    counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    for r in batch["results"]:
        counts[r["result"]["type"] if ended else "processing"] += 1
    return {
        "id": batch["id"],
        "type": "message_batch",
        "processing_status": "ended" if ended else "in_progress",
        "request_counts": counts,
        "created_at": batch["created_at"],
        "expires_at": batch["expires_at"],
        "ended_at": _now() if ended else None,
        "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": f"{base_url}/v1/messages/batches/{batch['id']}/results" if ended else None,
    }


def _batch_post(fake: FakeAnthropic, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
    def error(status: int, message: str) -> tuple[int, dict[str, Any]]:
        kind = ERROR_TYPES.get(status, "api_error")
        return status, {"type": "error", "error": {"type": kind, "message": message}}

    if path.rstrip("/") != "/v1/messages/batches":
        return error(404, f"no route {path}")
    if fake.batches.fail_create:
        return error(fake.batches.fail_create.pop(0), "batch creation failed")
    try:
        body = json.loads(raw)
        requests = body["requests"]
        assert isinstance(requests, list) and requests
    except (ValueError, KeyError, TypeError, AssertionError):
        return error(400, "requests: a non-empty list of {custom_id, params} is required")
    ids = [str(r.get("custom_id", "")) for r in requests]
    if len(set(ids)) != len(ids):
        return error(400, "custom_id values must be unique within a batch")
    batch_id = "msgbatch_" + uuid.uuid4().hex[:24]
    batch = {
        "id": batch_id,
        "requests": requests,
        "results": [_batch_item(fake, r) for r in requests],
        "polls_left": fake.batches.polls,
        "created_at": _now(),
        "expires_at": _now(86_400),
    }
    with fake._lock:
        fake.batches.batches[batch_id] = batch
        fake.batches.created.append(batch_id)
    return 200, _batch_object({**batch, "polls_left": max(1, batch["polls_left"])}, fake.base_url)


def _batch_get(fake: FakeAnthropic, path: str) -> tuple[int, dict[str, Any] | bytes] | None:
    parts = path.split("?", 1)[0].strip("/").split("/")
    if parts[:3] != ["v1", "messages", "batches"] or len(parts) not in (4, 5):
        return None
    batch = fake.batches.batches.get(parts[3])
    if batch is None:
        message = f"message batch {parts[3]} not found"
        return 404, {"type": "error", "error": {"type": "not_found_error", "message": message}}
    if len(parts) == 5:
        if parts[4] != "results" or batch["polls_left"] > 0:
            return None
        lines = "".join(json.dumps(r) + "\n" for r in reversed(batch["results"]))
        return 200, lines.encode()
    with fake._lock:
        shown = dict(batch)
        batch["polls_left"] -= 1
    return 200, _batch_object(shown, fake.base_url)


# -- count_tokens and models ------------------------------------------------------------------

MODELS = ("claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-7")


def _count_tokens(handler: Any, fake: FakeAnthropic, raw: bytes) -> None:
    """`POST /v1/messages/count_tokens`: about 4 characters a token, 404 for unknown models."""
    try:
        body = json.loads(raw)
    except ValueError:
        handler._error(400, "body is not JSON")
        return
    model = str(body.get("model", ""))
    with fake._lock:
        if fake.record_requests:
            fake.requests.append(
                Seen(model, body, {k.lower(): v for k, v in handler.headers.items()}, handler.path)
            )
    if model in fake.unknown_models or not model.startswith("claude-"):
        handler._error(404, f"model: {model}")
        return
    text = json.dumps([body.get("system"), body.get("messages"), body.get("tools")])
    handler._json(200, {"input_tokens": max(1, len(text) // 4)})


def _raw_answer(handler: Any, reply: Reply) -> None:
    data = reply.raw or b""
    handler.send_response(reply.status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def _models(handler: Any, fake: FakeAnthropic) -> None:
    """`GET /v1/models` and `GET /v1/models/ID`."""
    path = handler.path.split("?")[0].rstrip("/")
    entries = [
        {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
        for m in MODELS
    ]
    if path == "/v1/models":
        handler._json(
            200,
            {"data": entries, "has_more": False, "first_id": MODELS[0], "last_id": MODELS[-1]},
        )
        return
    found = [e for e in entries if path.endswith("/" + str(e["id"]))]
    if found:
        handler._json(200, found[0])
    else:
        handler._error(404, f"model: {path.rsplit('/', 1)[-1]}")


# -- faults (the runtime's fault matrix) -------------------------------------------------


def _patched(obj: dict[str, Any], patch: dict[str, Any] | None) -> dict[str, Any]:
    out = dict(obj)
    for k, v in (patch or {}).items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def _fault_message(model: str, r: Reply, f: Fault) -> dict[str, Any]:
    message = _message(model, r)
    if "usage" in message:
        message["usage"] = _patched(message["usage"], f.usage_patch)
    return _patched(message, f.patch)


def _fault_events(model: str, r: Reply, f: Fault) -> list[str]:
    def sse(event: str, data: dict[str, Any]) -> str:
        return f"event: {event}\ndata: {json.dumps(data)}\n\n"

    start = _fault_message(model, r, f)
    start["content"], start["stop_reason"] = [], None
    events = [sse("message_start", {"type": "message_start", "message": start})]
    if f.cut == "start":
        return events
    block = {"type": "text", "text": ""}
    events.append(
        sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        )
    )
    n = max(1, r.chunks)
    size = max(1, -(-len(r.text) // n))
    for i in range(0, len(r.text), size):
        delta = {"type": "text_delta", "text": r.text[i : i + size]}
        events.append(
            sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
        )
        if f.cut == "content":
            return events
    events.append(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
    usage = _patched({"output_tokens": r.output_tokens}, f.usage_patch)
    delta = {"stop_reason": r.stop_reason, "stop_sequence": None}
    events.append(sse("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
    events.append(sse("message_stop", {"type": "message_stop"}))
    return events


def _send_fault(
    handler: BaseHTTPRequestHandler, model: str, body: dict[str, Any], r: Reply, f: Fault
) -> None:
    status = 200
    if f.hang_up:
        _hang_up(handler, f)
        return
    if f.echo_headers:
        quoted = "; ".join(f"{k}: {v}" for k, v in handler.headers.items())
        if body.get("stream") and r.status == 200:
            error = {"type": "error", "error": {"type": "api_error", "message": quoted}}
            start = _message(model, r)
            start["content"], start["stop_reason"] = [], None
            events = [
                {"type": "message_start", "message": start},
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": r.text},
                },
            ]
            text = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
            data = (text + f"event: error\ndata: {json.dumps(error)}\n\n").encode()
            content_type = "text/event-stream"
        else:
            status = r.status if r.status != 200 else 500
            error = {"type": "api_error", "message": f"{r.text}: {quoted}"}
            data = json.dumps({"type": "error", "error": error}).encode()
            content_type = "application/json"
    elif f.echo_credentials:
        status = r.status if r.status != 200 else 500
        key = handler.headers.get("x-api-key")
        auth = handler.headers.get("authorization")
        error = {"type": "api_error", "message": f"{r.text}: x-api-key={key} authorization={auth}"}
        data = json.dumps({"type": "error", "error": error}).encode()
        content_type = "application/json"
    elif f.body is not None:
        data, content_type = f.body, f.content_type
    elif body.get("stream"):
        text = f.sse if f.sse is not None else "".join(_fault_events(model, r, f))
        data, content_type = text.encode(), "text/event-stream"
    else:
        data, content_type = json.dumps(_fault_message(model, r, f)).encode(), "application/json"
    handler.send_response(status)
    handler.send_header("content-type", content_type)
    handler.send_header("request-id", "req_" + uuid.uuid4().hex[:20])
    if body.get("stream") and f.body is None and content_type == "text/event-stream":
        # A stream (cut or not) ends with the connection, as a real one does.
        handler.send_header("connection", "close")
        handler.close_connection = True
    else:
        handler.send_header("content-length", str(len(data)))
    if r.retry_after is not None:
        handler.send_header("retry-after", str(r.retry_after))
    handler.end_headers()
    if not f.trickle:
        handler.wfile.write(data)
        return
    for i in range(len(data)):
        handler.wfile.write(data[i : i + 1])
        handler.wfile.flush()
        time.sleep(f.trickle)


def _hang_up(handler: BaseHTTPRequestHandler, f: Fault) -> None:
    """Send the head and part of a body (if asked), then drop the connection."""
    if f.body is not None:
        handler.send_response(200)
        handler.send_header("content-type", f.content_type)
        handler.send_header("content-length", str(len(f.body) * 2))
        handler.end_headers()
        for i in range(len(f.body)):
            handler.wfile.write(f.body[i : i + 1])
            handler.wfile.flush()
            time.sleep(f.trickle)
    handler.close_connection = True
    handler.connection.shutdown(socket.SHUT_RDWR)


if __name__ == "__main__":
    import sys

    with FakeAnthropic(int(sys.argv[1]) if len(sys.argv) > 1 else 0) as server:
        print(server.base_url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
