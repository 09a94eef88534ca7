"""Building pairs files for the judge tests, in the format the runtime writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from policyroute.pairs import Answer, DecisionRef, Pair, Usage

HAIKU, SONNET, OPUS = "claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-7"
JUDGE = OPUS


def pair(
    pid: str,
    prompt: str,
    routed: str | None,
    shadow: str | None,
    *,
    reference: Any = None,
    kept: bool = True,
) -> dict[str, Any]:
    request = {"messages": [{"role": "user", "content": prompt}], "max_tokens": 512}
    p = Pair(
        id=pid,
        time="2026-01-01T00:00:00.000Z",
        policy="t",
        revision="abc",
        decision=DecisionRef(tier="sonnet", model=SONNET, rule="default"),
        request={**request, "route": {"task": "qa"}, "id": pid} if kept else None,
        routed=_answer("sonnet", SONNET, routed, kept, 40, (3, 15)),
        shadow=_answer("haiku", HAIKU, shadow, kept, 30, (1, 5)),
        reference=reference,
    )
    return p.model_dump(mode="json", exclude_none=True)


def write(path: Path, pairs: list[dict[str, Any]], extra_lines: list[str] = ()) -> Path:  # type: ignore[assignment]
    lines = [p if isinstance(p, str) else json.dumps(p) for p in pairs] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def outcomes(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def _answer(
    tier: str,
    model: str,
    text: str | None,
    kept: bool,
    output_tokens: int,
    prices: tuple[float, float],
) -> Answer:
    """An answer to a 20-token prompt, costed at (input, output) USD per million tokens; its
    text is in the pair only when `kept`, its length always."""
    return Answer(
        tier=tier,
        model=model,
        text=text if kept else None,
        chars=len(text or ""),
        usage=Usage(input_tokens=20, output_tokens=output_tokens),
        cost_usd=prices[0] * (20 / 1e6) + prices[1] * (output_tokens / 1e6),
    )
