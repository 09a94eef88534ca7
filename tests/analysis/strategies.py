"""Small random policies (as text) and requests for the analysis property tests."""

from __future__ import annotations

from hypothesis import strategies as st

from policyroute import Request

TIERS = ("haiku", "sonnet", "opus")
TASKS = ("classify", "extract", "format", "chat")
DOMAINS = ("security", "billing", "web")
# "imports" stands inside "sort imports": the analysis must know one implies the other.
PHRASES = ("sort imports", "imports", "deadlock", "race condition", "race", "format", "x-ray")
HEADER = (
    'tier haiku = "claude-haiku-4-5" { input 1 output 5 }\n'
    'tier sonnet = "claude-sonnet-4-6" { input 3 output 15 }\n'
    'tier opus = "claude-opus-4-7" { input 5 output 25 }\n'
)


def _q(s: str) -> str:
    return '"' + s + '"'


atoms = st.one_of(
    st.builds(
        lambda op, n: f"length {op} {n}",
        st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
        st.sampled_from([0, 50, 100, 300]),
    ),
    st.builds(
        lambda op, n: f"files {op} {n}", st.sampled_from(["<", ">", "=="]), st.integers(1, 4)
    ),
    st.builds(lambda t: f"task == {_q(t)}", st.sampled_from(TASKS)),
    st.builds(
        lambda ts: "task in [" + ", ".join(map(_q, ts)) + "]",
        st.lists(st.sampled_from(TASKS), min_size=1, max_size=3),
    ),
    st.builds(lambda d: f"domain != {_q(d)}", st.sampled_from(DOMAINS)),
    st.builds(lambda p: f"prompt contains {_q(p)}", st.sampled_from(PHRASES)),
    st.builds(lambda k: f"prompt contains any set{k}", st.integers(0, 1)),
    st.builds(lambda k: f"prompt contains all set{k}", st.integers(0, 1)),
    st.just("has_tools"),
    st.just("has domain"),
    st.just("prompt matches /ab+c/"),
)


def _expr(depth: int) -> st.SearchStrategy[str]:
    if depth == 0:
        return atoms
    sub = _expr(depth - 1)
    return st.one_of(
        atoms,
        st.builds(lambda a, b: f"{a} and {b}", sub, sub),
        st.builds(lambda a, b: f"({a}) or {b}", sub, sub),
        st.builds(lambda a: f"not ({a})", sub),
    )


conditions = _expr(2)


@st.composite
def policies(draw: st.DrawFn, max_rules: int = 6) -> str:
    sets = [
        draw(st.lists(st.sampled_from(PHRASES), min_size=1, max_size=3, unique=True))
        for _ in range(2)
    ]
    lines = [HEADER]
    for k, phrases in enumerate(sets):
        lines.append(f"keywords set{k} = [" + ", ".join(map(_q, phrases)) + "]")
    n = draw(st.integers(1, max_rules))
    for i in range(n):
        cond = draw(conditions)
        tier = draw(st.sampled_from(TIERS))
        lines.append(f"rule r{i}: {cond} -> {tier}")
    lines.append(f"default -> {draw(st.sampled_from(TIERS))}")
    return "\n".join(lines) + "\n"


words = st.sampled_from([*PHRASES, "hello", "please", "abbc", "ac", "Sort  Imports", "x", "."])


@st.composite
def requests(draw: st.DrawFn) -> Request:
    prompt = " ".join(draw(st.lists(words, max_size=6)))
    prompt += " " * draw(st.sampled_from([0, 0, 5, 60, 260]))
    return Request(
        prompt,
        task=draw(st.none() | st.sampled_from([*TASKS, "other"])),
        domain=draw(st.none() | st.sampled_from([*DOMAINS, "other"])),
        files=draw(st.none() | st.integers(0, 5)),
        has_tools=draw(st.booleans()),
    )
