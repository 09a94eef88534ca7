"""A reload never serves (nor reports) a file a writer is part way through (issue 9, item 7).

The races are made deterministic: the writer's steps run inside the store's own load, so the
load reads exactly the torn state. `tests/store/test_store.py` has the property test that races a
real writer thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import policyroute
from policyroute.store import awatch, watch
from policyroute.store import settled as settled_load
from policyroute.syntax.diagnostics import PolicyError

TIERS = """\
tier haiku = "claude-haiku-4-5" { input 1 output 5 }
tier opus  = "claude-opus-4-7"  { input 5 output 25 }
"""
# The head of each version (everything but the trailer) is a valid policy of its own, so a
# load that reads only the head serves a third revision.
HEAD_A = f'policy "a"\n{TIERS}rule long: length > 100 -> opus\ndefault -> haiku\n'
HEAD_B = HEAD_A.replace("length > 100", "length > 10")
TRAILER = "# written last\n"
FULL_A, FULL_B = HEAD_A + TRAILER, HEAD_B + TRAILER
# A head that does not parse: a load that reads only it fails.
BROKEN_HEAD = FULL_A[: FULL_A.index("100")]

LEASES = settled_load._LEASES


@pytest.fixture(params=["leases", "timing"] if LEASES else ["timing"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each race is checked with Linux leases, and with timing alone (macOS, Windows)."""
    if request.param == "timing":
        monkeypatch.setattr(settled_load, "_LEASES", False)
    return str(request.param)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "policy.route"


@pytest.fixture
def rev(path: Path) -> dict[str, str]:
    """The revision of each text at `path` (a revision depends on where the file is); the
    file is left holding FULL_A."""
    out = {}
    for text in (HEAD_A, HEAD_B, FULL_B, FULL_A):
        path.write_text(text)
        out[text] = policyroute.load(path).revision
    return out


class RacingWriter:
    """Wraps the store's load: on its first call the file is rewritten in place around it
    (truncate, write `head`, the load runs, write the rest, close), as a writer descheduled
    between two writes would."""

    def __init__(self, path: Path, head: str, rest: str) -> None:
        self.path, self.head, self.rest = path, head, rest
        self.real = settled_load.load_policy
        self.calls = 0
        self.raced: list[str] = []  # what the raced load got: a revision, or "error"

    def __call__(self, path: Path, check_tests: bool = False) -> Any:
        self.calls += 1
        if self.calls > 1:
            return self.real(path, check_tests)
        with self.path.open("w") as f:
            f.write(self.head)
            f.flush()
            try:
                policy = self.real(path, check_tests)
            except PolicyError:
                self.raced.append("error")
                raise
            finally:
                f.write(self.rest)
        self.raced.append(policy.revision)
        return policy


@pytest.fixture
def racing(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path, str, str], RacingWriter]]:
    def install(path: Path, head: str, rest: str) -> RacingWriter:
        writer = RacingWriter(path, head, rest)
        monkeypatch.setattr(settled_load, "load_policy", writer)
        return writer

    yield install


def test_same_content_rewritten_under_a_load_is_not_served(
    path: Path, rev: dict[str, str], mode: str, racing: Callable[[Path, str, str], RacingWriter]
) -> None:
    """The case a hash before and after the load cannot see: the writer puts back the very
    bytes that were there, so both hashes agree while the load read only the head."""
    reloads: list[str] = []
    with watch(path, lambda p: reloads.append(p.revision)) as store:
        writer = racing(path, HEAD_A, TRAILER)
        assert store.reload() is False  # nothing new: the complete file is what serves
        assert writer.raced == [rev[HEAD_A]]  # the race did happen: the load read the head
        assert writer.calls >= 2
        assert store.revision == rev[FULL_A] and reloads == []
        assert path.read_text() == FULL_A


def test_a_new_version_caught_half_written_is_loaded_whole(
    path: Path, rev: dict[str, str], mode: str, racing: Callable[[Path, str, str], RacingWriter]
) -> None:
    reloads: list[str] = []
    with watch(path, lambda p: reloads.append(p.revision)) as store:
        writer = racing(path, HEAD_B, TRAILER)
        assert store.reload() is True
        assert writer.raced == [rev[HEAD_B]]
        assert store.revision == rev[FULL_B]
        assert set(reloads) == {rev[FULL_B]}


def test_a_torn_read_that_fails_is_not_reported(
    path: Path, mode: str, racing: Callable[[Path, str, str], RacingWriter]
) -> None:
    """A load that read a half-written file fails to parse; the file, once written, is the
    version already serving: nothing is rejected, nothing reported."""
    path.write_text(FULL_A)
    errors: list[PolicyError] = []
    with watch(path, on_error=errors.append) as store:
        good = store.revision
        writer = racing(path, BROKEN_HEAD, FULL_A[len(BROKEN_HEAD) :])
        assert store.reload() is False
        assert writer.raced == ["error"]
        assert errors == [] and store.revision == good


def test_the_async_store_checks_its_loads_alike(
    path: Path, rev: dict[str, str], mode: str, racing: Callable[[Path, str, str], RacingWriter]
) -> None:

    async def main() -> None:
        async with awatch(path) as store:
            writer = racing(path, HEAD_A, TRAILER)
            assert await store.reload() is False
            assert writer.raced == [rev[HEAD_A]]
            assert store.revision == rev[FULL_A]

    asyncio.run(main())


needs_leases = pytest.mark.skipif(not LEASES, reason="read leases are Linux-only")


@needs_leases
def test_a_file_held_open_for_writing_is_not_read(
    path: Path,
    rev: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Complete-looking bytes are not enough while the writer still has the file open: it
    may write more. The reload waits for the close."""
    monkeypatch.setattr(settled_load, "MAX_SETTLE_S", 0.3)
    with watch(path) as store, caplog.at_level(logging.WARNING, logger="policyroute.store"):
        good = store.revision
        with path.open("w") as f:
            f.write(FULL_B)
            f.flush()
            assert store.reload() is False
            assert store.revision == good
        assert [r.getMessage() for r in caplog.records if "not reloading" in r.getMessage()]
        assert "still open for writing" in caplog.text
        store.reload()  # (or the watcher, seeing the close, got there first)
        assert store.revision == rev[FULL_B]


@needs_leases
def test_start_while_the_file_is_open_for_writing(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """There is no last good version to keep at start: an E005, as for a file that cannot
    be read, rather than whatever half of it is there."""
    monkeypatch.setattr(settled_load, "MAX_SETTLE_S", 0.2)
    with path.open("w") as f:
        f.write(HEAD_A)
        f.flush()
        with pytest.raises(PolicyError) as e:
            watch(path)
    (d,) = e.value.diagnostics
    assert d.code == "E005" and "still open for writing" in d.message
    with watch(path) as store:  # closed: it loads
        assert store.revision == policyroute.load(path).revision


@needs_leases
def test_read_complete_refuses_a_file_with_a_writer(path: Path) -> None:
    path.write_text(FULL_A)
    assert settled_load._read_complete([path]) == ({path: FULL_A.encode()}, True)
    with path.open("a"):
        assert settled_load._read_complete([path]) is None
        assert settled_load._write_state(path) is True
    assert settled_load._write_state(path) is False
