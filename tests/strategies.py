"""Hypothesis strategies: generated policies (as text) and generated requests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from policyroute import Classification, Request

WORDS = [
    "format",
    "information",
    "deadlock",
    "sort",
    "imports",
    "race",
    "condition",
    "sql",
    "join",
    "select",
    "Straße",
    "strasse",
    "x_y",
    "c3po",
    "refund",
    "ÉTÉ",
    "été",
    "a",
]
PHRASES = [
    "format",
    "deadlock",
    "sort imports",
    "race condition",
    "join",
    "strasse",
    "été",
    "refund",
    "x",
    "c3po",
    "select",
]
SEPARATORS = [" ", "  ", "\n", "\t", "-", "_", ".", ", ", "", "/", "\u00a0", "\u3000", "\x1c", "—"]
# Unicode shapes the phrase scan must get right: case folding that changes length (ß, ﬁ),
# letters outside Latin, a lone surrogate (which UTF-8 cannot carry), combining marks.
ODD_WORDS = ["STRASSE", "straße", "ﬁx", "Ωmega", "日本", "\ud800", "e\u0301", "İ", "ǅ", "٣"]
# Numbers a caller can pass that compare oddly: NaN, infinities, integers beyond any float.
ODD_NUMBERS = [float("nan"), float("inf"), float("-inf"), 10**400, -(10**400), 2.5, -0.0]
TASKS = ["classify", "extract", "format", "analyze"]
DOMAINS = ["security", "billing", "database"]
USER_TIERS = ["free", "paid", "enterprise"]
REGEXES = [
    "/\\bselect\\b.+\\bjoin\\b/i",
    "/[0-9]{3}/",
    "/^fix/",
    "/ord-[a-z]+/i",
    "/x$/m",
    "/strasse|sql join/i",
    "/(?:deadlock|race)\\s+condition/",
    "/x.y/s",
    "/été/i",
]
NUM_ATTRS = ["length", "files", "context_tokens", "turns"]


@st.composite
def prompts(draw: st.DrawFn) -> str:
    n = draw(st.integers(0, 12))
    parts: list[str] = []
    for _ in range(n):
        w = draw(st.sampled_from(WORDS + ODD_WORDS))
        if draw(st.booleans()):
            w = w.upper() if draw(st.booleans()) else w.capitalize()
        parts.append(w)
        parts.append(draw(st.sampled_from(SEPARATORS)))
    return "".join(parts)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    meta: dict[str, Any] = {}
    if draw(st.booleans()):
        meta["priority"] = draw(st.sampled_from(["high", "low", 3, True]))
    if draw(st.booleans()):
        meta["score"] = draw(
            st.one_of(
                st.integers(-2, 9),
                st.floats(0, 9, allow_nan=False),
                st.just("7"),
                st.sampled_from(ODD_NUMBERS),
            )
        )
    return Request(
        draw(st.one_of(st.none(), prompts())),
        system=draw(st.one_of(st.none(), prompts())),
        task=draw(st.one_of(st.none(), st.sampled_from(TASKS))),
        domain=draw(st.one_of(st.none(), st.sampled_from(DOMAINS))),
        user_tier=draw(st.one_of(st.none(), st.sampled_from(USER_TIERS))),
        # Counts are whole numbers >= 0 (Request refuses others), of any size.
        files=draw(st.one_of(st.none(), st.integers(0, 10), st.just(10**400))),
        context_tokens=draw(st.one_of(st.none(), st.integers(0, 100_000), st.just(10**400))),
        turns=draw(st.one_of(st.none(), st.integers(0, 6))),
        metadata=meta,
        has_tools=draw(st.booleans()),
        has_images=draw(st.booleans()),
    )


def answers() -> st.SearchStrategy[dict[str, Classification]]:
    return st.dictionaries(
        st.just("kind"),
        st.builds(
            Classification,
            st.sampled_from(["easy", "hard", "weird"]),
            st.floats(0, 1, allow_nan=False),
        ),
    )


def _quote(s: str) -> str:
    return '"' + s + '"'


@st.composite
def conditions(draw: st.DrawFn, depth: int = 0) -> str:
    if depth < 2 and draw(st.integers(0, 3)) == 0:
        op = draw(st.sampled_from(["and", "or"]))
        parts = draw(st.lists(conditions(depth + 1), min_size=2, max_size=3))
        return "(" + f" {op} ".join(parts) + ")"
    if depth < 3 and draw(st.integers(0, 7)) == 0:
        return "not " + draw(conditions(depth + 1))
    kind = draw(st.integers(0, 13))
    if kind <= 2:
        attr = draw(st.sampled_from(NUM_ATTRS))
        op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
        n = draw(st.sampled_from(["0", "3", "5", "10", "40", "1k", "60_000", "2.5"]))
        return f"{attr} {op} {n}"
    if kind == 3:
        vals = draw(st.lists(st.sampled_from(TASKS), min_size=1, max_size=3, unique=True))
        neg = "not in" if draw(st.booleans()) else "in"
        return f"task {neg} [{', '.join(map(_quote, vals))}]"
    if kind == 4:
        op = draw(st.sampled_from(["==", "!="]))
        attr = draw(st.sampled_from(["domain", "user.tier"]))
        pool = DOMAINS if attr == "domain" else USER_TIERS
        return f"{attr} {op} {_quote(draw(st.sampled_from(pool)))}"
    if kind in (5, 6, 7):
        attr = draw(st.sampled_from(["prompt", "prompt", "text", "system"]))
        mode = draw(st.sampled_from(["any one", "any two", "all one", "phrase", "list"]))
        if mode == "phrase":
            return f"{attr} contains {_quote(draw(st.sampled_from(PHRASES)))}"
        if mode == "list":
            ps = draw(st.lists(st.sampled_from(PHRASES), min_size=1, max_size=3, unique=True))
            return f"{attr} contains any [{', '.join(map(_quote, ps))}]"
        quant, name = mode.split()
        return f"{attr} contains {quant} {name}"
    if kind == 8:
        return f"prompt matches {draw(st.sampled_from(REGEXES))}"
    if kind == 9:
        return draw(
            st.sampled_from(
                ["has_tools", "has_images", "has files", "has task", "not has_tools", "has prompt"]
            )
        )
    if kind == 10:
        return draw(
            st.sampled_from(
                [
                    'metadata.priority == "high"',
                    "metadata.score > 3",
                    "metadata.priority == true",
                    "metadata.score <= 2.5",
                    "metadata.score < 50",
                    "metadata.score != 3",
                    'metadata.priority in ["high", "low"]',
                ]
            )
        )
    if kind == 11:
        return draw(
            st.sampled_from(
                [
                    'kind.label == "hard"',
                    "kind.confidence >= 0.5",
                    'kind.label != "easy"',
                    'kind.label in ["weird"]',
                ]
            )
        )
    return f"{draw(st.sampled_from(NUM_ATTRS))} > {draw(st.integers(0, 20))}"


@st.composite
def policies(draw: st.DrawFn) -> str:
    one = draw(st.lists(st.sampled_from(PHRASES), min_size=1, max_size=3, unique=True))
    two = draw(st.lists(st.sampled_from(PHRASES), min_size=1, max_size=4, unique=True))
    lines = [
        'policy "generated"',
        'tier haiku = "claude-haiku-4-5" { input 1 output 5 max_tokens 4096 }',
        'tier sonnet = "claude-sonnet-4-6" { input 3 output 15 }',
        'tier opus = "claude-opus-4-7" { input 5 output 25 }',
        f"keywords one = [{', '.join(map(_quote, one))}]",
        f"keywords two = [{', '.join(map(_quote, two))}]",
        'classifier kind using haiku labels ["easy", "hard", "weird"] prompt "How hard is it?"',
    ]
    n = draw(st.integers(1, 12))
    for i in range(n):
        if draw(st.integers(0, 2)) == 0:
            # phrase-led rules, so runs of them exercise the phrase index
            cond = f"prompt contains any {draw(st.sampled_from(['one', 'two']))}"
            if draw(st.booleans()):
                cond += " and " + draw(conditions(1))
        else:
            cond = draw(conditions())
        tier = draw(st.sampled_from(["haiku", "sonnet", "opus"]))
        lines.append(f"rule r{i}: {cond} -> {tier}")
    lines.append(f"default -> {draw(st.sampled_from(['haiku', 'sonnet', 'opus']))}")
    lines.append("escalate on error, max_tokens max 2")
    return "\n".join(lines) + "\n"


@st.composite
def same_attribute_policies(draw: st.DrawFn) -> str:
    """Rule after rule on the same two attributes, so the compiler merges their tests."""
    lines = [
        'tier haiku = "claude-haiku-4-5" { input 1 output 5 }',
        'tier opus = "claude-opus-4-7" { input 5 output 25 }',
    ]
    for i in range(draw(st.integers(1, 10))):
        parts = []
        if draw(st.booleans()):
            vals = draw(st.lists(st.sampled_from(TASKS), min_size=1, max_size=2, unique=True))
            neg = draw(st.sampled_from(["in", "not in"]))
            parts.append(f"task {neg} [{', '.join(map(_quote, vals))}]")
        if draw(st.booleans()) or not parts:
            op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
            parts.append(f"length {op} {draw(st.sampled_from([0, 3, 5, 10]))}")
        joiner = draw(st.sampled_from([" and ", " or "]))
        lines.append(
            f"rule r{i}: {joiner.join(parts)} -> {draw(st.sampled_from(['haiku', 'opus']))}"
        )
    lines.append("default -> haiku")
    return "\n".join(lines) + "\n"


def small_requests() -> st.SearchStrategy[Request]:
    return st.builds(
        lambda n, task: Request(None if n is None else "x" * n, task=task),
        st.one_of(st.none(), st.sampled_from([0, 2, 3, 4, 5, 7, 10, 11])),
        st.one_of(st.none(), st.sampled_from([*TASKS, "other"])),
    )


HUGE = "999_999_999_999_999"  # the largest literal the language takes; requests go beyond
SET_NAMES = ["one", "two", "three"]  # `conditions()` reads the first two


@st.composite
def interleaved_policies(draw: st.DrawFn) -> str:
    """Up to 60 rules of every kind interleaved, the shape a big policy has: keyword sets,
    `task == X and length > N`, `user.tier == X or context_tokens > N`, metadata numbers
    (NaN, infinities and huge integers meet them), regexes, classifier tests."""
    sets = [
        draw(st.lists(st.sampled_from([*PHRASES, "ﬁx", "日本", "straße"]), min_size=1, max_size=4))
        for _ in range(3)
    ]
    lines = [
        'tier haiku = "claude-haiku-4-5" { input 1 output 5 }',
        'tier sonnet = "claude-sonnet-4-6" { input 3 output 15 }',
        'tier opus = "claude-opus-4-7" { input 5 output 25 }',
        'classifier kind using haiku labels ["easy", "hard", "weird"] prompt "How hard?"',
    ]
    for name, phrases in zip(SET_NAMES, sets, strict=True):
        lines.append(f"keywords {name} = [{', '.join(map(_quote, dict.fromkeys(phrases)))}]")
    n = draw(st.integers(1, 60))
    for i in range(n):
        kind = draw(st.integers(0, 7))
        if kind <= 1:
            cond = f"{draw(st.sampled_from(['prompt', 'text']))} contains any {draw(st.sampled_from(SET_NAMES))}"
        elif kind == 2:
            cond = f"task == {_quote(draw(st.sampled_from(TASKS)))} and length > {draw(st.integers(0, 40))}"
        elif kind == 3:
            cond = (
                f"user.tier == {_quote(draw(st.sampled_from(USER_TIERS)))}"
                f" or context_tokens > {draw(st.sampled_from(['3', '10', '60k', HUGE]))}"
            )
        elif kind == 4:
            op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
            cond = f"metadata.score {op} {draw(st.sampled_from(['0', '2.5', '7', HUGE]))}"
        elif kind == 5:
            cond = f"prompt matches {draw(st.sampled_from(REGEXES))}"
        elif kind == 6:
            cond = draw(conditions(1))
        else:
            cond = (
                f"files {draw(st.sampled_from(['<', '>', '==', '!=']))} {draw(st.integers(0, 9))}"
            )
        lines.append(f"rule r{i}: {cond} -> {draw(st.sampled_from(['haiku', 'sonnet', 'opus']))}")
    lines.append("default -> sonnet")
    return "\n".join(lines) + "\n"
