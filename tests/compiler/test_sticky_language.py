"""The `sticky conversations` statement: parsing, formatting round trip, checking."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import policyroute
from policyroute.compiler.check import MAX_STICKY_SECONDS, STICKY_UNITS
from policyroute.syntax import ast
from policyroute.syntax.diagnostics import PolicyError
from policyroute.syntax.formatter import format_source
from policyroute.syntax.parser import parse
from policyroute.syntax.source import Source

HEAD = 'tier haiku = "claude-haiku-4-5" { input 1 output 5 }\n'
TAIL = "default -> haiku\n"

numbers = st.one_of(
    st.integers(0, 100_000).map(str),
    st.sampled_from(["1.5", "0.5", "1_000", "10k", "2m", "0", "90"]),
)
space = st.sampled_from([" ", "  ", "\n", " \t", "\n  "])


@settings(max_examples=300, deadline=None)
@given(
    number=numbers,
    unit=st.one_of(st.none(), st.sampled_from([*STICKY_UNITS, "minuts", "days", "m"])),
    gaps=st.lists(space, min_size=3, max_size=3),
    comment=st.booleans(),
    first=st.booleans(),
)
def test_round_trip_and_window(
    number: str, unit: str | None, gaps: list[str], comment: bool, first: bool
) -> None:
    statement = f"sticky{gaps[0]}conversations{gaps[1]}{number}"
    if unit is not None:
        statement += f"{gaps[2]}{unit}"
    if comment:
        statement += "  # why"
    text = (statement + "\n" + HEAD + TAIL) if first else (HEAD + statement + "\n" + TAIL)
    module, diags = parse(Source(text))
    assert not diags
    (node,) = [s for s in module.statements if isinstance(s, ast.StickyDecl)]
    once = format_source(text)
    again, diags = parse(Source(once))
    assert not diags and again == module
    assert format_source(once) == once
    assert ("# why" in once) == comment
    try:
        policy = policyroute.loads(text)
    except PolicyError as e:
        codes = {d.code for d in e.diagnostics}
        assert codes == {"E125"}, codes
        scale = STICKY_UNITS.get(unit or "")
        assert scale is None or not 0 < node.window.value * scale <= MAX_STICKY_SECONDS
        return
    assert unit in STICKY_UNITS
    assert policy.sticky_window == node.window.value * STICKY_UNITS[unit]


def test_imported_sticky_is_not_taken(tmp_path: Path) -> None:
    lib = tmp_path / "lib.route"
    lib.write_text(HEAD + "sticky conversations 5 minutes\n")
    main = tmp_path / "main.route"
    main.write_text('import "lib.route"\n' + TAIL)
    assert policyroute.load(main).sticky_window is None


def test_sticky_is_reserved_and_a_statement_boundary() -> None:
    with pytest.raises(PolicyError) as info:
        policyroute.loads('tier sticky = "m" { input 1 output 1 }\ndefault -> sticky\n')
    assert "E117" in {d.code for d in info.value.diagnostics}
    # A broken rule before it does not swallow the sticky statement (recovery splits there).
    with pytest.raises(PolicyError) as info:
        policyroute.loads(
            HEAD + "rule bad: prompt contains -> haiku\nsticky conversations 1 s\n" + TAIL
        )
    assert [d.line for d in info.value.diagnostics] == [2]


def test_serve_stack_is_not_imported_by_the_package() -> None:
    code = (
        "import sys, policyroute, policyroute.cli\n"
        "policyroute.cli.make_parser()\n"
        "heavy = [m for m in ('starlette', 'uvicorn', 'aiohttp', 'prometheus_client') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_route_says_what_happens_beside_the_decision(tmp_path: Path) -> None:
    """`route` names the shadow copies a request would send and the floor its conversation
    keeps, in both formats; a policy with neither prints neither."""
    path = tmp_path / "p.route"
    path.write_text(
        'tier haiku = "claude-haiku-4-5" { input 1 output 5 }\n'
        'tier opus = "claude-opus-4-7" { input 5 output 25 }\n'
        "shadow haiku sample 5%\n"
        "sticky conversations 90 seconds\n"
        'rule hard: prompt contains "deadlock" -> opus\n'
        "default -> haiku\n"
    )

    def route(prompt: str, *extra: str) -> str:
        cmd = [str(Path(sys.executable).parent / "policyroute"), "route", str(path), "--prompt", prompt]
        cmd += extra
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout

    out = route("a deadlock")
    assert "shadow:     5% of the requests routed here are also sent to haiku" in out
    assert "sticky:     for 90 s, a later turn of this conversation goes to opus" in out
    assert "shadow:" not in route("hello")  # routed to haiku: nothing below it to shadow
    import json

    data = json.loads(route("a deadlock", "--format", "json"))
    assert data["shadows"] == [{"tier": "haiku", "share": 0.05}]
    assert data["sticky_window_s"] == 90
    path.write_text('tier haiku = "claude-haiku-4-5" { input 1 output 5 }\ndefault -> haiku\n')
    assert "shadow:" not in route("x") and "sticky:" not in route("x")
    assert json.loads(route("x", "--format", "json"))["shadows"] == []
