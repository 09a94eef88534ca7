"""The routing runtime: call Claude through a policy, escalate on failure, record every attempt."""

from policyroute.runtime.answers import MalformedAnswerError
from policyroute.runtime.attempts import (
    Attempt,
    EscalationError,
    RoutedResult,
    StreamInterruptedError,
)
from policyroute.runtime.classifier import AnthropicClassifier
from policyroute.runtime.deadlines import DeadlineExceeded, Deadlines
from policyroute.runtime.middleware import RoutingMiddleware
from policyroute.runtime.records import DecisionRecord, JsonlWriter
from policyroute.runtime.router import AsyncRoutedStream, AsyncRouter, RoutedStream, Router

__all__ = [
    "AnthropicClassifier",
    "AsyncRoutedStream",
    "AsyncRouter",
    "Attempt",
    "DeadlineExceeded",
    "Deadlines",
    "DecisionRecord",
    "EscalationError",
    "JsonlWriter",
    "MalformedAnswerError",
    "RoutedResult",
    "RoutedStream",
    "Router",
    "RoutingMiddleware",
    "StreamInterruptedError",
]
