"""What the sync and async routers share: a call's state, and how each tier's end is settled.

The routers differ only in how they wait; every decision about an attempt (did it answer,
does a trigger fire, may the request climb, what is recorded and raised) is made here, once.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from pydantic import BaseModel

from policyroute import tracing
from policyroute.decision import Decision
from policyroute.request import Request
from policyroute.request.messages import from_messages_api
from policyroute.runtime.attempts import (
    Attempt,
    EscalationError,
    RoutedResult,
    StreamInterruptedError,
)
from policyroute.runtime.deadlines import Clock, Deadlines
from policyroute.runtime.escalation import ConfidenceFn, JsonExpectation
from policyroute.runtime.ladder import Answer, AttemptHook, Failure, Ladder
from policyroute.runtime.records import RecordSink, new_request_id, record_call, sink_for
from policyroute.runtime.redact import Redactor
from policyroute.runtime.shadowing import AsyncShadow, Served, ThreadShadow
from policyroute.runtime.spend import SpendMeter, key_owner, waits_on_state
from policyroute.runtime.state import State, open_state
from policyroute.runtime.sticky import Sticky, conversation_key, explicit_conversation

if TYPE_CHECKING:
    from policyroute.policy import Classifier, Policy
    from policyroute.store import AsyncPolicyStore, PolicyStore

    PolicyLike: TypeAlias = Policy | PolicyStore | AsyncPolicyStore

Records: TypeAlias = "str | os.PathLike[str] | RecordSink | None"


class PolicySource:
    """A Policy, or a store with `.policy` and `.decide`: whichever is current is used."""

    __slots__ = ("obj",)

    def __init__(self, obj: PolicyLike) -> None:
        if not callable(getattr(obj, "decide", None)):
            raise TypeError(
                f"expected a Policy or a policy store (with .decide), got {type(obj).__name__}"
            )
        self.obj = obj

    @property
    def policy(self) -> Policy:
        policy: Policy = getattr(self.obj, "policy", self.obj)  # type: ignore[arg-type]
        return policy

    def has_classifiers(self) -> bool:
        return bool(getattr(self.policy, "classifiers", None))

    def routed_names(self) -> frozenset[str]:
        """Model names that mean "route me": `auto` and the policy's own name."""
        name = getattr(self.policy, "name", None)
        return frozenset({"auto", name}) if isinstance(name, str) and name else AUTO

    def decide(self, request: Request, classifier: Classifier | None) -> Decision:
        d: Decision = self.obj.decide(request, classifier=classifier)
        return d

    def describe(self) -> str:
        policy = self.policy
        name = getattr(policy, "name", None) or "(unnamed)"
        return f"{name} rev {getattr(policy, 'revision', '?')}"


AUTO = frozenset({"auto"})


@dataclass(slots=True)
class Call:
    """One request on its way through the ladder."""

    params: dict[str, Any]
    max_tokens: int | None
    route: dict[str, Any]
    request: Request
    expect: JsonExpectation | None
    confidence: ConfidenceFn | None
    request_id: str
    start: float
    clock: Clock
    attempts: list[Attempt] = field(default_factory=list)
    # Sticky conversations: the conversation's key, and the tier the rules chose when the
    # conversation's floor raised it.
    conversation: str | None = None
    sticky_from: str | None = None
    # Whose spend this request's cost adds to: {"user": id, "key": hash, "policy": name}.
    owners: dict[str, str] = field(default_factory=dict)
    counted: bool = False
    # The last user turn holds only tool results: the task goes on at its tier.
    continuation: bool = False


class Core(ABC):
    """Preparing a call, settling each tier, recording and raising: shared by both routers."""

    # Set by a router given a ShadowConfig: sends sampled copies to cheaper tiers after success.
    shadowing: ThreadShadow | AsyncShadow | None = None

    def __init__(
        self,
        policy_or_store: PolicyLike,
        records: Records,
        log_prompts: bool,
        deadlines: Deadlines | None,
        state: str | State | None = None,
    ) -> None:
        self.source = PolicySource(policy_or_store)
        self.records = sink_for(records)
        self.log_prompts = log_prompts
        # Sticky floors, spend counters, shadow spend: in this process, or Redis for a fleet.
        self.state = open_state(state)
        self.sticky = Sticky(state=self.state)
        self.spend = SpendMeter(self.state)
        self.deadlines = deadlines if deadlines is not None else Deadlines()
        self.redactor = Redactor()
        # The `key` spend scope of this router's credential (a digest; routers set it).
        self.key: str | None = None
        # Called with each generation attempt once its cost is known (spend counters).
        self.on_attempt: AttemptHook | None = None

    def use_client(self, client: Any) -> None:
        """Take the client's retry budget and credentials (retries are the router's own,
        with bounded waits; the client is shared, its settings otherwise kept)."""
        self.max_retries: int = client.max_retries
        credentials = (client.api_key, getattr(client, "auth_token", None))
        self.redactor = Redactor(credentials)
        self.key = key_owner(*credentials)

    def __repr__(self) -> str:
        d = self.deadlines
        return (
            f"<{type(self).__name__} policy {self.source.describe()}, "
            f"max_retries={getattr(self, 'max_retries', '?')}, request deadline "
            f"{d.request} s, records={'on' if self.records is not None else 'off'}>"
        )

    def prepare(
        self,
        params: dict[str, Any],
        route: Mapping[str, Any] | None,
        response_model: type[BaseModel] | None,
        json_schema: Mapping[str, Any] | None,
        confidence: ConfidenceFn | None,
    ) -> Call:
        start = time.perf_counter()
        model = params.pop("model", None)
        if model is not None and model not in self.source.routed_names():
            raise ValueError(
                f"the router picks the model; got model={model!r} (omit it or use 'auto')"
            )
        if params.pop("stream", False):
            raise ValueError("use router.stream(...) to stream")
        max_tokens = params.pop("max_tokens", None)
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
        ):
            raise ValueError(f"max_tokens must be a whole number above 0, got {max_tokens!r}")
        route = dict(route or {})
        request_params = params if max_tokens is None else {**params, "max_tokens": max_tokens}
        mapped = from_messages_api(request_params, **route)
        policy = self.source.policy
        owners = self.spend.owners(policy, mapped.request.user_id, self.key)
        request = self.spend.attach(policy, mapped.request, owners)
        expect = None
        if response_model is not None or json_schema is not None:
            expect = JsonExpectation(response_model, json_schema)
        explicit = explicit_conversation(params) or mapped.conversation
        conversation = conversation_key(request_params, explicit)
        return Call(
            params=params,
            max_tokens=max_tokens,
            route=route,
            request=request,
            expect=expect,
            confidence=confidence,
            request_id=new_request_id(),
            start=start,
            clock=Clock(self.deadlines, start),
            conversation=conversation,
            owners=owners,
            continuation=mapped.continuation,
        )

    def needs_io(self) -> bool:
        """Whether deciding may wait on the state (a shared state, a sticky or spend policy):
        an async router then decides off its event loop."""
        return waits_on_state(self.state, self.source.policy)

    def count(self, call: Call) -> None:
        """Add the classifier calls' cost to the owners' spend, once, when the request ends
        (generations are counted as each ends, by the ladder's hook)."""
        if not call.counted:
            call.counted = True
            self.spend.count_classifiers(call.owners, call.attempts)

    def stick(self, call: Call, decision: Decision) -> Decision:
        """The decision raised to the conversation's floor when the policy is sticky."""
        decision, call.sticky_from = self.sticky.apply(
            self.source.policy, decision, call.conversation, call.continuation
        )
        return decision

    def ladder(self, call: Call, decision: Decision) -> Ladder:
        """The ladder this call climbs (its attempts are the call's, classifications first)."""
        shadows_for = getattr(self.source.policy, "shadows_for", None)  # a hand-made policy
        ladder = Ladder(
            decision,
            call.clock,
            requested=call.max_tokens,
            thinking=call.params.get("thinking"),
            expect=call.expect,
            confidence=call.confidence,
            shadows_for=shadows_for
            if self.shadowing is not None and callable(shadows_for)
            else None,
            on_attempt=self.spend.hook(call.owners, self.on_attempt),
            redactor=self.redactor,
            attempts=call.attempts,
        )
        return ladder

    def conclude(
        self, call: Call, decision: Decision, ladder: Ladder, step: Answer | Failure
    ) -> RoutedResult:
        """The result of a finished climb; raises EscalationError for a failure."""
        if isinstance(step, Failure):
            raise self.give_up(call, decision, ladder, step)
        return self.success(call, decision, step)

    def record(
        self,
        call: Call,
        decision: Decision,
        outcome: Literal["ok", "failed", "interrupted"],
        error: str | None = None,
        latency: float | None = None,
        shadows: Sequence[Attempt] = (),
    ) -> float:
        if latency is None:
            latency = (time.perf_counter() - call.start) * 1000
        answered = [a for a in call.attempts if a.kind == "generate" and a.status == 200]
        if answered:
            self.sticky.remember(self.source.policy, call.conversation, answered[-1].tier)
        tracing.record_call(
            front_end="router",
            decision=decision,
            attempts=[*call.attempts, *shadows],
            start=call.start,
            outcome=outcome,
            request_id=call.request_id,
            error=error,
            sticky_from=call.sticky_from,
        )
        record_call(
            self.records,
            call,
            decision,
            outcome,
            latency_ms=latency,
            log_prompts=self.log_prompts,
            error=error,
            shadows=shadows,
        )
        return latency

    def success(self, call: Call, decision: Decision, answer: Answer) -> RoutedResult:
        latency = (time.perf_counter() - call.start) * 1000
        self.count(call)
        if not self.shadow(call, decision, answer, latency):
            self.record(call, decision, "ok", latency=latency)
        return RoutedResult(
            message=answer.message,
            decision=decision,
            attempts=tuple(call.attempts),
            request_id=call.request_id,
            latency_ms=latency,
            parsed=answer.parsed,
            final_trigger=answer.trigger,
        )

    def shadow(self, call: Call, decision: Decision, answer: Answer, latency: float) -> bool:
        """Offer a sampled copy to the shadow runner (never blocks, never raises); True when
        the runner writes the decision record once the shadow calls end."""
        if self.shadowing is None or not answer.shadows:
            return False
        served = Served(
            request_id=call.request_id,
            decision=decision,
            params=call.params,
            max_tokens=call.max_tokens,
            route=call.route,
            text=call.request.text,
            answer=call.attempts[-1],
            message=answer.message,
            finish=lambda extra: self.record(call, decision, "ok", latency=latency, shadows=extra),
        )
        return self.shadowing.offer(served, answer.shadows, self.shadow_send)

    @abstractmethod
    def shadow_send(self, params: dict[str, Any]) -> Any:
        """Send one shadow call (the sync or async router's client)."""

    def give_up(
        self, call: Call, decision: Decision, ladder: Ladder, failure: Failure
    ) -> EscalationError:
        self.count(call)
        self.record(
            call, decision, "interrupted" if failure.interrupted else "failed", failure.reason
        )
        cls = StreamInterruptedError if failure.interrupted else EscalationError
        return cls(
            ladder.summary(failure),
            decision=decision,
            attempts=tuple(call.attempts),
            last_error=failure.error,
            last_message=failure.message,
            request_id=call.request_id,
        )
