"""Hostile and broken policy input: every shape found by the adversarial audit (issue 15)
ends in located diagnostics, never a traceback, a hang, a native crash or unbounded memory.

The fuzz test at the end runs mutated policies through `load` and `check` in a subprocess,
so a segfault or a hang fails the test instead of killing the test run.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import policyroute
from policyroute.analysis.containment import containment_pairs, contains_at_boundaries
from policyroute.compiler.loader import load_path
from policyroute.syntax.diagnostics import PolicyError
from policyroute.syntax.limits import MAX_FILE_BYTES
from policyroute.syntax.source import UnreadableFile, read_regular_file

ROOT = Path(__file__).resolve().parents[2]
TIER = 'tier haiku = "claude-haiku-4-5" { input 1.00 output 5.00 }\n'
END = "default -> haiku\n"


def _diagnostics(path: Path) -> list[tuple[str, str, int, int]]:
    """(code, message, line, column) of every error `load` reports, in order."""
    with pytest.raises(PolicyError) as info:
        policyroute.load(path)
    return [(d.code, d.message, d.line, d.column) for d in info.value.diagnostics if d.is_error]


def _codes(path: Path) -> set[str]:
    return {code for code, *_ in _diagnostics(path)}


# -- the shapes of the audit, each a located diagnostic --------------------------------------

SHAPES: dict[str, tuple[Callable[[], str], str]] = {
    # name -> (policy text, the code it must report)
    "nots_with_comments": (
        lambda: TIER + "rule r:\n" + "not # c\n" * 1000 + "files > 1 -> haiku\n" + END,
        "E006",
    ),
    "brackets_across_keywords": (
        lambda: (
            TIER
            + "rule r: "
            + "(tier == 1 and " * 1000
            + "files > 1"
            + ")" * 1000
            + " -> haiku\n"
            + END
        ),
        "E006",
    ),
    "integer_of_5000_digits": (
        lambda: TIER + "rule r: files > " + "9" * 5000 + " -> haiku\n" + END,
        "E007",
    ),
    "price_of_400_digits": (
        lambda: 'tier haiku = "claude-haiku-4-5" { input ' + "9" * 400 + " output 5.00 }\n" + END,
        "E007",
    ),
    "fraction_of_400_digits": (
        lambda: TIER + "rule r: files > 0." + "1" * 400 + " -> haiku\n" + END,
        "E007",
    ),
    "phrase_of_400000_words": (
        lambda: (
            TIER + 'keywords k = ["' + "ab " * 266_000 + '"]\n'
            "rule r: prompt contains any k -> haiku\n" + END
        ),
        "E008",
    ),
    "inline_phrase_too_long": (
        lambda: TIER + 'rule r: prompt contains "' + "x" * 300 + '" -> haiku\n' + END,
        "E008",
    ),
    "60000_phrases": (
        lambda: (
            TIER + "keywords k = [" + ",".join(f'"{i}"' for i in range(60_000)) + "]\n"
            "rule r: prompt contains any k -> haiku\n" + END
        ),
        "E008",
    ),
    "1001_rules": (
        lambda: TIER + "".join(f"rule r{i}: files > {i} -> haiku\n" for i in range(1001)) + END,
        "E008",
    ),
    "and_of_5000_tests": (
        lambda: (
            TIER
            + "rule r: "
            + " and ".join(f"metadata.k{i} == 1" for i in range(5_000))
            + " -> haiku\n"
            + END
        ),
        "E008",
    ),
    "3000_missing_imports": (
        lambda: TIER + "".join(f'import "m{i}.route"\n' for i in range(3000)) + END,
        "E008",
    ),
    "list_of_20000_values": (
        lambda: (
            TIER
            + "rule r: domain in ["
            + ",".join(f'"d{i}"' for i in range(20_000))
            + "] -> haiku\n"
            + END
        ),
        "E008",
    ),
    "import_name_of_300_chars": (
        lambda: TIER + 'import "' + "a" * 300 + '.route"\n' + END,
        "E401",
    ),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_hostile_shape_is_a_located_diagnostic(name: str, tmp_path: Path) -> None:
    make, code = SHAPES[name]
    path = tmp_path / "policy.route"
    path.write_text(make(), encoding="utf-8")
    found = _diagnostics(path)
    assert code in {c for c, *_ in found}, found
    for _code, message, line, column in found:
        assert line >= 1 and column >= 1
        assert len(message) < 300, message  # a message quotes user text shortened


def test_number_limits_keep_ordinary_numbers(tmp_path: Path) -> None:
    path = tmp_path / "policy.route"
    path.write_text(
        TIER + "rule r: context_tokens > 999_999_999_999_999 and files < 1.5m"
        " and metadata.x > 0.000000000000000000000000001 -> haiku\n" + END
    )
    decision = policyroute.load(path).decide(context_tokens=10**15, files=1, metadata={"x": 1})
    assert decision.rule == "r"


def test_deep_but_allowed_condition_still_compiles(tmp_path: Path) -> None:
    path = tmp_path / "policy.route"
    path.write_text(TIER + "rule r: " + "not " * 62 + "files > 1 -> haiku\n" + END)
    assert policyroute.load(path).decide(files=2).rule == "r"  # 62 `not`: an even count


def test_long_and_chain_parses_in_linear_time(tmp_path: Path) -> None:
    """The chain of 256 tests (the most) parses to one flat And, in both parse paths."""
    chain = " and ".join(f"metadata.k{i} == 1" for i in range(256))
    good = tmp_path / "good.route"
    good.write_text(TIER + f"rule r: {chain} -> haiku\n" + END)
    policy = policyroute.load(good)
    assert policy.decide(metadata={f"k{i}": 1 for i in range(256)}).rule == "r"
    # A broken statement elsewhere sends the file through per-statement recovery.
    broken = tmp_path / "broken.route"
    broken.write_text(TIER + f"rule r: {chain} -> haiku\nrule oops files > 1 -> haiku\n" + END)
    assert _codes(broken) == {"E001"}


# -- files that are not regular ---------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "policy.route"
    os.mkfifo(fifo)
    with pytest.raises(UnreadableFile, match="named pipe"):
        read_regular_file(fifo, MAX_FILE_BYTES)
    assert _diagnostics(fifo)[0][:2] == (
        "E005",
        f"cannot read {fifo}: not a regular file (a named pipe)",
    )


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_symlink_to_dev_zero_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "policy.route"
    link.symlink_to("/dev/zero")
    assert _diagnostics(link)[0][0] == "E005"


def test_folder_and_too_large_file(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="folder"):
        read_regular_file(tmp_path, MAX_FILE_BYTES)
    big = tmp_path / "big.route"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    assert "larger than" in _diagnostics(big)[0][1]


def test_import_through_a_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "loop").mkdir()
    (tmp_path / "loop" / "a.route").symlink_to("b.route")
    (tmp_path / "loop" / "b.route").symlink_to("a.route")
    main = tmp_path / "main.route"
    main.write_text(TIER + 'import "loop/a.route"\n' + END)
    assert _diagnostics(main)[0] == (
        "E401",
        "cannot import 'loop/a.route': a symbolic link loop",
        2,
        8,
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_import_of_a_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "shared.route")
    main = tmp_path / "main.route"
    main.write_text('import "shared.route"\n' + TIER + END)
    codes = [code for code, *_ in _diagnostics(main)]
    assert codes[:2] == ["E005", "E401"] or sorted(codes) == ["E005", "E401"]


def test_policy_given_as_a_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "a.route").symlink_to("b.route")
    (tmp_path / "b.route").symlink_to("a.route")
    loaded = load_path(tmp_path / "a.route")
    assert [d.code for d in loaded.diagnostics] == ["E005"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_store_survives_a_fifo_and_dev_zero(tmp_path: Path) -> None:
    """The watched file becomes a FIFO, then a symlink to /dev/zero: the last good policy
    keeps serving, each change is reported, and close() returns promptly."""
    path = tmp_path / "policy.route"
    path.write_text(TIER + END)
    errors: list[PolicyError] = []
    store = policyroute.watch(path, on_error=errors.append, force_polling=True)
    try:
        path.unlink()
        os.mkfifo(path)
        assert store.reload() is False
        if Path("/dev/zero").exists():
            path.unlink()
            path.symlink_to("/dev/zero")
            assert store.reload() is False
        assert store.decide(prompt="hi").tier == "haiku"
        assert errors and all(e.diagnostics[0].code == "E005" for e in errors)
    finally:
        closer = threading.Thread(target=store.close)
        closer.start()
        closer.join(10)
        assert not closer.is_alive(), "close() did not return"


# -- phrase containment: near-linear, and the same pairs as the pairwise definition ----------

_ALPHABET = st.sampled_from(["a", "b", "ab", " ", "-", "_", ".", "é", "1", "ß", "+"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_ALPHABET, min_size=1, max_size=6).map("".join), max_size=12))
def test_containment_pairs_match_the_definition(raw: list[str]) -> None:
    texts = list(dict.fromkeys(raw))
    expected = sorted(
        (i, j)
        for i, p in enumerate(texts)
        for j, q in enumerate(texts)
        if i != j and contains_at_boundaries(p, q)
    )
    assert containment_pairs(texts) == expected


def test_containment_gives_up_past_its_budget() -> None:
    nested = [" ".join(["a"] * k) for k in range(1, 120)]
    assert containment_pairs(nested, budget=1_000) is None
    assert containment_pairs(nested) is not None


# -- fuzz: mutated policies in a subprocess ---------------------------------------------------

_DRIVER = textwrap.dedent(
    """
    import json, sys, traceback
    from pathlib import Path
    import policyroute
    from policyroute.cli.check import _check_file
    from policyroute.syntax.diagnostics import PolicyError

    folder = Path(sys.argv[1])
    for i, name in enumerate(json.loads(Path(sys.argv[2]).read_text())):
        path = folder / name
        print(f"case {i} {name}", flush=True)
        try:
            policy = policyroute.load(path)
            policy.decide(prompt="find the deadlock", files=3, domain="security")
        except PolicyError:
            pass
        except Exception:
            print("UNEXPECTED " + name + "\\n" + traceback.format_exc(), flush=True)
            sys.exit(3)
        try:
            _check_file(path)
        except Exception:
            print("UNEXPECTED(check) " + name + "\\n" + traceback.format_exc(), flush=True)
            sys.exit(3)
    print("done", flush=True)
    """
)

_TOKENS = [
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "not ",
    " and ",
    " or ",
    "->",
    ":",
    ",",
    '"',
    "/",
    "#",
    "rule ",
    "tier ",
    "keywords ",
    "import ",
    "default ",
    "test ",
    "escalate ",
    "max ",
    "contains any ",
    "matches /a+/ ",
    "1e400",
    "9" * 40,
    "0." + "1" * 40,
    "-",
    "\\",
    "\n",
    "\u202e",
    "\x00",
    "\ud800",
    "metadata.",
    "user.tier",
    "haiku",
    "== ",
    "in ",
]


def _seeds() -> list[str]:
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "policies").rglob("*.route"))]
    golden = ROOT / "tests" / "golden"
    texts += [p.read_text(encoding="utf-8") for p in sorted(golden.rglob("*.route"))]
    return texts


def _mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 4)):
        n = len(text)
        at = rng.randrange(n + 1)
        kind = rng.randrange(7)
        if kind == 0 and n:  # delete a span
            text = text[:at] + text[at + rng.randint(1, 40) :]
        elif kind == 1:  # insert a token
            text = text[:at] + rng.choice(_TOKENS) + text[at:]
        elif kind == 2 and n:  # duplicate a span many times
            span = text[at : at + rng.randint(1, 30)]
            text = text[:at] + span * rng.randint(2, 300) + text[at:]
        elif kind == 3:  # nest deeply
            depth = rng.choice([63, 65, 300])
            text = text[:at] + rng.choice(["(", "not ", "not #c\n"]) * depth + text[at:]
        elif kind == 4:  # swap two lines
            lines = text.split("\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        elif kind == 5:  # a long string
            text = text[:at] + '"' + "w " * rng.choice([10, 200, 5000]) + '"' + text[at:]
        else:  # a random character
            text = text[:at] + chr(rng.randrange(0x20, 0x3000)) + text[at:]
    return text


def test_fuzz_mutated_policies_never_crash_or_hang(tmp_path: Path) -> None:
    # Deterministic, so a failure reproduces; FUZZ_SEED and FUZZ_CASES run a longer search.
    rng = random.Random(int(os.environ.get("FUZZ_SEED", "15")))
    count = int(os.environ.get("FUZZ_CASES", "160"))
    seeds = _seeds()
    names: list[str] = []
    (tmp_path / "shared").mkdir()
    for p in (ROOT / "policies" / "shared").glob("*.route"):
        (tmp_path / "shared" / p.name).write_text(p.read_text(encoding="utf-8"), "utf-8")
    for i in range(count):
        text = _mutate(rng, rng.choice(seeds))
        name = f"m{i}.route"
        (tmp_path / name).write_bytes(text.encode("utf-8", "surrogatepass"))
        names.append(name)
    for key, (make, _) in SHAPES.items():
        if key not in ("60000_phrases", "and_of_5000_tests"):  # covered above; slow-ish
            (tmp_path / f"{key}.route").write_text(make(), encoding="utf-8")
            names.append(f"{key}.route")
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps(names))
    driver = tmp_path / "driver.py"
    driver.write_text(_DRIVER)
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, str(driver), str(tmp_path), str(cases)],
            capture_output=True,
            text=True,
            timeout=90 * max(1, count // 160),
            cwd=tmp_path,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout if isinstance(e.stdout, str) else (e.stdout or b"").decode()
        last = out.strip().splitlines()[-1:] if out else []
        pytest.fail(f"hang: no result in {e.timeout} s; last started: {last}")
    last = proc.stdout.strip().splitlines()[-1:] or ["(nothing)"]
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode} during {last}"
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert last == ["done"]
    assert time.monotonic() - started < 90 * max(1, count // 160)


# -- the examples of docs/diagnostics.md added for these limits run as written ---------------


def _doc_examples(anchor: str) -> list[tuple[str, str]]:
    """(policy, printed output) pairs of one section of docs/diagnostics.md."""
    text = (ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    section = text.split(f'<a id="{anchor}"></a>', 1)[1].split("<a id=", 1)[0]
    blocks = section.split("```")[1::2]
    return [
        (blocks[i].lstrip("\n"), blocks[i + 1].lstrip("\n")) for i in range(0, len(blocks) - 1, 2)
    ]


@pytest.mark.parametrize(("anchor", "index"), [("e006", 1), ("e007", 1), ("e008", 0)])
def test_doc_example_output(anchor: str, index: int, tmp_path: Path) -> None:
    policy, expected = _doc_examples(anchor)[index]
    (tmp_path / "policy.route").write_text(policy, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "policyroute.cli", "check", "policy.route"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert proc.returncode == 1
    assert proc.stderr + proc.stdout == expected
