"""The trigger registry (decision.TRIGGERS) is the one list of escalation triggers: the checker
accepts exactly those, its E116 hint lists them, and docs/language.md's table is made from it."""

from __future__ import annotations

from pathlib import Path

import pytest

import policyroute
from policyroute.compiler.check import TRIGGERS
from policyroute.decision import TRIGGERS as REGISTRY
from policyroute.decision import triggers_table

DOCS = Path(__file__).resolve().parents[2] / "docs" / "language.md"
HEAD = 'tier haiku = "h" { input 1 output 5 }\ntier opus = "o" { input 5 output 25 }\n'


def test_docs_table_is_the_registry() -> None:
    assert triggers_table() in DOCS.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_registered_trigger_is_accepted(name: str) -> None:
    spelled = f"{name} < 0.5" if REGISTRY[name].threshold else name
    policy = policyroute.loads(HEAD + f"default -> haiku\nescalate on {spelled}\n")
    assert policy.escalation is not None and name in policy.escalation.triggers


def test_an_unknown_trigger_lists_the_registry() -> None:
    assert tuple(REGISTRY) == TRIGGERS
    with pytest.raises(policyroute.PolicyError) as e:
        policyroute.loads(HEAD + "default -> haiku\nescalate on lateness\n")
    (d,) = e.value.diagnostics
    assert d.code == "E116" and d.hint == f"the triggers are {', '.join(REGISTRY)}"
