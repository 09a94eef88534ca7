"""The Anthropic-backed classifier: asks a declared classifier's tier for a label.

`Policy.decide` calls it lazily, at most once per classifier per request; each call is
recorded as an attempt of kind "classify" with its cost, so the records show what routing
itself spent.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import anthropic
from anthropic.types import Message

from policyroute.decision import (
    ERROR,
    FAILED_CLASSIFICATION,
    INVALID_JSON,
    Classification,
    ClassifierSpec,
)
from policyroute.request import Request
from policyroute.runtime.answers import check_message, extract_json, message_text
from policyroute.runtime.attempts import Attempt
from policyroute.runtime.deadlines import Clock
from policyroute.runtime.escalation import describe

CLASSIFY_MAX_TOKENS = 256

Recorder = Callable[[Attempt], None]


# Anything with `.messages.create(**params) -> Message`: an `Anthropic` client or a bridge.
# (Structural typing against the SDK's overloaded `create` is more noise than help.)
MessagesClient = Any


def classify_params(spec: ClassifierSpec, request: Request) -> dict[str, Any]:
    labels = json.dumps(list(spec.labels))
    system = (
        f"{spec.prompt}\n\nAnswer with only a JSON object and nothing else: "
        f'{{"label": <one of {labels}>, "confidence": <a number from 0 to 1>}}'
    )
    text = request.text or request.prompt or ""
    limit = spec.tier.max_tokens
    return {
        "model": spec.tier.model,
        "max_tokens": min(CLASSIFY_MAX_TOKENS, limit) if limit else CLASSIFY_MAX_TOKENS,
        "system": system,
        "messages": [{"role": "user", "content": text or "(empty request)"}],
    }


def parse_classification(spec: ClassifierSpec, text: str) -> Classification:
    """A label from `spec.labels` and a confidence in [0, 1]; anything else is a failure."""
    try:
        obj = extract_json(text)
    except ValueError:
        return FAILED_CLASSIFICATION
    if not isinstance(obj, Mapping):
        return FAILED_CLASSIFICATION
    label = obj.get("label")
    if not isinstance(label, str) or label not in spec.labels:
        return FAILED_CLASSIFICATION
    conf = obj.get("confidence", 1.0)
    if isinstance(conf, bool) or not isinstance(conf, int | float):
        return FAILED_CLASSIFICATION
    return Classification(label, min(max(float(conf), 0.0), 1.0))


# One classification is a short answer: it gets one try, at most this long (and never past
# the request's deadline). A failed classification routes as the policy says it should.
CLASSIFY_SECONDS = 60.0


class AnthropicClassifier:
    """The `Classifier` protocol over the Messages API. Never raises: failure is a result.

    `clock` bounds each call by the routed request's deadline.
    """

    def __init__(
        self,
        client: MessagesClient,
        recorder: Recorder | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.clock = clock

    def __repr__(self) -> str:
        return f"<AnthropicClassifier over {type(self.client).__name__}>"

    def _timeout(self) -> float:
        if self.clock is None:
            return CLASSIFY_SECONDS
        return max(min(CLASSIFY_SECONDS, self.clock.remaining()), 0.001)

    def classify(self, spec: ClassifierSpec, request: Request) -> Classification:
        tier = spec.tier
        attempt = Attempt(kind="classify", tier=tier.name, model=tier.model, classifier=spec.name)
        start = time.perf_counter()
        result = FAILED_CLASSIFICATION
        secrets = (getattr(self.client, "api_key", None),)
        try:
            params = classify_params(spec, request)
            message = check_message(self.client.messages.create(**params, timeout=self._timeout()))
            attempt.answered(message, tier, start)
        except anthropic.APIError as e:
            attempt.error = describe(e, secrets)
            attempt.status = getattr(e, "status_code", None)
            attempt.trigger = ERROR.name
        except Exception as e:  # a classifier must never take routing down with it
            attempt.error = describe(e, secrets)
            attempt.trigger = ERROR.name
        else:
            result = parse_classification(spec, message_text(message))
            if result.label is None:
                attempt.trigger = INVALID_JSON.name
        attempt.latency_ms = (time.perf_counter() - start) * 1000
        if self.recorder is not None:
            self.recorder(attempt)
        return result


class _BlockingMessages:
    def __init__(self, client: anthropic.AsyncAnthropic, loop: asyncio.AbstractEventLoop) -> None:
        self._client = client
        self._loop = loop

    def create(self, **params: Any) -> Message:
        coro = self._client.messages.create(**params)
        message: Message = asyncio.run_coroutine_threadsafe(coro, self._loop).result()
        return message


class BlockingBridge:
    """An AsyncAnthropic seen as a sync client, for a decide() run in a worker thread.

    `Policy.decide` is synchronous; under asyncio it runs in a thread and its classifier
    calls are scheduled back on the caller's event loop, so one client serves both.
    """

    def __init__(self, client: anthropic.AsyncAnthropic, loop: asyncio.AbstractEventLoop) -> None:
        self.messages = _BlockingMessages(client, loop)
