"""Policies no bench was tuned for: 10 rules drawn at random from every kind a condition
can take, and the keyword attributes of requests for them.

`mixed_policy(seed)` draws each rule's kind (phrase sets, `contains all`, regexes, strings,
numbers, metadata, flags, the system prompt, `and`/`or`/`not` of these) and its values from
the seed alone, so a seed names one policy and nobody picks the rules a router is good at.
The phrases come from the bench's prose vocabulary (so some requests hit them) and from
words it never writes (so most rules are passed over, the chain's worst case).
"""

from __future__ import annotations

import random
from typing import Any

from words import VOCAB, prose

TIERS = """tier haiku = "claude-haiku-4-5" { input 1 output 5 }
tier sonnet = "claude-sonnet-4-6" { input 3 output 15 }
tier opus = "claude-opus-4-7" { input 5 output 25 }
"""
RARE = ["deadlock", "heisenbug", "threat model", "race condition", "sort imports", "typo"]
RARE += ["refactor", "memory leak", "docstring", "boilerplate", "flaky test", "rename"]
TASKS = ["format", "classify", "extract", "summarize", "analyze"]
USER_TIERS = ["free", "paid", "enterprise"]
DOMAINS = ["security", "billing", "payments", "support"]
REGEXES = [
    r"/Traceback \(most recent call last\)/",
    r"/\b(select|update)\b.+\bfrom\b/i",
    r"/goroutine \d+ \[running\]/",
    r"/[A-Z]{3}-\d{3,}/",
    r"/\bthread\b.*\block\b/",
]


# Prose words no other word holds: the chain's substring test and decide()'s word test agree
# on them (a phrase of two prose words would not: prose breaks lines between words).
COMMON = sorted(w for w in VOCAB if len(w) >= 5 and not any(w in o for o in VOCAB + RARE if o != w))


def _phrases(rng: random.Random, n: int) -> list[str]:
    return rng.sample(RARE + rng.sample(COMMON, 3), n)


def _quoted(words: list[str]) -> str:
    return "[" + ", ".join(f'"{w}"' for w in words) + "]"


def _atom(rng: random.Random, sets: list[str]) -> str:
    """One condition of a randomly drawn kind; keyword sets it names are added to `sets`."""
    kind = rng.randrange(12)
    if kind == 0:
        sets.append(f"keywords k{len(sets)} = {_quoted(_phrases(rng, rng.randint(2, 6)))}")
        return f"prompt contains any k{len(sets) - 1}"
    if kind == 1:
        return f"prompt contains all {_quoted(_phrases(rng, 2))}"
    if kind == 2:
        return f"prompt matches {rng.choice(REGEXES)}"
    if kind == 3:
        return f"task in {_quoted(rng.sample(TASKS, rng.randint(1, 3)))}"
    if kind == 4:
        return f'user.tier == "{rng.choice(USER_TIERS)}"'
    if kind == 5:
        return f"domain in {_quoted(rng.sample(DOMAINS, 2))}"
    if kind == 6:
        return f"length {rng.choice(['<', '>'])} {rng.choice([300, 1500, 5000, 20000])}"
    if kind == 7:
        return f"context_tokens > {rng.choice(['2k', '10k', '50k'])} or files > {rng.randint(2, 9)}"
    if kind == 8:
        return rng.choice(
            ['metadata.plan == "pro"', "metadata.seats > 50", "metadata.beta == true"]
        )
    if kind == 9:
        return rng.choice(["has_images", "has_tools", "not has_tools", "turns > 4"])
    if kind == 10:
        sets.append(f"keywords k{len(sets)} = {_quoted(_phrases(rng, 3))}")
        return f"system contains any k{len(sets) - 1}"
    return f"not prompt contains {_quoted(_phrases(rng, 1))[1:-1]}"


def mixed_policy(seed: int, rules: int = 10) -> str:
    rng = random.Random(seed)
    sets: list[str] = []
    lines = []
    for i in range(rules):
        parts = [_atom(rng, sets) for _ in range(rng.choice([1, 1, 1, 2, 2, 3]))]
        joiner = rng.choice([" and ", " or "])
        cond = joiner.join(f"({p})" if " or " in p or " and " in p else p for p in parts)
        lines.append(f"rule m{i}: {cond} -> {rng.choice(['haiku', 'sonnet', 'opus'])}")
    return TIERS + "\n".join([*sets, *lines, "default -> sonnet"]) + "\n"


def keyword_requests(size: int, seed: int, n: int) -> list[dict[str, Any]]:
    """Keyword attributes of `n` requests with prompts of `size` characters: each attribute
    given or not at random, as callers give them; one prompt in four ends in a phrase."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        tail = rng.choice(RARE) if i % 4 == 0 else ""
        kw: dict[str, Any] = {"prompt": prose(size, rng, False, tail)}
        if rng.random() < 0.3:
            kw["system"] = prose(120, rng, False, rng.choice(["", rng.choice(RARE)]))
        for name, values in (
            ("task", [None, *TASKS]),
            ("user_tier", [None, *USER_TIERS]),
            ("domain", [None, None, *DOMAINS]),
            ("files", [None, 0, 1, 3, 12]),
            ("turns", [None, 1, 3, 7]),
        ):
            value = rng.choice(values)
            if value is not None:
                kw[name] = value
        if rng.random() < 0.4:
            kw["metadata"] = rng.choice([{"plan": "pro"}, {"seats": 120}, {"beta": True}])
        if rng.random() < 0.5:
            kw["has_tools"] = True
        if rng.random() < 0.1:
            kw["has_images"] = True
        out.append(kw)
    return out
