"""policyroute: routing policy for Claude as a reviewed text file.

import policyroute
policy = policyroute.load("policies/coding-assistant.route")
decision = policy.decide(prompt="Find the deadlock", task="debug")
decision.tier, decision.model, decision.rule
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .decision import (
    Classification,
    Classifier,
    ClassifierSpec,
    Decision,
    Escalation,
    StaticClassifier,
    Step,
    Tier,
)
from .policy import Policy, load, loads
from .request import Request, RequestError
from .syntax.diagnostics import Diagnostic, PolicyError

if TYPE_CHECKING:
    from .runtime.attempts import EscalationError
    from .runtime.middleware import RoutingMiddleware
    from .runtime.router import AsyncRouter, Router
    from .store import PolicyStore, awatch, watch


# The runtime and the store pull in the Anthropic SDK and watchfiles: they load on first
# use, so `import policyroute` (and every command that only checks policies) stays light.
_LAZY = {
    "AsyncRouter": "runtime.router",
    "EscalationError": "runtime.attempts",
    "PolicyStore": "store",
    "Router": "runtime.router",
    "RoutingMiddleware": "runtime.middleware",
    "awatch": "store",
    "watch": "store",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'policyroute' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AsyncRouter",
    "Classification",
    "Classifier",
    "ClassifierSpec",
    "Decision",
    "Diagnostic",
    "Escalation",
    "EscalationError",
    "Policy",
    "PolicyError",
    "PolicyStore",
    "Request",
    "RequestError",
    "Router",
    "RoutingMiddleware",
    "StaticClassifier",
    "Step",
    "Tier",
    "__version__",
    "awatch",
    "load",
    "loads",
    "watch",
]
