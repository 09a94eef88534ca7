"""policyroute: routing policy for Claude as a reviewed text file.

import policyroute
policy = policyroute.load("policies/coding-assistant.route")
decision = policy.decide(prompt="Find the deadlock", task="debug")
decision.tier, decision.model, decision.rule
"""

from .decision import (
    Classification,
    ClassifierSpec,
    Decision,
    Escalation,
    Step,
    Tier,
)
from .policy import Classifier, Policy, StaticClassifier, load, loads
from .request import Request, RequestError
from .syntax.diagnostics import Diagnostic, PolicyError

__all__ = [
    "Classification",
    "Classifier",
    "ClassifierSpec",
    "Decision",
    "Diagnostic",
    "Escalation",
    "Policy",
    "PolicyError",
    "Request",
    "RequestError",
    "StaticClassifier",
    "Step",
    "Tier",
    "load",
    "loads",
]
