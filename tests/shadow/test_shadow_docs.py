"""docs/shadow.md is executed: its policy is written, its Python blocks run, its console
commands run, against the fake Anthropic server, and each output shown is what they print
(ids, times and latencies aside). UPDATE_DOCS=1 rewrites the outputs after an intended change.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from fake_anthropic import FakeAnthropic, Reply

DOC = Path(__file__).resolve().parents[2] / "docs" / "shadow.md"
UPDATE = os.environ.get("UPDATE_DOCS") == "1"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)

# What the tiers answer, and what a good answer is for the judge.
STRONG = {
    "How do I reset my password?": "Open Settings > Security and choose Reset password; we email you a link.",
    "Can I get a refund after 30 days?": "Refunds are possible within 30 days of purchase; after that, support can offer a prorated credit.",
    "Do you support SSO with Okta?": "Yes: SAML single sign-on with Okta, Azure AD and Google is part of the Business plan.",
}
WEAK = {
    "How do I reset my password?": "Go to Settings > Security > Reset password.",
    "Can I get a refund after 30 days?": "Yes, refunds are available at any time.",
    "Do you support SSO with Okta?": "Yes, SAML SSO works with Okta on the Business plan.",
    "Export my data as CSV": "Settings > Data > Export, then pick CSV.",
}
WRONG = {"Yes, refunds are available at any time."}


def _question(body: dict) -> str:
    return str(body["messages"][-1]["content"])


def _judge(body: dict) -> Reply:
    text = body["messages"][0]["content"]
    if "<answer_a>" in text:
        a = text.split("<answer_a>\n")[1].split("\n</answer_a>")[0]
        b = text.split("<answer_b>\n")[1].split("\n</answer_b>")[0]
        verdict = "B" if a in WRONG else "A" if b in WRONG else "C"
        return Reply(text=f"Compared. [[{verdict}]]", input_tokens=len(text) // 4, output_tokens=60)
    answer = text.split("<answer>\n")[1].split("\n</answer>")[0]
    rating = 2 if answer in WRONG else 9 if len(answer) > 60 else 8
    return Reply(
        text=f"Checked the facts. Rating: [[{rating}]]",
        input_tokens=len(text) // 4,
        output_tokens=80,
    )


def _normalize(text: str) -> str:
    text = re.sub(r"\bpr_[0-9a-f]{24}\b|\b[0-9a-f]{32}\b", "<id>", text)
    text = re.sub(r"msgbatch_[0-9a-f]{24}", "msgbatch_<id>", text)
    text = re.sub(r'"latency_ms": [0-9.e-]+', '"latency_ms": <ms>', text)
    text = re.sub(r'"time": "[^"]+"', '"time": <time>', text)
    return text


def _run_console(block: str, cwd: Path, env: dict[str, str]) -> str:
    out = []
    for line in block.splitlines():
        if not line.startswith("$ "):
            continue
        argv = shlex.split(line[2:])
        assert argv[0] == "policyroute"
        proc = subprocess.run(
            [sys.executable, "-m", "policyroute.cli", *argv[1:]],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
        )
        assert "Traceback" not in proc.stdout, proc.stdout
        out.append(line + "\n" + proc.stdout)
    return "".join(out)


def test_walkthrough(fake: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.responders["claude-sonnet-4-6"] = lambda b: Reply(
        text=STRONG[_question(b)], input_tokens=24, output_tokens=30
    )
    fake.responders["claude-haiku-4-5"] = lambda b: Reply(
        text=WEAK[_question(b)], input_tokens=24, output_tokens=18
    )
    fake.responders["claude-opus-4-7"] = _judge
    monkeypatch.chdir(tmp_path)
    env = {
        **os.environ,
        "ANTHROPIC_BASE_URL": fake.base_url,
        "ANTHROPIC_API_KEY": "test",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "100",
    }
    monkeypatch.setenv("XDG_CACHE_HOME", env["XDG_CACHE_HOME"])
    doc = DOC.read_text(encoding="utf-8")
    namespace: dict[str, object] = {}
    last_output = ""
    rewritten = doc
    for match in BLOCK.finditer(doc):
        kind, body = match.group(1), match.group(2)
        if kind == "route":
            name = body.splitlines()[0].lstrip("# ").strip()
            (tmp_path / name).write_text(body, encoding="utf-8")
        elif kind == "python":
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                exec(compile(body, str(DOC), "exec"), namespace)
            last_output = buf.getvalue()
        elif kind == "output":
            if UPDATE:
                rewritten = rewritten.replace(match.group(0), f"```output\n{last_output}```", 1)
            else:
                assert _normalize(body) == _normalize(last_output)
        elif kind == "console":
            got = _run_console(body, tmp_path, env)
            if UPDATE:
                rewritten = rewritten.replace(match.group(0), f"```console\n{got}```", 1)
            else:
                assert _normalize(body) == _normalize(got)
    if UPDATE:
        DOC.write_text(rewritten, encoding="utf-8")
