"""Every example in README.md and docs/*.md runs, and prints what the page says it prints.

Each fenced block of a page is one of:

- a console transcript (first line `$ ...`): each command runs (a plain `policyroute ARGS`
  in-process through `cli.main`, anything with shell syntax in bash; in a scratch copy of
  the repository's `policies/` and the page's policies) and its output (stderr, then stdout)
  must equal the lines below it up to the next `$`; `...` in the text matches any lines;
- an output block after a line "`policyroute ...` prints (exit N):": the command runs in a
  folder holding the page's last policy block as `policy.route`;
- a policy (plain block with a `default`): it loads, and is in canonical format; a policy
  whose first line is `# path/name.route` is written there first, so later commands use it;
- policy fragments (plain blocks of rules or declarations): they parse; trailing
  `# E201`-style comments name the code each line must produce;
- `sh`: each `policyroute` command runs and exits 0;
- `python`: it runs; a line `# (...)` after an expression is that expression's repr;
- `json`: it parses.

A block that cannot run says why in an HTML comment just above it: `<!-- not run: ... -->`.
Examples made of several files name each file in the line above its block ("`a.route`
(relative to `policy.route`):"). After an intended change of output, rewrite the outputs
with `UPDATE_DOCS=1 pytest tests/test_docs.py` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_in_process import run_main

import policyroute
from policyroute.syntax.formatter import format_source
from policyroute.syntax.parser import parse
from policyroute.syntax.source import Source

ROOT = Path(__file__).resolve().parent.parent
# Pages whose examples need a fixture this runner does not have (a fake Anthropic server, the
# RouteLLM data, a running proxy): each is executed by its own test, named here, so that a
# new page is tested by default.
OWN_TEST = {
    "editors.md": "tests/editors/test_editors_docs.py",
    "learn.md": "tests/learn/test_docs.py",
    "replay.md": "tests/measure/test_docs_replay.py",
    "runtime.md": "tests/runtime/test_runtime_docs.py",
    "serve.md": "tests/server/test_serve_docs.py",
    "shadow.md": "tests/shadow/test_shadow_docs.py",
}
PAGES = [
    ROOT / "README.md",
    *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name not in OWN_TEST),
]
PRINTS = re.compile(r"`(policyroute [^`]+)` prints \(exit (\d)\)")
# "`policy.route`:" or "`shared/tiers.route` (relative to `policy.route`):" before a block:
# the block is that file of the example.
FILE_NOTE = re.compile(r"^`([^`]+\.route)`(?: \(relative to `policy.route`\))?:$")
UPDATE = os.environ.get("UPDATE_DOCS") == "1"
# What makes bash do more than split a command line into words: variables, substitutions,
# escapes, pipes, lists, redirections, globs, braces, tildes, comments, history.
SHELL_SYNTAX = re.compile(r"[$`\\|&;<>()*?\[\]{}~#!\n]")
FRAGMENT_HEADER = """\
tier haiku  = "claude-haiku-4-5"  { input 1.00  output 5.00 }
tier sonnet = "claude-sonnet-4-6" { input 3.00  output 15.00 }
tier opus   = "claude-opus-4-7"   { input 5.00  output 25.00 }
keywords hard = ["deadlock"]
keywords outage = ["outage"]
classifier complexity using haiku labels ["simple", "complex"] prompt "?"
"""


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    text: str
    before: str  # the prose (and comments) between the previous block and this one

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    out: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i, prose_start = 0, 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and lines[end] != "```":
            end += 1
        before = "\n".join(lines[prose_start:i])
        out.append(Block(page, i + 1, m.group(1), "\n".join(lines[i + 1 : end]) + "\n", before))
        i = prose_start = end + 1
    return out


def _all() -> list[Block]:
    return [b for page in PAGES for b in blocks(page)]


def _skip_reason(b: Block) -> str | None:
    lines = b.before.rstrip().splitlines()
    m = re.match(r"^<!-- not run: (.+) -->$", lines[-1]) if lines else None
    return m.group(1) if m else None


def _workspace(tmp: Path) -> Path:
    shutil.copytree(ROOT / "policies", tmp / "policies")
    return tmp


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "NO_COLOR": "1",
        "COLUMNS": "100",
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    }


def _run(command: str, cwd: Path) -> tuple[int, str]:
    """A page's command: (exit status, stderr then stdout). A plain `policyroute ARGS` runs
    in-process (an interpreter per command made this the suite's slowest test); anything
    with shell syntax runs in bash."""
    argv = _plain_command(command)
    if argv is not None:
        r = run_main(argv, cwd=cwd, env=_env())
        return r.returncode, r.stderr + r.stdout
    return _run_in_bash(command, cwd)


def _run_in_bash(command: str, cwd: Path) -> tuple[int, str]:
    proc = subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, env=_env(), timeout=120
    )
    return proc.returncode, proc.stderr + proc.stdout


def _plain_command(command: str) -> list[str] | None:
    """The arguments of `policyroute ARGS` when bash would only split it into words (quotes
    with nothing bash expands inside them); None when bash has more to do."""
    if SHELL_SYNTAX.search(command):
        return None
    try:
        words = shlex.split(command)
    except ValueError:  # an unclosed quote: bash reports it
        return None
    return words[1:] if words and words[0] == "policyroute" else None


def _matches(expected: str, actual: str) -> bool:
    """Line by line; a line `...` stands for any number of lines, `...` inside a line for
    any text."""
    pattern = ""
    for line in expected.rstrip("\n").split("\n"):
        if line.strip() == "...":
            pattern += r"(?:.*\n)*?"
        else:
            pattern += ".*".join(re.escape(p) for p in line.split("...")) + r"\n"
    return re.fullmatch(pattern, actual.rstrip("\n") + "\n") is not None


def _transcript(b: Block, cwd: Path) -> str:
    """Run a transcript's commands, check their outputs; the transcript as it really ran."""
    commands: list[tuple[str, list[str]]] = []
    for line in b.text.rstrip("\n").split("\n"):
        if line.startswith("$ "):
            commands.append((line[2:], []))
        else:
            assert commands, f"{b.where}: output before any command"
            commands[-1][1].append(line)
    last = 0
    real = ""
    for shown, expected in commands:
        command = shown.replace("$?", str(last))
        last, output = _run(command, cwd)
        real += f"$ {shown}\n{output}"
        if UPDATE:
            continue
        want = "\n".join(expected)
        assert _matches(want, output), (
            f"{b.where}: `{command}` printed:\n{output}\n--- the page says:\n{want}"
        )
    return real


def _is_policy(text: str) -> bool:
    """A whole policy: it has a default, and tiers of its own or an import."""
    has_default = re.search(r"^default\b", text, re.M) is not None
    return has_default and ("tier " in text or re.search(r"^import ", text, re.M) is not None)


def _check_fragment(b: Block) -> None:
    text = b.text
    expected: dict[int, str] = {}
    for n, line in enumerate(text.splitlines()):
        m = re.search(r"#\s*(E\d{3}|W\d{3})\b", line)
        if m:
            expected[n] = m.group(1)
    if expected:
        body = FRAGMENT_HEADER + text + "default -> haiku\n"
        offset = FRAGMENT_HEADER.count("\n")
        with pytest.raises(policyroute.PolicyError) as e:
            policyroute.loads(body)
        got = {d.line - 1 - offset: d.code for d in e.value.diagnostics if d.is_error}
        assert got == expected, f"{b.where}: {got} != {expected}"
        return
    _module, problems = parse(Source(text, b.where))
    assert not problems, f"{b.where}: " + "; ".join(d.message for d in problems)


def _python(b: Block, cwd: Path, scope: dict[str, object]) -> None:
    """Run a python block in the page's shared scope (later blocks use earlier names)."""
    lines = b.text.splitlines()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        code: list[str] = []
        for i, line in enumerate(lines):
            m = re.match(r"^# (\(.*\)|'.*'|\d.*)$", line)
            if m and i > 0:
                exec("\n".join(code[:-1]), scope)
                value = eval(code[-1], scope)
                assert repr(value) == m.group(1), f"{b.where}: {value!r} != {m.group(1)}"
                code = []
            else:
                code.append(line)
        exec("\n".join(code), scope)
    finally:
        os.chdir(old)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page(page: Path, tmp_path: Path) -> None:
    updates: list[tuple[Block, str]] = []
    try:
        _run_page(page, tmp_path, updates)
    finally:
        if UPDATE and updates:
            _rewrite(page, updates)


def _run_page(page: Path, tmp_path: Path, updates: list[tuple[Block, str]]) -> None:
    cwd = _workspace(tmp_path)
    snippet: dict[str, str] = {}  # the files of the example being shown, by path
    scope: dict[str, object] = {}
    found = blocks(page)
    for k, b in enumerate(found):
        # An example of a mistake: the policy before an output of exit 1 is broken on purpose.
        later = [PRINTS.search(x.before) for x in found[k + 1 : k + 4]]
        broken = any(m is not None and m.group(2) == "1" for m in later)
        if _skip_reason(b):
            snippet = {}
            continue
        first = b.text.split("\n", 1)[0]
        if first.startswith("$ "):
            where = cwd
            if any(name in b.text for name in snippet):  # about the example shown above
                where = _snippet_folder(tmp_path / f"snippet-{b.line}", snippet)
            real = _transcript(b, where)
            if UPDATE:
                updates.append((b, real))
            continue
        prose = b.before.strip().splitlines()
        prints = PRINTS.search(prose[-1]) if prose else None
        if prints and b.lang == "":
            assert snippet, f"{b.where}: no policy before this output (or a not-run note)"
            folder = _snippet_folder(tmp_path / f"snippet-{b.line}", snippet)
            code, output = _run(prints.group(1), folder)
            if UPDATE:
                updates.append((b, output))
                continue
            assert code == int(prints.group(2)), f"{b.where}: exit {code}\n{output}"
            assert _matches(b.text, output), (
                f"{b.where}: `{prints.group(1)}` printed:\n{output}\n--- the page says:\n{b.text}"
            )
            continue
        named = FILE_NOTE.match(prose[-1]) if prose else None
        if named and b.lang == "":
            if named.group(1) == "policy.route":
                snippet = {}
            snippet[named.group(1)] = b.text
            continue  # a file of an example; what it makes `check` print is tested
        if b.lang == "sh":
            for command in re.split(r"\s*&&\s*|\n", b.text):
                if command.strip().startswith("policyroute"):
                    code, output = _run(command, cwd)
                    assert code == 0, f"{b.where}: `{command}` exited {code}\n{output}"
            continue
        if b.lang == "python":
            _python(b, cwd, scope)
            continue
        if b.lang == "json":
            json.loads(b.text)
            continue
        assert b.lang in ("", "route"), f"{b.where}: a block of {b.lang!r} needs a not-run note"
        if not named:
            snippet = {"policy.route": b.text}
        if broken:
            continue
        if _is_policy(b.text):
            m = re.match(r"^# (\S+\.route)\n", b.text)
            target = cwd / m.group(1) if m else cwd / "policy.route"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(b.text, encoding="utf-8")
            try:
                policyroute.load(target)
            except policyroute.PolicyError as e:
                raise AssertionError(f"{b.where}: the policy does not load:\n{e}") from None
            if m or b.text.startswith("policy "):  # a whole policy to copy: as fmt writes it
                assert format_source(b.text, b.where) == b.text, f"{b.where}: not canonical"
        elif "import " not in b.text:
            _check_fragment(b)


def _snippet_folder(base: Path, files: dict[str, str]) -> Path:
    folder = base / "policy"
    for name, text in files.items():
        target = (folder / name).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return folder


def _rewrite(page: Path, updates: list[tuple[Block, str]]) -> None:
    """UPDATE_DOCS=1: put each command's real output into the page (review the diff)."""
    lines = page.read_text(encoding="utf-8").splitlines(keepends=True)
    for b, output in sorted(updates, key=lambda u: -u[0].line):
        n = b.text.count("\n")
        lines[b.line : b.line + n] = [output if output.endswith("\n") else output + "\n"]
    page.write_text("".join(lines), encoding="utf-8")


def test_every_block_is_run_or_says_why() -> None:
    """No example escapes the test silently: each block is of a kind test_page runs, or it
    carries a not-run note with a reason."""
    for b in _all():
        if _skip_reason(b):
            continue
        assert b.lang in ("", "route", "sh", "python", "json"), f"{b.where}: {b.lang}"


def test_pages_with_their_own_test_have_it() -> None:
    for page, test in OWN_TEST.items():
        assert (ROOT / "docs" / page).exists(), page
        assert page in (ROOT / test).read_text(encoding="utf-8"), f"{test} does not run {page}"


@pytest.mark.parametrize(
    "command",
    [
        "policyroute check broken.route",
        "policyroute check --format nope policies/coding-assistant.route",
        'policyroute route policies/coding-assistant.route --prompt "Find the deadlock" --explain',
    ],
)
def test_a_plain_command_prints_in_process_what_it_prints_in_bash(
    command: str, tmp_path: Path
) -> None:
    """The in-process fast path of `_run` is only a shortcut: exit status and output are
    the installed command's, for a broken policy, a usage error (argparse exits) and quoted
    words. (All 64 plain commands of the pages compared equal when this runner was written.)"""
    cwd = _workspace(tmp_path)
    (cwd / "broken.route").write_text("tier haiku = \n", encoding="utf-8")
    assert _plain_command(command) is not None
    assert _run(command, cwd) == _run_in_bash(command, cwd)
