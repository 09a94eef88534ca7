"""The routing runtime: call Claude through a policy, escalate on failure, record every attempt."""

from policyroute.runtime.attempts import (
    Attempt,
    EscalationError,
    RoutedResult,
    StreamInterruptedError,
)
from policyroute.runtime.classifier import AnthropicClassifier
from policyroute.runtime.middleware import RoutingMiddleware
from policyroute.runtime.records import DecisionRecord, JsonlWriter
from policyroute.runtime.router import AsyncRoutedStream, AsyncRouter, RoutedStream, Router

__all__ = [
    "AnthropicClassifier",
    "AsyncRoutedStream",
    "AsyncRouter",
    "Attempt",
    "DecisionRecord",
    "EscalationError",
    "JsonlWriter",
    "RoutedResult",
    "RoutedStream",
    "Router",
    "RoutingMiddleware",
    "StreamInterruptedError",
]
