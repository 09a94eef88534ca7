"""The pure ladder: generated policies, caller parameters and outcomes, no network.

Every front end drives `runtime/ladder.py`; these properties hold for all of them at once.
"""

from __future__ import annotations

import itertools
from typing import Any

import anthropic
import pytest
from anthropic.types import Message
from hypothesis import given, settings
from hypothesis import strategies as st

import policyroute
from policyroute.runtime import sdk
from policyroute.runtime.deadlines import Clock, DeadlineExceeded, Deadlines
from policyroute.runtime.escalation import cap_for
from policyroute.runtime.ladder import (
    MIN_THINKING_BUDGET,
    Answer,
    Failure,
    Ladder,
    Tried,
    Try,
    fit_thinking,
)
from policyroute.runtime.redact import MASK, Redactor

NO_DEADLINE = Deadlines(request=None)


def _message(stop: str = "end_turn") -> Message:
    return Message.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "content": [{"type": "text", "text": "hi"}],
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 4},
        }
    )


def _status(code: int, text: str = "bad") -> anthropic.APIStatusError:
    request = sdk.http.Request("POST", "http://upstream/v1/messages")
    response = sdk.http.Response(code, request=request)
    body = {"type": "error", "error": {"type": "x", "message": text}}
    return anthropic.APIStatusError(text, response=response, body=body)


def _policy(caps: tuple[int | None, int | None, int | None], rule_cap: int | None) -> Any:
    def tier(name: str, c: int | None) -> str:
        extra = f" max_tokens {c}" if c is not None else ""
        return f'tier {name} = "{name}-model" {{ input 1 output 5{extra} }}\n'

    rule = f" max_tokens {rule_cap}" if rule_cap is not None else ""
    return policyroute.loads(
        'policy "ladder"\n'
        + tier("haiku", caps[0])
        + tier("sonnet", caps[1])
        + tier("opus", caps[2])
        + f'rule cheap: task == "x" -> haiku{rule}\n'
        + "default -> sonnet\n"
        + "escalate on error, timeout, max_tokens, refusal max 2\n"
    )


OUTCOMES = st.sampled_from(
    ["ok", "max_tokens", "refusal", "500", "400", "404", "timeout", "sent-error", "sent-refusal"]
)


def _tried(kind: str) -> Tried:
    return {
        "ok": lambda: Tried(message=_message()),
        "max_tokens": lambda: Tried(message=_message("max_tokens")),
        "refusal": lambda: Tried(message=_message("refusal")),
        "500": lambda: Tried(error=_status(500)),
        "400": lambda: Tried(error=_status(400)),
        "404": lambda: Tried(error=_status(404)),
        "timeout": lambda: Tried(error=DeadlineExceeded("late")),
        "sent-error": lambda: Tried(error=_status(529), sent=True),
        "sent-refusal": lambda: Tried(message=_message("refusal"), sent=True),
    }[kind]()


cap = st.one_of(st.none(), st.integers(1, 64_000))
thinking = st.one_of(
    st.none(),
    st.builds(lambda b: {"type": "enabled", "budget_tokens": b}, st.integers(1024, 40_000)),
    st.just({"type": "adaptive"}),
)


@settings(max_examples=300, deadline=None)
@given(
    caps=st.tuples(cap, cap, cap),
    rule_cap=cap,
    requested=st.one_of(st.none(), st.integers(1, 100_000)),
    think=thinking,
    outcomes=st.lists(OUTCOMES, min_size=3, max_size=3),
)
def test_every_rung_is_a_valid_request_within_its_cap(
    caps: tuple[int | None, int | None, int | None],
    rule_cap: int | None,
    requested: int | None,
    think: Any,
    outcomes: list[str],
) -> None:
    decision = _policy(caps, rule_cap).decide(task="x")
    ladder = Ladder(decision, Clock(NO_DEADLINE, 0.0), requested=requested, thinking=think)
    body = {"messages": [], **({"thinking": think} if think is not None else {})}
    step: Any = ladder.first()
    tries: list[Try] = []
    for kind in outcomes:
        if not isinstance(step, Try):
            break
        tries.append(step)
        params = step.params(body)
        c = cap_for(decision, step.index, step.tier)
        assert c is None or params["max_tokens"] <= c  # the cap is a ceiling
        sent = params.get("thinking")
        budget = sent.get("budget_tokens") if isinstance(sent, dict) else None
        callers_own = requested is not None and params["max_tokens"] == requested
        if budget is not None and not callers_own:  # a pair routing made is always valid
            assert MIN_THINKING_BUDGET <= budget < params["max_tokens"]
        step = ladder.settle(step, _tried(kind))
        last = kind
        if kind in ("400", "404"):
            assert isinstance(step, Failure) and step.callers
            assert tries[-1].attempt.trigger is None  # the caller's error fires no trigger
        if kind.startswith("sent"):
            assert not isinstance(step, Try)  # content sent: never retried on another tier
            assert isinstance(step, Failure) == (kind == "sent-error")
            assert not isinstance(step, Failure) or step.interrupted
    assert [t.index for t in tries] == list(range(len(tries)))
    assert len(ladder.generations) == len(tries) <= len(ladder.tiers)
    if isinstance(step, Answer) and last == "ok":
        assert step.trigger is None
    for a, b in itertools.pairwise(tries):
        if a.attempt.trigger == "max_tokens":
            assert b.max_tokens > a.max_tokens  # a climb for room always gives more room


def test_a_deadline_past_stops_the_climb() -> None:
    decision = _policy((None, None, None), None).decide(task="x")
    ladder = Ladder(decision, Clock(Deadlines(request=0.001), 0.0))
    step = ladder.settle(ladder.first(), Tried(error=_status(529)))
    assert isinstance(step, Failure) and step.expired
    assert "deadline has passed" in ladder.summary(step)


@pytest.mark.parametrize(
    ("thinking", "max_tokens", "expected"),
    [
        ({"type": "enabled", "budget_tokens": 8000}, 2048, 1024),
        ({"type": "enabled", "budget_tokens": 8000}, 6000, 3000),
        ({"type": "enabled", "budget_tokens": 8000}, 1025, 1024),
        ({"type": "enabled", "budget_tokens": 1500}, 9000, None),  # fits: unchanged
        ({"type": "adaptive"}, 512, None),  # no budget to fit
    ],
)
def test_thinking_budget_fits_under_a_cap(thinking: Any, max_tokens: int, expected: Any) -> None:
    fitted, note = fit_thinking(thinking, max_tokens, capped=True)
    if expected is None:
        assert fitted is None and note is None
    else:
        assert fitted["budget_tokens"] == expected and "lowered" in (note or "")


def test_a_cap_too_small_for_thinking_turns_it_off() -> None:
    fitted, note = fit_thinking({"type": "enabled", "budget_tokens": 8000}, 1024, capped=True)
    assert fitted == {"type": "disabled"} and "thinking off" in (note or "")


def test_the_cost_hook_sees_every_settled_attempt() -> None:
    decision = _policy((None, None, None), None).decide(task="x")
    seen: list[tuple[str, float]] = []
    ladder = Ladder(
        decision, Clock(NO_DEADLINE, 0.0), on_attempt=lambda a: seen.append((a.tier, a.cost_usd))
    )
    step = ladder.settle(ladder.first(), Tried(error=_status(500)))
    assert isinstance(step, Try)
    assert isinstance(ladder.settle(step, Tried(message=_message())), Answer)
    assert [t for t, _ in seen] == ["haiku", "sonnet"]
    assert seen[0][1] == 0 and seen[1][1] > 0


def test_attempt_errors_are_redacted_with_the_contexts_secrets() -> None:
    decision = _policy((None, None, None), None).decide(task="x")
    key = "held-secret-0123456789"
    ladder = Ladder(decision, Clock(NO_DEADLINE, 0.0), redactor=Redactor([key]))
    text = f"echo x-api-key: {key} and sk-ant-api03-abcdef"
    step = ladder.settle(ladder.first(), Tried(error=_status(400, text)))
    assert isinstance(step, Failure)
    error = ladder.attempts[0].error or ""
    assert key not in error and "sk-ant-api03" not in error and MASK in error
    assert key not in step.reason and key not in ladder.summary(step)
