"""The public runtime API: light import, the supported SDK range, reprs, records that read back."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import anthropic
import pytest
from fake_anthropic import FakeAnthropic, Fault, Reply
from runtime_support import HAIKU, POLICY_TEXT, SECRET_KEY, default_client, user

import policyroute
from policyroute.runtime import (
    AsyncRouter,
    EscalationError,
    Router,
    RoutingMiddleware,
    StreamInterruptedError,
    sdk,
)
from policyroute.runtime.records import DecisionRecord

ROOT = Path(__file__).resolve().parents[2]


def test_import_policyroute_loads_no_sdk_and_no_http_library() -> None:
    code = (
        "import sys, policyroute; policyroute.load; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('anthropic', 'httpx', 'httpx2', 'httpcore', 'httpcore2', 'watchfiles')]; "
        "print(','.join(sorted(bad)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_top_level_names_are_the_runtime_classes() -> None:
    assert policyroute.Router is Router
    assert policyroute.AsyncRouter is AsyncRouter
    assert policyroute.RoutingMiddleware is RoutingMiddleware
    assert policyroute.EscalationError is EscalationError
    assert (ROOT / "policyroute" / "py.typed").exists()


def test_the_declared_sdk_range_is_the_checked_and_tested_one() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    [spec] = [d for d in project["dependencies"] if d.startswith("anthropic")]
    assert spec == sdk.SUPPORTED
    low = re.search(r">=([\d.]+)", spec)
    assert low is not None
    assert tuple(int(x) for x in (low.group(1) + ".0").split(".")[:3]) == sdk.MIN_VERSION
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"anthropic=={'.'.join(map(str, sdk.MIN_VERSION))}" in ci  # CI tests the lowest
    assert sdk.MIN_VERSION <= sdk.VERSION < sdk.BELOW_VERSION


def test_an_sdk_outside_the_range_fails_with_what_to_install() -> None:
    code = (
        "import anthropic; anthropic.__version__ = '0.40.0'\n"
        "try:\n    import policyroute.runtime\n"
        "except ImportError as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("SDKVersionError")
    assert "pip install 'anthropic>=" in out.stdout and "0.40.0 is installed" in out.stdout


def test_reprs_say_what_they_are(fake: FakeAnthropic, policy: policyroute.Policy) -> None:
    router = Router(policy, default_client(fake.base_url))
    assert repr(router).startswith("<Router policy runtime-test rev ")
    assert "max_retries=2" in repr(router)
    result = router.create(messages=user("hi"))
    assert repr(result).startswith("<RoutedResult sonnet by rule default")
    assert "RoutingMiddleware policy runtime-test" in repr(RoutingMiddleware(policy))
    assert SECRET_KEY not in repr(router)


UNNAMED = POLICY_TEXT.replace('policy "runtime-test"', "")


@pytest.mark.parametrize("named", [True, False])
def test_every_record_kind_reads_back(fake: FakeAnthropic, tmp_path: Path, named: bool) -> None:
    policy = policyroute.loads(POLICY_TEXT if named else UNNAMED)
    path = tmp_path / "r.jsonl"
    router = Router(policy, default_client(fake.base_url), records=path, log_prompts=True)
    router.create(messages=user("hi"))  # ok
    fake.script(HAIKU, [Reply.json({"label": "easy", "confidence": 0.9})])
    router.create(messages=user("hi"), route={"task": "judge"})  # ok, with a classification
    fake.script(HAIKU, [Reply(status=400)])
    with pytest.raises(EscalationError):
        router.create(messages=user("hi"), route={"task": "never"})  # failed
    fake.script(HAIKU, [Reply(text="a b c", chunks=3, fault=Fault(cut="content"))])
    with (
        pytest.raises(StreamInterruptedError),
        router.stream(messages=user("hi"), route={"task": "never"}) as s,
    ):
        s.get_result()  # interrupted
    lines = path.read_text().splitlines()
    records = [DecisionRecord.model_validate_json(line) for line in lines]
    assert [r.outcome for r in records] == ["ok", "ok", "failed", "interrupted"]
    assert [a.kind for a in records[1].attempts] == ["classify", "generate"]
    assert all((r.policy == "runtime-test") == named for r in records)
    assert records[2].final_tier is None and records[2].error
    for line, record in zip(lines, records, strict=True):
        assert (
            DecisionRecord.model_validate_json(record.model_dump_json(exclude_none=True)) == record
        )
        assert "cost" not in line.replace("cost_usd", "")


def test_a_default_router_has_sensible_deadlines() -> None:
    from policyroute.runtime import Deadlines

    d = Deadlines()
    assert d.request == 3600 and d.max_retry_after == 60
    assert d.attempt_seconds(1024) == 600 and d.attempt_seconds(128_000) == 3600
    with pytest.raises(ValueError):
        Deadlines(request=0)


def test_the_sdk_module_is_the_only_private_sdk_import() -> None:
    private = re.compile(r"^\s*(from|import)\s+anthropic\._", re.M)
    offenders = [
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "policyroute").rglob("*.py")
        if private.search(p.read_text())
    ]
    assert offenders == []
    assert isinstance(anthropic.__version__, str)


def test_a_failing_record_sink_loses_neither_the_answer_nor_the_attempts(
    fake: FakeAnthropic, policy: policyroute.Policy, caplog: pytest.LogCaptureFixture
) -> None:
    class Full:
        def write(self, record: DecisionRecord) -> None:
            raise OSError(28, "No space left on device")

    router = Router(policy, default_client(fake.base_url), records=Full())
    assert router.create(messages=user("hi")).text == "hello"
    fake.script(HAIKU, [Reply(status=400)])
    with pytest.raises(EscalationError) as info:
        router.create(messages=user("hi"), route={"task": "never"})
    assert len(info.value.attempts) == 1
    assert "could not write the record" in caplog.text
