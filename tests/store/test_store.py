"""Hot reload (issue 4): the store swaps in good edits, keeps serving through bad ones."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policyroute
from policyroute.store import PolicyStore, awatch, watch
from policyroute.syntax.diagnostics import PolicyError

TIERS = """\
tier haiku = "claude-haiku-4-5" { input 1 output 5 }
tier opus  = "claude-opus-4-7"  { input 5 output 25 }
"""

# A sends prompts over 100 characters to opus, B those over 10: a 50-character prompt tells
# the two versions apart.
POLICY_A = f"""\
policy "a"
{TIERS}rule long: length > 100 -> opus
default -> haiku
"""
POLICY_B = POLICY_A.replace("length > 100", "length > 10")
BROKEN = POLICY_A.replace("length > 100 -> opus", "length > -> opus")
MID = "x" * 50

WAIT_S = 8.0


def wait_for(cond: Callable[[], bool], timeout: float = WAIT_S) -> bool:
    """Poll `cond` until it holds or the deadline passes; no fixed sleeps in these tests."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


def replace_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class Recorder:
    """Collects callback arguments from the watcher thread."""

    def __init__(self) -> None:
        self.reloads: list[Any] = []
        self.errors: list[PolicyError] = []

    def on_reload(self, policy: Any) -> None:
        self.reloads.append(policy)

    def on_error(self, error: PolicyError) -> None:
        self.errors.append(error)

    def codes(self) -> set[str]:
        return {d.code for e in self.errors for d in e.diagnostics}


def watcher_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("policyroute-watch:")]


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    p = tmp_path / "policy.route"
    p.write_text(POLICY_A)
    return p


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def store(policy_file: Path, rec: Recorder) -> Any:
    s = watch(policy_file, rec.on_reload, rec.on_error)
    yield s
    s.close()


def routes_mid_to(store: PolicyStore | Any, tier: str) -> Callable[[], bool]:
    return lambda: bool(store.decide(prompt=MID).tier == tier)


def test_initial_policy_and_revision(store: PolicyStore, policy_file: Path) -> None:
    expected = policyroute.load(policy_file)
    assert store.revision == expected.revision
    assert store.policy.revision == expected.revision
    d = store.decide(prompt=MID)
    assert (d.tier, d.rule) == ("haiku", "default")
    assert d.revision == store.revision
    assert store.decide(prompt="y" * 150).tier == "opus"


def test_edit_is_live_for_new_decisions(
    store: PolicyStore, policy_file: Path, rec: Recorder
) -> None:
    old = store.revision
    policy_file.write_text(POLICY_B)
    assert wait_for(routes_mid_to(store, "opus"))
    d = store.decide(prompt=MID)
    assert d.rule == "long"
    assert store.revision != old
    assert d.revision == store.revision == policyroute.load(policy_file).revision
    assert wait_for(lambda: len(rec.reloads) >= 1)
    assert rec.reloads[-1].revision == store.revision


def test_broken_edit_keeps_last_good_and_reports(
    store: PolicyStore, policy_file: Path, rec: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    good = store.revision
    with caplog.at_level("WARNING", logger="policyroute.store"):
        policy_file.write_text(BROKEN)
        assert wait_for(lambda: bool(rec.errors))
    assert isinstance(rec.errors[0], PolicyError)
    assert rec.errors[0].diagnostics
    assert all(d.code.startswith(("E", "W")) for d in rec.errors[0].diagnostics)
    assert any(
        r.name == "policyroute.store" and "rejected" in r.getMessage() for r in caplog.records
    )
    # Still the old version, complete.
    assert store.revision == good
    d = store.decide(prompt=MID)
    assert (d.tier, d.rule, d.revision) == ("haiku", "default", good)

    # The next good edit is picked up.
    policy_file.write_text(POLICY_B)
    assert wait_for(routes_mid_to(store, "opus"))
    assert store.decide(prompt=MID).revision == store.revision != good


def test_write_temp_then_rename(store: PolicyStore, policy_file: Path) -> None:
    replace_atomically(policy_file, POLICY_B)
    assert wait_for(routes_mid_to(store, "opus"))
    replace_atomically(policy_file, POLICY_A)
    assert wait_for(routes_mid_to(store, "haiku"))


def test_delete_then_create(store: PolicyStore, policy_file: Path, rec: Recorder) -> None:
    good = store.revision
    policy_file.unlink()
    assert wait_for(lambda: "E005" in rec.codes())
    assert store.revision == good
    assert store.decide(prompt=MID).tier == "haiku"
    policy_file.write_text(POLICY_B)
    assert wait_for(routes_mid_to(store, "opus"))


def _configmap_publish(root: Path, files: dict[str, str], n: int) -> None:
    """Publish `files` the way the kubelet's atomic writer updates a mounted ConfigMap."""
    stamp = root / f"..2024_01_01_00_00_{n:02d}.{n}"
    stamp.mkdir()
    for name, text in files.items():
        (stamp / name).write_text(text)
    old = root / "..data"
    previous = Path(os.readlink(old)) if old.is_symlink() else None
    tmp_link = root / "..data_tmp"
    tmp_link.symlink_to(stamp.name)
    os.replace(tmp_link, old)
    for name in files:
        link = root / name
        if not link.is_symlink():
            link.symlink_to(Path("..data") / name)
    if previous is not None:
        shutil.rmtree(root / previous)


def test_configmap_symlink_swap(tmp_path: Path, rec: Recorder) -> None:
    root = tmp_path / "config"
    root.mkdir()
    _configmap_publish(root, {"policy.route": POLICY_A}, 1)
    with watch(root / "policy.route", rec.on_reload, rec.on_error) as store:
        assert store.decide(prompt=MID).tier == "haiku"
        _configmap_publish(root, {"policy.route": POLICY_B}, 2)
        assert wait_for(routes_mid_to(store, "opus"))
        _configmap_publish(root, {"policy.route": POLICY_A}, 3)
        assert wait_for(routes_mid_to(store, "haiku"))
    assert not rec.errors


def test_configmap_swap_of_an_import(tmp_path: Path, rec: Recorder) -> None:
    root = tmp_path / "config"
    root.mkdir()
    main = 'import "tiers.route"\nrule long: length > 10 -> opus\ndefault -> haiku\n'
    _configmap_publish(root, {"policy.route": main, "tiers.route": TIERS}, 1)
    with watch(root / "policy.route", rec.on_reload, rec.on_error) as store:
        assert store.decide(prompt=MID).model == "claude-opus-4-7"
        tiers2 = TIERS.replace("claude-opus-4-7", "claude-opus-4-1")
        _configmap_publish(root, {"policy.route": main, "tiers.route": tiers2}, 2)
        assert wait_for(lambda: store.decide(prompt=MID).model == "claude-opus-4-1")
    assert not rec.errors


def test_import_change_reloads(tmp_path: Path, rec: Recorder) -> None:
    (tmp_path / "tiers.route").write_text(TIERS)
    main = tmp_path / "policy.route"
    main.write_text('import "tiers.route"\nrule long: length > 10 -> opus\ndefault -> haiku\n')
    with watch(main, rec.on_reload, rec.on_error) as store:
        assert {p.name for p in store.policy.files} == {"policy.route", "tiers.route"}
        assert store.decide(prompt=MID).model == "claude-opus-4-7"
        (tmp_path / "tiers.route").write_text(TIERS.replace("claude-opus-4-7", "claude-opus-4-1"))
        assert wait_for(lambda: store.decide(prompt=MID).model == "claude-opus-4-1")
    assert not rec.errors


def test_new_import_is_watched_after_reload(tmp_path: Path, rec: Recorder) -> None:
    """The watched set follows the imports: a file imported only after an edit is followed."""
    sub = tmp_path / "shared"
    sub.mkdir()
    (sub / "tiers.route").write_text(TIERS)
    main = tmp_path / "policy.route"
    main.write_text(POLICY_A)
    with watch(main, rec.on_reload, rec.on_error) as store:
        main.write_text(
            'import "shared/tiers.route"\nrule long: length > 10 -> opus\ndefault -> haiku\n'
        )
        assert wait_for(routes_mid_to(store, "opus"))
        (sub / "tiers.route").write_text(TIERS.replace("claude-opus-4-7", "claude-opus-4-1"))
        assert wait_for(lambda: store.decide(prompt=MID).model == "claude-opus-4-1")


def test_import_cycle_keeps_last_good(tmp_path: Path, rec: Recorder) -> None:
    (tmp_path / "tiers.route").write_text(TIERS)
    (tmp_path / "more.route").write_text('keywords k = ["a"]\n')
    main = tmp_path / "policy.route"
    main.write_text(
        'import "tiers.route"\nimport "more.route"\n'
        "rule long: length > 100 -> opus\ndefault -> haiku\n"
    )
    with watch(main, rec.on_reload, rec.on_error) as store:
        good = store.revision
        (tmp_path / "more.route").write_text('import "tiers2.route"\nkeywords k = ["a"]\n')
        (tmp_path / "tiers2.route").write_text('import "more.route"\n')
        assert wait_for(lambda: "E403" in rec.codes())
        assert store.revision == good
        assert store.decide(prompt=MID).tier == "haiku"
        # Breaking the cycle recovers, even though tiers2.route was never part of a good version.
        (tmp_path / "tiers2.route").write_text('keywords j = ["b"]\n')
        assert wait_for(lambda: store.revision != good)


def test_fix_in_a_file_the_broken_version_introduced(tmp_path: Path, rec: Recorder) -> None:
    main = tmp_path / "policy.route"
    main.write_text(POLICY_A)
    with watch(main, rec.on_reload, rec.on_error) as store:
        main.write_text('import "tiers.route"\nrule long: length > 10 -> opus\ndefault -> haiku\n')
        assert wait_for(lambda: "E401" in rec.codes())
        assert store.decide(prompt=MID).tier == "haiku"
        (tmp_path / "tiers.route").write_text(TIERS)
        assert wait_for(routes_mid_to(store, "opus"))


def test_unchanged_revision_is_not_swapped(
    store: PolicyStore, policy_file: Path, rec: Recorder
) -> None:
    before = store.policy
    assert store.reload() is False
    policy_file.write_text(POLICY_A)  # same bytes, new mtime
    os.utime(policy_file)
    assert store.reload() is False
    assert store.policy is before
    assert rec.reloads == []


def test_explicit_reload(tmp_path: Path, rec: Recorder) -> None:
    main = tmp_path / "policy.route"
    main.write_text(POLICY_A)
    with watch(main, rec.on_reload, rec.on_error) as store:
        store.close()  # only the explicit path remains
        main.write_text(BROKEN)
        assert store.reload() is False  # reported, not raised
        assert rec.errors and store.decide(prompt=MID).tier == "haiku"
        main.write_text(POLICY_B)
        assert store.reload() is True
        assert store.decide(prompt=MID).tier == "opus"


def test_polling(tmp_path: Path, rec: Recorder) -> None:
    main = tmp_path / "policy.route"
    main.write_text(POLICY_A)
    with watch(main, rec.on_reload, rec.on_error, force_polling=True, poll_interval=0.05) as s:
        main.write_text(POLICY_B)
        assert wait_for(routes_mid_to(s, "opus"))


def test_initial_failure_raises(tmp_path: Path) -> None:
    before = watcher_threads()
    broken = tmp_path / "broken.route"
    broken.write_text(BROKEN)
    with pytest.raises(PolicyError):
        watch(broken)
    with pytest.raises(PolicyError) as missing:
        watch(tmp_path / "missing.route")
    assert "E005" in {d.code for d in missing.value.diagnostics}
    assert watcher_threads() == before


def test_close_twice_and_no_thread_left(policy_file: Path) -> None:
    before = set(threading.enumerate())
    store = watch(policy_file)
    assert watcher_threads()
    store.close()
    store.close()
    assert store.closed
    assert set(threading.enumerate()) <= before
    # Deciding still works after close: the last policy stays, it just is no longer followed.
    assert store.decide(prompt=MID).tier == "haiku"


def test_context_manager_closes(policy_file: Path) -> None:
    with watch(policy_file) as store:
        assert not store.closed
    assert store.closed
    assert not watcher_threads()


def test_faulty_callbacks_do_not_stop_the_watcher(policy_file: Path) -> None:
    def boom(_: object) -> None:
        raise RuntimeError("callback bug")

    with watch(policy_file, boom, boom) as store:
        policy_file.write_text(BROKEN)
        policy_file.write_text(POLICY_B)
        assert wait_for(routes_mid_to(store, "opus"))
        policy_file.write_text(POLICY_A)
        assert wait_for(routes_mid_to(store, "haiku"))


def test_async_store(policy_file: Path, rec: Recorder) -> None:
    async def main() -> None:
        async with awatch(policy_file, rec.on_reload, rec.on_error) as store:
            assert store.decide(prompt=MID).tier == "haiku"
            policy_file.write_text(BROKEN)
            await until(lambda: bool(rec.errors))
            assert store.decide(prompt=MID).tier == "haiku"
            policy_file.write_text(POLICY_B)
            await until(routes_mid_to(store, "opus"))
            assert store.decide(prompt=MID).revision == store.revision
            assert await store.reload() is False
        assert store.closed
        await store.aclose()  # twice is fine

    async def until(cond: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT_S
        while not cond():
            assert time.monotonic() < deadline, "condition not met in time"
            await asyncio.sleep(0.005)

    asyncio.run(main())


def test_async_initial_failure_raises(tmp_path: Path) -> None:
    with pytest.raises(PolicyError):
        awatch(tmp_path / "missing.route")


# --- concurrency --------------------------------------------------------------------------

prompts = st.lists(st.text(max_size=160), min_size=5, max_size=40)


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(prompts=prompts, seed=st.integers(0, 2**32 - 1))
def test_readers_never_see_a_mix(prompts: list[str], seed: int) -> None:
    rnd = random.Random(seed)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "policy.route"
        path.write_text(POLICY_A)
        with watch(path) as store:
            policy_a, rev_a = store.policy, store.revision
            replace_atomically(path, POLICY_B)
            assert wait_for(lambda: store.revision != rev_a)
            policy_b, rev_b = store.policy, store.revision

            allowed = [
                {
                    (a.tier, a.rule, rev_a),
                    (b.tier, b.rule, rev_b),
                }
                for a, b in (
                    (policy_a.decide(prompt=p), policy_b.decide(prompt=p)) for p in prompts
                )
            ]
            failures: list[str] = []
            seen: set[str] = set()
            stop = threading.Event()

            def reader() -> None:
                try:
                    while not stop.is_set():
                        for p, ok in zip(prompts, allowed, strict=True):
                            d = store.decide(prompt=p)
                            got = (d.tier, d.rule, d.revision)
                            seen.add(d.revision)
                            if got not in ok:
                                failures.append(f"{p!r}: {got} not in {ok}")
                except Exception as e:  # the test's point: there must be none
                    failures.append(repr(e))

            readers = [threading.Thread(target=reader) for _ in range(3)]
            for t in readers:
                t.start()
            try:
                versions = [POLICY_A, POLICY_B, BROKEN]
                for _ in range(25):
                    text = rnd.choice(versions)
                    if rnd.random() < 0.5:
                        replace_atomically(path, text)
                    else:
                        path.write_text(text)
                    time.sleep(rnd.random() * 0.03)
                for text, rev in ((POLICY_A, rev_a), (POLICY_B, rev_b)):
                    replace_atomically(path, text)
                    assert wait_for(lambda rev=rev: store.revision == rev)
                    assert wait_for(lambda rev=rev: rev in seen)
            finally:
                stop.set()
                for t in readers:
                    t.join()
            assert not failures, failures[:5]
            assert {rev_a, rev_b} <= seen


# --- the `policyroute watch` command -------------------------------------------------------


def _command() -> list[str]:
    exe = shutil.which("policyroute", path=os.path.dirname(sys.executable)) or shutil.which(
        "policyroute"
    )
    if exe:
        return [exe]
    # Not installed as a script (plain checkout): the same entry point.
    return [sys.executable, "-c", "import sys; from policyroute.cli import main; sys.exit(main())"]


def _env() -> dict[str, str]:
    # A plain checkout is importable only from its root; the child may start elsewhere.
    root = str(Path(policyroute.__path__[0]).parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


class Proc:
    """A running `policyroute watch`, its output lines read without blocking the test."""

    def __init__(self, *args: str) -> None:
        self.p = subprocess.Popen(
            [*_command(), "watch", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.out: list[str] = []
        assert self.p.stdout is not None and self.p.stderr is not None
        # Reloads come on stdout, rejected edits and their diagnostics on stderr (as `check`
        # prints them); each line is tagged with its stream.
        for tag, stream in (("out", self.p.stdout), ("err", self.p.stderr)):
            threading.Thread(target=self._pump, args=(tag, stream), daemon=True).start()

    def _pump(self, tag: str, stream: Any) -> None:
        for line in stream:
            self.lines.put(f"{tag}: {line}")

    def expect(self, needle: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.p.kill()
                _, err = self.p.communicate()
                raise AssertionError(f"no line with {needle!r}; got {self.out}; stderr {err}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            self.out.append(line)
            if needle in line:
                return line

    def finish(self, sig: int) -> tuple[int, str]:
        self.p.send_signal(sig)
        try:
            _, err = self.p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise
        return self.p.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_watch_command(policy_file: Path, sig: int) -> None:
    proc = Proc(str(policy_file))
    assert proc.expect("watching").startswith("out: ")
    policy_file.write_text(BROKEN)
    assert proc.expect("rejected").startswith("err: ")
    assert proc.expect("error[E").startswith("err: ")
    policy_file.write_text(POLICY_B)
    line = proc.expect("reloaded")
    assert line.startswith("out: ")
    assert policyroute.load(policy_file).revision in line
    assert "1 rule" in line and " ms" in line, line
    rc, err = proc.finish(sig)
    assert rc == 0
    assert "Traceback" not in err


def test_watch_command_polling(policy_file: Path) -> None:
    proc = Proc(str(policy_file), "--poll", "--poll-interval", "0.05")
    proc.expect("watching")
    policy_file.write_text(POLICY_B)
    proc.expect("reloaded")
    rc, _ = proc.finish(signal.SIGINT)
    assert rc == 0


def test_watch_command_bad_policy_at_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.route"
    bad.write_text(BROKEN)
    p = subprocess.run(
        [*_command(), "watch", str(bad)], capture_output=True, text=True, timeout=30, env=_env()
    )
    assert p.returncode == 1
    assert "error[E" in p.stderr and "Traceback" not in p.stderr
    missing = subprocess.run(
        [*_command(), "watch", str(tmp_path / "nope.route")],
        capture_output=True,
        text=True,
        timeout=30,
        env=_env(),
    )
    # A path that is not there is a usage error (2), as for every other command.
    assert missing.returncode == 2
    assert missing.stderr.startswith("policyroute watch: ") and "no such file" in missing.stderr
    assert "Traceback" not in missing.stderr


# --- a reload must pass the policy's own inline tests (check_tests) ------------------------

TESTED_A = POLICY_A + 'test "mid is cheap" {\n  prompt = "' + MID + '"\n} -> haiku\n'
# B sends MID to opus, so TESTED_A's own test fails on B's rules.
TESTED_B_FAILS = TESTED_A.replace("length > 100", "length > 10")


def test_check_tests_refuses_a_reload_whose_tests_fail(tmp_path: Path, rec: Recorder) -> None:
    path = tmp_path / "policy.route"
    path.write_text(TESTED_A)
    with watch(path, rec.on_reload, rec.on_error, check_tests=True) as store:
        rev = store.revision
        replace_atomically(path, TESTED_B_FAILS)
        assert wait_for(lambda: "E502" in rec.codes())
        assert store.revision == rev and store.decide(prompt=MID).tier == "haiku"
        (d,) = [d for e in rec.errors for d in e.diagnostics if d.code == "E502"]
        assert "mid is cheap" in d.message and "expected haiku" in d.message
        assert d.line == TESTED_A.count("\n", 0, TESTED_A.index("test ")) + 1


def test_without_check_tests_the_reload_goes_live(tmp_path: Path, rec: Recorder) -> None:
    path = tmp_path / "policy.route"
    path.write_text(TESTED_A)
    with watch(path, rec.on_reload, rec.on_error) as store:
        replace_atomically(path, TESTED_B_FAILS)
        assert wait_for(routes_mid_to(store, "opus"))


def test_check_tests_at_start_raises(tmp_path: Path) -> None:
    path = tmp_path / "policy.route"
    path.write_text(TESTED_B_FAILS)
    with pytest.raises(PolicyError) as e:
        watch(path, check_tests=True)
    assert [d.code for d in e.value.diagnostics] == ["E502"]


def test_watch_command_refuses_an_edit_that_fails_its_tests(tmp_path: Path) -> None:
    path = tmp_path / "policy.route"
    path.write_text(TESTED_A)
    proc = Proc(str(path))
    proc.expect("watching")
    path.write_text(TESTED_B_FAILS)
    assert proc.expect("rejected").startswith("err: ")
    assert "error[E502]" in proc.expect("error[E502]")
    rc, _ = proc.finish(signal.SIGINT)
    assert rc == 0


# --- a file still being written is never read ----------------------------------------------

# Each version is written in two pieces, and the first piece alone is a valid policy of its
# own (a third revision): a store that loads between the pieces serves it.
TRAILER = "# written last\n"


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1))
def test_a_file_being_written_is_never_served(seed: int) -> None:
    rnd = random.Random(seed)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "policy.route"
        versions = [POLICY_A + TRAILER, POLICY_B + TRAILER]
        revision = {}
        for v in versions:  # a revision depends on where the file is too
            path.write_text(v)
            revision[v] = policyroute.load(path).revision
        good = set(revision.values())
        with watch(path) as store:
            served: set[str] = set()
            stop = threading.Event()

            def reader() -> None:
                while not stop.is_set():
                    served.add(store.decide(prompt=MID).revision)

            t = threading.Thread(target=reader)
            t.start()
            try:
                for _ in range(12):
                    text = rnd.choice(versions)
                    head = text[: -len(TRAILER)]
                    with path.open("w") as f:  # in place: truncate, then write in pieces
                        f.write(head)
                        f.flush()
                        time.sleep(rnd.random() * 0.002)
                        f.write(TRAILER)
                    time.sleep(rnd.random() * 0.1)
                final = rnd.choice(versions)
                path.write_text(final)
                assert wait_for(lambda: store.revision == revision[final])
            finally:
                stop.set()
                t.join()
            assert served <= good, served - good


def test_watch_command_json_lines(policy_file: Path) -> None:
    proc = Proc(str(policy_file), "--format", "json")
    first = json.loads(proc.expect('"watching"').split(": ", 1)[1])
    assert first["revision"] == policyroute.load(policy_file).revision
    policy_file.write_text(BROKEN)
    rejected = json.loads(proc.expect('"rejected"').split(": ", 1)[1])
    assert rejected["serving"] == first["revision"] and rejected["errors"][0]["code"] == "E001"
    policy_file.write_text(POLICY_B)
    reloaded = json.loads(proc.expect('"reloaded"').split(": ", 1)[1])
    assert reloaded["revision"] == policyroute.load(policy_file).revision
    rc, err = proc.finish(signal.SIGINT)
    assert rc == 0 and err == ""
