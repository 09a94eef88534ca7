"""The pairs file: one JSON line per shadowed request, written by the runtime and read by
`policyroute judge`.

A pair holds the request (as a TRAFFIC line `policyroute replay` reads: Messages API
parameters, a `route` object and an `id`), the decision that routed it, the policy revision,
and both answers: the one the caller got (`routed`) and the shadow tier's (`shadow`), each with
its real usage and cost. Prompts and answers are kept only when the caller opted in
(`log_prompts=True`, as with decision records); otherwise the request is reduced to its
length and digest and the answers to their lengths, which is enough to count and cost but not
to judge. A pair may also carry a `reference` answer, added by whoever prepares the file,
for the deterministic `--mode reference` judge.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PAIRS_VERSION = 1


class Usage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)
    cache_creation_tokens: int = Field(0, ge=0)
    cache_read_tokens: int = Field(0, ge=0)


class Answer(BaseModel):
    """One tier's answer to the request."""

    model_config = ConfigDict(extra="forbid")

    tier: str
    model: str
    text: str | None = None  # None unless prompts and answers are kept
    chars: int = Field(0, ge=0)
    stop_reason: str | None = None
    usage: Usage = Field(default_factory=lambda: Usage.model_validate({}))
    cost_usd: float = Field(0.0, ge=0)
    latency_ms: float = Field(0.0, ge=0)


class PromptDigest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    length: int
    sha256: str


class DecisionRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: str
    model: str
    rule: str


class Pair(BaseModel):
    """One shadowed request and both answers."""

    model_config = ConfigDict(extra="allow")  # room for the preparer's own fields

    v: int = PAIRS_VERSION
    kind: Literal["shadow_pair"] = "shadow_pair"
    id: str = Field(min_length=1)
    time: str = ""
    policy: str | None = None
    revision: str = ""
    decision: DecisionRef
    request: dict[str, Any] | None = None  # a TRAFFIC request line, when prompts are kept
    prompt: PromptDigest | None = None
    routed: Answer
    shadow: Answer
    reference: Any = None

    def has_text(self) -> bool:
        return (
            self.request is not None
            and self.routed.text is not None
            and self.shadow.text is not None
        )
