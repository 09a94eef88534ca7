"""Seeded hostile cases for bench_fuzz.py: each is a few files and one `policyroute` command line.

`case(seed, index)` is a pure function of its arguments: the same seed and index give the same
files and arguments on any machine, so a failure is reproduced with `bench_fuzz.py --case N`.
Five kinds, by index: policies (mutated shipped and small policies, through check, fmt,
explain, diff and test), requests (`route --request` with hostile JSON), traffic lines and
outcome lines (`replay`, `diff --traffic`), and command-line flags (any offline command with
random flags and values). `ask`, `serve` and `watch` are left out: they need the network or
run until stopped; `judge` runs only its offline modes.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("policy", "request", "traffic", "outcomes", "flags")

SMALL = """\
tier haiku = "claude-haiku-4-5" { input 1.00 output 5.00 max_tokens 4096 }
tier sonnet = "claude-sonnet-4-6" { input 3.00 output 15.00 }
keywords hard = ["deadlock", "race condition", "Straße"]
rule huge: context_tokens > 60k or files > 5 -> sonnet
rule hard: prompt contains any hard -> sonnet
rule sql: prompt matches /\\bselect\\b.+\\bjoin\\b/i -> sonnet
rule quick: task in ["classify", "extract"] or length < 300 -> haiku max_tokens 1024
default -> sonnet
escalate on error, timeout, max_tokens max 1
test "quick" { prompt = "hi" } -> haiku
"""
# Policy cases also get a classifier (check, explain and diff never call it; route would).
CLASSIFIED = SMALL.replace(
    "rule huge:",
    'classifier mood using haiku labels ["happy", "sad"] prompt "Mood?"\n'
    'rule sad: mood.label == "sad" and mood.confidence > 0.5 -> sonnet\nrule huge:',
)
SHIPPED = sorted((ROOT / "policies").glob("*.route"))

HOSTILE_NUMBERS = [
    "9" * 5000,
    "-" + "9" * 4400,
    "1" + "0" * 400,
    "1e999",
    "-1e400",
    "1e-400",
    "NaN",
    "Infinity",
    "-Infinity",
    "-0",
    "0.5",
    "99999999999999999999",
    "-1",
    "0",
    "3",
    "1e2",
    "2.5",
    "100000000000000",
    "007",
    "1_000",
    "0x10",
    "",
]
HOSTILE_STRINGS = [
    "",
    "hi",
    "deadlock",
    "select a join b",
    "Straße",
    "\\ud800",
    "\\udfff\\ud800x",
    "\\u0000",
    "\\ud83d\\ude00",
    "é" * 50,
    "x" * 5000,
    "\\\\",
    "\\n\\t",
    "<script>",
    "%s%n",
    "../../etc",
]
POLICY_TOKENS = [
    "rule",
    "default",
    "tier",
    "keywords",
    "classifier",
    "escalate",
    "test",
    "import",
    "->",
    "and",
    "or",
    "not",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "=",
    "==",
    "<",
    ">",
    "in",
    "contains",
    "any",
    "all",
    "matches",
    "length",
    "turns",
    "prompt",
    "files",
    "haiku",
    "sonnet",
    "max_tokens",
    "never",
    "max",
    "1e999",
    "100000000000000",
    "99999999999999999",
    "-1",
    "0.7",
    "60k",
    "1.5m",
    '"x"',
    '""',
    '"' + "a" * 3000 + '"',
    "/(a+)+$/",
    "/[/",
    "/\\bx\\b/i",
    "# c\n",
    "\n",
    "\t",
    "\ufeff",
    "\x00",
    "user.tier",
    "metadata.seats",
    "mood.confidence",
    '"\\ud800"',
    "not " * 300,
]
FLAG_POOL = [
    "--json",
    "--format",
    "--explain",
    "--prompt",
    "--request",
    "--task",
    "--domain",
    "--files",
    "--context-tokens",
    "--attr",
    "--rule",
    "--traffic",
    "--outcomes",
    "--group-by",
    "--jobs",
    "--strict",
    "--output-tokens",
    "--bootstrap",
    "--seed",
    "-o",
    "--quiet",
    "-q",
    "--check",
    "--help",
    "--mode",
    "--dry-run",
    "--schema",
    "--user-tier",
    "--system",
    "--holdout",
    "--cheap",
    "--strong",
]
FLAG_VALUES = [
    "0",
    "-1",
    "2000",
    "9" * 5000,
    "nan",
    "inf",
    "1e999",
    "x",
    "",
    "json",
    "human",
    "csv",
    "html",
    "sarif",
    "reference",
    "schema",
    "p.route",
    "t.jsonl",
    "o.jsonl",
    "r.json",
    "nosuch.route",
    "missing.jsonl",
    ".",
    "task=x",
    "files=9999999999999999999999",
    "metadata.k=NaN",
    "mood.label=happy",
    "mood.confidence=2",
    "default",
    "quick",
    "conversation",
    "a.b.c",
    "out.txt",
]


@dataclass
class Case:
    kind: str
    argv: list[str]
    files: dict[str, str] = field(default_factory=dict)


def _number(r: random.Random) -> str:
    return r.choice(HOSTILE_NUMBERS) if r.random() < 0.6 else str(r.randint(-(10**6), 10**6))


def _string(r: random.Random) -> str:
    return '"' + r.choice(HOSTILE_STRINGS) + '"'


def _value(r: random.Random, depth: int = 0) -> str:
    roll = r.random()
    if roll < 0.04:
        n = r.choice([300, 1000, 5000, 50_000])
        return "[" * n + "]" * n if r.random() < 0.8 else '{"a":' * n + "1" + "}" * n
    if depth > 3 or roll < 0.35:
        return _number(r)
    if roll < 0.65:
        return _string(r)
    if roll < 0.72:
        return r.choice(["true", "false", "null"])
    if roll < 0.86:
        return "[" + ", ".join(_value(r, depth + 1) for _ in range(r.randint(0, 3))) + "]"
    keys = r.sample(["type", "text", "content", "role", "id", "name", "tier"], r.randint(0, 3))
    return "{" + ", ".join(f'"{k}": {_value(r, depth + 1)}' for k in keys) + "}"


def _content(r: random.Random) -> str:
    roll = r.random()
    if roll < 0.5:
        return _string(r)
    if roll < 0.6:
        n = r.choice([10, 300, 2000])
        block = '[{"type": "tool_result", "tool_use_id": "t", "content": '
        return block * n + '"deep"' + "}]" * n
    if roll < 0.8:
        return f'[{{"type": "text", "text": {_string(r)}}}, {{"type": "image", "source": {{}}}}]'
    return _value(r)


def _request(r: random.Random, rid: str | None = None) -> str:
    role = r.choice(['"user"', '"user"', '"assistant"', '"robot"', "1"])
    parts = [f'"messages": [{{"role": {role}, "content": {_content(r)}}}]']
    if rid is not None:
        parts.append(f'"id": {rid}')
    for key, make in (
        ("max_tokens", _number),
        ("system", _string),
        ("tools", lambda r: '[{"name": "t", "input_schema": {}}]'),
        ("temperature", _number),
        ("metadata", lambda r: f'{{"user_id": {_string(r)}}}'),
    ):
        if r.random() < 0.3:
            parts.append(f'"{key}": {make(r)}')
    route = []
    for key in ("task", "domain", "files", "context_tokens", "conversation"):
        if r.random() < 0.3:
            route.append(f'"{key}": {_number(r) if r.random() < 0.5 else _string(r)}')
    if r.random() < 0.2:
        route.append(f'"user": {{"tier": {_string(r)}, "id": {_value(r)}}}')
    if r.random() < 0.2:
        route.append(
            f'"classifiers": {{"mood": {{"label": {_string(r)}, "confidence": {_number(r)}}}}}'
        )
    if r.random() < 0.15:
        route.append(f'"metadata": {{"seats": {_number(r)}, "k": {_value(r)}}}')
    if route:
        parts.append('"route": {' + ", ".join(route) + "}")
    r.shuffle(parts)
    return _mangle(r, "{" + ", ".join(parts) + "}", 0.15)


def _mangle(r: random.Random, text: str, p: float) -> str:
    """With probability p, one random cut, duplication or byte flip."""
    if r.random() >= p or not text:
        return text
    i = r.randrange(len(text))
    j = min(len(text), i + r.randint(1, 20))
    return r.choice([text[:i] + text[j:], text[:j] + text[i:], text[:i] + "\x00" + text[i:]])


def _policy_text(r: random.Random) -> str:
    roll = r.random()
    if roll < 0.6 or not SHIPPED:
        base = SMALL if roll < 0.3 else CLASSIFIED
    else:
        base = r.choice(SHIPPED).read_text("utf-8")
    lines = base.splitlines(keepends=True)
    for _ in range(r.randint(0, 4)):
        roll = r.random()
        i = r.randrange(len(lines) + 1)
        if roll < 0.4:
            words = " ".join(r.choice(POLICY_TOKENS) for _ in range(r.randint(1, 6)))
            lines.insert(i, words + "\n")
        elif roll < 0.6 and lines:
            del lines[min(i, len(lines) - 1)]
        elif roll < 0.8 and lines:
            lines.insert(i, lines[r.randrange(len(lines))])
        else:
            bound = r.choice(["100000000000000", "99999999", "0", "-5", "1e999", "1.5m"])
            lines.insert(i, f"rule b{i}: length < {bound} or turns > {bound} -> haiku\n")
    return _mangle(r, "".join(lines), 0.1)


def _traffic_line(r: random.Random, i: int) -> str:
    roll = r.random()
    rid = r.choice([f'"r{i}"', f'"r{r.randint(0, 3)}"', str(i), _number(r), "null", "[1]"])
    if roll < 0.55:
        return _request(r, rid)
    if roll < 0.7:
        return _mangle(r, f'{{"custom_id": {rid}, "params": {_request(r)}}}', 0.1)
    if roll < 0.82:
        attempts = f'[{{"tier": "haiku", "input_tokens": {_number(r)}, "output_tokens": 3}}]'
        record = (
            f'{{"request_id": {rid}, "tier": "haiku", "rule": "quick", "attempts": {attempts},'
            f' "prompt": {{"text": {_string(r)}}}, "latency_ms": {_number(r)}}}'
        )
        return _mangle(r, record, 0.1)
    if roll < 0.86:
        return (
            '{"id": "long", "messages": [{"role": "user", "content": "' + "x" * 2_000_000 + '"}]}'
        )
    return r.choice(["", "   ", "[]", "{}", "nul", "\ufeff{}", _value(r), "\x00\x01"])


def _outcome_line(r: random.Random) -> str:
    rid = r.choice(['"r0"', '"r1"', '"r2"', '"zz"', "0", "1", _number(r), "null"])
    named = r.choice(
        [
            '"tier": "haiku"',
            '"tier": "sonnet"',
            '"model": "claude-haiku-4-5"',
            '"tier": "opus"',
            '"tier": 3',
            '"tier": "haiku", "model": "x"',
        ]
    )
    extra = ""
    if r.random() < 0.3:
        extra = f', "input_tokens": {_number(r)}, "output_tokens": {_number(r)}'
    line = f'{{"id": {rid}, {named}, "score": {r.choice([_number(r), "true", _string(r)])}{extra}}}'
    return _mangle(r, line, 0.1)


def _traffic(r: random.Random, n: int) -> str:
    return "".join(_traffic_line(r, i) + "\n" for i in range(n))


def _replay_flags(r: random.Random) -> list[str]:
    flags: list[str] = []
    if r.random() < 0.3:
        flags += ["--group-by", r.choice(["conversation", "nosuchfield", "route.task", "id"])]
    if r.random() < 0.3:
        flags += ["--jobs", r.choice(["1", "2", "2000"])]
    if r.random() < 0.4:
        flags += ["--format", r.choice(["human", "json", "csv", "html"])]
    if r.random() < 0.2:
        flags += ["--strict"]
    if r.random() < 0.2:
        flags += ["--output-tokens", r.choice(["0", "100", "9" * 30])]
    return flags


def case(seed: int, index: int) -> Case:
    r = random.Random(seed * 1_000_003 + index)
    kind = KINDS[index % len(KINDS)]
    if kind == "policy":
        text = _policy_text(r)
        roll = r.random()
        if roll < 0.55:
            argv = [
                "check",
                "p.route",
                *r.choice([[], ["--format", "json"], ["--format", "sarif"]]),
            ]
        elif roll < 0.7:
            argv = ["fmt", "--check", "p.route"]
        elif roll < 0.8:
            argv = [
                "explain",
                "p.route",
                "--rule",
                r.choice(["quick", "hard", "default", "huge", "b1"]),
            ]
        elif roll < 0.9:
            return Case(
                kind, ["diff", "base.route", "p.route"], {"p.route": text, "base.route": SMALL}
            )
        else:
            argv = ["test", "p.route"]
        return Case(kind, argv, {"p.route": text})
    if kind == "request":
        argv = [
            "route",
            "p.route",
            "--request",
            "r.json",
            *r.choice([[], ["--json"], ["--explain"]]),
        ]
        return Case(kind, argv, {"p.route": SMALL, "r.json": _request(r)})
    if kind == "traffic":
        files = {"p.route": SMALL, "t.jsonl": _traffic(r, r.randint(1, 6))}
        if r.random() < 0.2:
            return Case(kind, ["diff", "p.route", "p.route", "--traffic", "t.jsonl"], files)
        return Case(kind, ["replay", "p.route", "t.jsonl", *_replay_flags(r)], files)
    if kind == "outcomes":
        good = "".join(
            json.dumps({"id": f"r{i}", "messages": [{"role": "user", "content": "hi " * i}]}) + "\n"
            for i in range(3)
        )
        outcomes = "".join(_outcome_line(r) + "\n" for _ in range(r.randint(1, 6)))
        files = {"p.route": SMALL, "t.jsonl": good, "o.jsonl": outcomes}
        argv = ["replay", "p.route", "t.jsonl", "--outcomes", "o.jsonl", "--bootstrap", "20"]
        return Case(kind, argv + _replay_flags(r), files)
    command = r.choice(["check", "route", "test", "fmt", "diff", "explain", "replay", "judge"])
    argv = [command]
    for _ in range(r.randint(0, 5)):
        argv.append(r.choice([*FLAG_POOL, "p.route", "t.jsonl", "o.jsonl", "r.json"]))
        if r.random() < 0.7:
            argv.append(r.choice(FLAG_VALUES))
    if command == "judge" and "--mode" not in argv:
        argv += ["--mode", "reference"]  # offline: the model modes would call the API
    if command == "judge":
        argv += ["-o", "out.jsonl", "--cache", "cache.sqlite"]
    files = {
        "p.route": SMALL,
        "t.jsonl": _traffic(r, 2),
        "o.jsonl": _outcome_line(r) + "\n",
        "r.json": _request(r),
    }
    return Case(kind, argv, files)
