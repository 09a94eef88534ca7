"""The attribute registry is the one table of attributes: what it holds is what the checker,
the compiler, inline tests, witnesses, the CLI and the docs know, and nothing else is needed
to add one."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import policyroute
from policyroute import Request, RequestError
from policyroute.analysis import witness
from policyroute.cli import main
from policyroute.compiler.inline_tests import run_tests
from policyroute.request import attributes
from policyroute.request.attributes import INT, STRING, Attribute, Family

DOCS = Path(__file__).resolve().parents[2] / "docs" / "language.md"

POLICY = """\
tier haiku = "claude-haiku-4-5" { input 1 output 5 }
tier opus = "claude-opus-4-7" { input 5 output 25 }

rule big_team: seats > 50 and plan.region == "eu" -> opus
rule quota:    quota.gpu > 3 -> opus
default -> haiku

test "a big team in the EU" { prompt = "hi" seats = 60 plan.region = "eu" } -> opus by big_team
test "a small team" { prompt = "hi" seats = 6 plan.region = "eu" } -> haiku by default
test "a large quota" { prompt = "hi" quota.gpu = 4 } -> opus by quota
"""


@pytest.fixture
def synthetic() -> Iterator[None]:
    """Three attributes added through the registry alone, as a plugin would add them."""
    attributes.register(
        Attribute("seats", INT, "seats the customer bought", field="seats", route=("seats",))
    )
    attributes.register(
        Attribute(
            "plan.region",
            STRING,
            "the plan's region",
            field="plan_region",
            route=("plan", "region"),
        )
    )
    attributes.register_family(
        Family("quota", attributes.DYNAMIC, "a quota", field="quotas", route=("quotas",))
    )
    try:
        yield
    finally:
        attributes.unregister("seats")
        attributes.unregister("plan.region")
        attributes.unregister_family("quota")


def test_docs_tables_are_the_registry() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert attributes.docs_table() in text
    assert attributes.test_table() in text


def test_an_attribute_added_through_the_registry_routes(synthetic: None) -> None:
    policy = policyroute.loads(POLICY)
    assert policy.decide(prompt="x", seats=60, plan_region="eu").rule == "big_team"
    assert policy.decide(prompt="x", seats=60).rule == "default"  # plan.region missing
    assert policy.decide(prompt="x", quotas={"gpu": 5}).rule == "quota"
    obj = {
        "messages": [{"role": "user", "content": "x"}],
        "route": {"seats": 51, "plan": {"region": "eu"}},
    }
    request = Request.from_json(obj)
    assert request.extra == {"seats": 51, "plan_region": "eu"}
    assert policy.decide(request).rule == "big_team"
    assert policy.decide(request, explain=True).rule == "big_team"
    # The same checks as a built-in attribute's, with the same messages.
    with pytest.raises(RequestError, match=r"route\.seats: must be a whole number"):
        Request.from_json({**obj, "route": {"seats": "many"}})
    with pytest.raises(RequestError, match=r"route\.plan: unknown key\(s\) zone; known: region"):
        Request.from_json({**obj, "route": {"plan": {"zone": "eu"}}})
    assert Request("x", seats=3).replace(prompt="y").extra == {"seats": 3}


def test_an_attribute_added_through_the_registry_is_tested_and_witnessed(
    synthetic: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = policyroute.loads(POLICY)
    assert [r.passed for r in run_tests(policy)] == [True, True, True]
    found = witness(policy, "big_team")
    assert found is not None
    assert found["route"]["plan"] == {"region": "eu"} and found["route"]["seats"] > 50
    assert policy.decide(Request.from_json(found)).rule == "big_team"

    path = tmp_path / "team.route"
    path.write_text(POLICY)
    assert main(["test", str(path)]) == 0
    capsys.readouterr()
    assert main(["explain", str(path), "--rule", "big_team"]) == 0
    explained = json.loads(capsys.readouterr().out)
    assert policy.decide(Request.from_json(explained)).rule == "big_team"
    args = ["route", str(path), "--prompt", "hi", "--format", "json"]
    assert main([*args, "--attr", "seats=70", "--attr", "plan.region=eu"]) == 0
    assert json.loads(capsys.readouterr().out)["rule"] == "big_team"
    assert main([*args, "--attr", "quota.gpu=9"]) == 0
    assert json.loads(capsys.readouterr().out)["rule"] == "quota"
    assert main([*args, "--attr", "seats=lots"]) == 2
    assert "--attr seats: must be a whole number" in capsys.readouterr().err


def test_the_checker_knows_only_what_is_registered(synthetic: None) -> None:
    attributes.unregister("seats")
    try:
        with pytest.raises(policyroute.PolicyError, match="E105"):
            policyroute.loads(POLICY)
    finally:
        attributes.register(
            Attribute("seats", INT, "seats the customer bought", field="seats", route=("seats",))
        )


def test_every_attribute_has_what_the_system_needs() -> None:
    for a in attributes.ATTRIBUTES.values():
        assert a.doc and a.type in (attributes.TEXT, INT, STRING, attributes.BOOL)
        assert re.fullmatch(r"[a-z_.]+", a.name)
        if a.settable:  # a value a request can carry: from the messages or the route object
            assert a.field in Request.__slots__
            assert a.route is not None or a.witness != "route"
    assert policyroute.loads(POLICY.split("\n\nrule")[0] + "\ndefault -> haiku\n")
