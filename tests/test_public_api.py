"""The public Python API: light to import, typed attribute checking, one behaviour for every
way a request comes in (keywords, a mapping, request JSON as the CLI reads it)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import policyroute
from policyroute import Request, RequestError

ROOT = Path(__file__).resolve().parent.parent
POLICY = policyroute.load(ROOT / "policies" / "coding-assistant.route")

HEAVY = ("anthropic", "httpx", "watchfiles", "pydantic", "numpy", "starlette", "uvicorn")


def test_import_policyroute_loads_no_heavy_module() -> None:
    code = f"import sys, policyroute; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_runtime_names_resolve_lazily_at_top_level() -> None:
    from policyroute.runtime.attempts import EscalationError
    from policyroute.runtime.middleware import RoutingMiddleware
    from policyroute.runtime.router import AsyncRouter, Router
    from policyroute.store import PolicyStore, awatch, watch

    assert policyroute.Router is Router
    assert policyroute.AsyncRouter is AsyncRouter
    assert policyroute.RoutingMiddleware is RoutingMiddleware
    assert policyroute.EscalationError is EscalationError
    assert (policyroute.watch, policyroute.awatch, policyroute.PolicyStore) == (
        watch,
        awatch,
        PolicyStore,
    )
    assert {"Router", "watch", "__version__"} <= set(dir(policyroute))
    with pytest.raises(AttributeError, match="no attribute 'Routr'"):
        _ = policyroute.Routr  # type: ignore[attr-defined]


def test_version_is_the_one_the_command_prints() -> None:
    from policyroute.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert (ROOT / "policyroute" / "py.typed").exists()
    assert policyroute.__version__.count(".") == 2


# -- attribute types ----------------------------------------------------------------------

COUNTS = ("files", "context_tokens")
STRINGS = ("task", "domain", "user_tier", "user_id")

not_a_count = st.one_of(
    st.text(max_size=5),
    st.booleans(),
    st.floats().filter(lambda f: not (math.isfinite(f) and f.is_integer())),
    st.integers(max_value=-1),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
not_a_string = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.booleans(), st.lists(st.text(), max_size=1)
)


def _route_json(key: str, value: Any) -> dict[str, Any]:
    """The same attribute as `route --request` JSON carries it."""
    if key in ("user_tier", "user_id"):
        route: dict[str, Any] = {"user": {key.removeprefix("user_"): value}}
    else:
        route = {key: value}
    return {"messages": [{"role": "user", "content": "hello"}], "route": route}


def _outcome(call: Any) -> str:
    try:
        call()
    except RequestError as e:
        return "error: " + str(e).split(":", 1)[0].removeprefix("route.").replace("user.", "user_")
    return "accepted"


def _refused_alike(key: str, value: Any) -> None:
    """Keywords, a mapping and route JSON refuse the value with the same located error."""
    keyword = _outcome(lambda: POLICY.decide(prompt="hello", **{key: value}))
    mapping = _outcome(lambda: POLICY.decide({"prompt": "hello", key: value}))
    from_json = _outcome(lambda: Request.from_json(_route_json(key, value)))
    assert keyword == mapping == from_json == f"error: {key}"


@given(key=st.sampled_from(COUNTS), value=not_a_count)
def test_a_wrong_count_is_refused_the_same_way_everywhere(key: str, value: Any) -> None:
    _refused_alike(key, value)


@given(key=st.sampled_from(STRINGS), value=not_a_string)
def test_a_wrong_string_is_refused_the_same_way_everywhere(key: str, value: Any) -> None:
    _refused_alike(key, value)


@given(
    files=st.one_of(st.none(), st.integers(0, 20), st.integers(0, 20).map(float)),
    context_tokens=st.one_of(st.none(), st.integers(0, 200_000)),
    user_tier=st.one_of(st.none(), st.sampled_from(["free", "pro"])),
    prompt=st.text(max_size=40),
)
def test_valid_attributes_decide_alike_in_every_form(
    files: Any, context_tokens: Any, user_tier: Any, prompt: str
) -> None:
    attrs = {
        k: v
        for k, v in {
            "files": files,
            "context_tokens": context_tokens,
            "user_tier": user_tier,
        }.items()
        if v is not None
    }
    by_keywords = POLICY.decide(prompt=prompt, **attrs)
    by_mapping = POLICY.decide({"prompt": prompt, **attrs})
    route: dict[str, Any] = {k: v for k, v in attrs.items() if k != "user_tier"}
    if user_tier is not None:
        route["user"] = {"tier": user_tier}
    by_json = POLICY.decide(
        Request.from_json({"messages": [{"role": "user", "content": prompt}], "route": route})
    )
    assert by_keywords.rule == by_mapping.rule == by_json.rule


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: POLICY.decide(prompt="x", files="3"),
            "files: must be a whole number, got str '3'",
        ),
        (lambda: POLICY.decide(prompt="x", context_tokens="120000"), "context_tokens: must be"),
        (lambda: POLICY.decide(prompt=b"x"), "prompt: must be a string"),
        (lambda: POLICY.decide(prompt="x", metadata=["a"]), "metadata: must be an object"),
        (lambda: POLICY.decide(prompt="x", metadata={"k": None}), "metadata.k: must be a string"),
        (lambda: POLICY.decide(prompt="x", has_tools="yes"), "has_tools: must be true or false"),
        (lambda: POLICY.decide(prompt="x", fils=3), "unknown attribute(s) fils"),
        (lambda: POLICY.decide(42), "decide() takes a Request or a mapping"),
        (lambda: POLICY.decide({"prompt": "x", "files": -1}), "files: must be 0 or more"),
    ],
)
def test_wrong_types_name_the_attribute(call: Any, message: str) -> None:
    with pytest.raises(RequestError) as e:
        call()
    assert message in str(e.value)


def test_a_mapping_decides_like_keywords() -> None:
    attrs = {"prompt": "Find the deadlock between these two worker pools", "files": 2}
    assert POLICY.decide(attrs) == POLICY.decide(**attrs)
    assert (
        POLICY.decide({"prompt": "hi", "files": 3.0}).rule
        == POLICY.decide(prompt="hi", files=3).rule
    )


def test_a_request_cannot_be_changed_but_copies_and_pickles() -> None:
    """decide()'s generated code reads attributes without testing their types again, so a
    Request keeps what its checks allowed: it is immutable, and copies keep it whole."""
    import copy
    import pickle

    r = Request("Fix the race", task="debug", files=3, metadata={"seats": 4})
    with pytest.raises(AttributeError, match="replace"):
        r.task = 5  # type: ignore[assignment]
    with pytest.raises(AttributeError):
        del r.prompt
    for twin in (pickle.loads(pickle.dumps(r)), copy.copy(r), copy.deepcopy(r)):
        assert repr(twin) == repr(r) and twin.text == r.text
    changed = r.replace(task="review")
    assert (changed.task, r.task) == ("review", "debug")
