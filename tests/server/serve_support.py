"""Running the proxy for tests: uvicorn in a thread on 127.0.0.1, a random port."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from policyroute.server.app import ServeConfig, create_app

HAIKU, SONNET, OPUS = "claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-7"

POLICY_TEXT = f"""
policy "serve-test"

tier haiku  = "{HAIKU}"  {{ input 1.00  output 5.00   max_tokens 4096 }}
tier sonnet = "{SONNET}" {{ input 3.00  output 15.00  max_tokens 16384 }}
tier opus   = "{OPUS}"   {{ input 5.00  output 25.00  max_tokens 32768 }}

keywords hard = ["deadlock", "race condition"]

rule hard_words: prompt contains any hard              -> opus
rule review:     task == "review"                      -> sonnet
rule free:       user.tier == "free"                   -> haiku
rule tools:      has_tools and turns > 2               -> sonnet
rule pinned:     task == "pinned"                      -> haiku escalate never
rule quick:      length < 200                          -> haiku max_tokens 1024
default                                                -> sonnet

escalate on error, timeout, max_tokens, refusal max 2
sticky conversations 10 minutes
"""


class ServerThread:
    """The app under uvicorn in a daemon thread; `url` once started."""

    def __init__(self, config: ServeConfig, **uvicorn_options: Any) -> None:
        self.app = create_app(config)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        options = {"log_level": "warning", "lifespan": "on", **uvicorn_options}
        self.server = uvicorn.Server(uvicorn.Config(self.app, **options))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state(self) -> Any:
        return self.app.state.policyroute

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_records(proxy: ServerThread) -> list[dict[str, Any]]:
    """The records written so far. A stream's record is written when the server finishes
    the response, which can be just after the client has read its last event: wait until
    at least one line is there and nothing new arrived for a moment (bounded)."""
    path = Path(proxy.state.config.records)
    end = time.monotonic() + 10
    seen, quiet_since = -1, time.monotonic()
    while time.monotonic() < end:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        if len(lines) != seen:
            seen, quiet_since = len(lines), time.monotonic()
        elif lines and time.monotonic() - quiet_since > 0.15:
            break
        time.sleep(0.02)
    return [json.loads(x) for x in lines]
