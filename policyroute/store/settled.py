"""Loading a policy only from complete files: never from one a writer is part way through.

A deploy tool or an editor that writes a policy in place truncates it and then writes it,
maybe in several pieces; a load that lands in between reads half a file, and half a file can
be a valid policy of its own. A load made here counts only when it is shown to have read
complete files:

- On Linux, each file the policy was compiled from is read once more after the load while
  holding a read lease. The kernel grants one only when no process has the file open for
  writing, and breaks it when one opens the file for writing or truncates it, so a read
  made under a lease that is still held at its end is a complete file (every writer had
  closed it). The load counts only if its revision, a hash of the texts it compiled, is
  the revision of those bytes: what it compiled is byte for byte a complete file, even if
  the loader's own read raced a writer that put the same bytes back (the case a hash of the
  file taken before and after the load cannot tell from no write at all).
- Where leases are not to be had (macOS, Windows, a file owned by another user, a file
  system without them) only timing is left: the load counts if nothing touched the files
  for QUIET_S before it and their size and times are unchanged after it, and the bytes read
  afterwards compile to its revision. A writer that stalls mid-file for longer than
  QUIET_S can then be read half-way.

A load that fails (a PolicyError) is reported only if no file changed across it and (on
Linux) no writer had one open: a broken version must be the file's, not a torn read's.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from ..compiler.inline_tests import failing_tests_error
from ..policy import Policy, load
from ..syntax.diagnostics import Diagnostic, PolicyError
from ..syntax.limits import MAX_FILE_BYTES
from ..syntax.source import (
    NO_SPAN,
    Source,
    open_regular_file,
    read_open_file,
    read_regular_file,
)

# How long nothing may have touched the files before they are read, at most how long to
# wait for that (past it a file rewritten nonstop is read anyway: the checks after the load
# still decide), how many loads to try before leaving it to the next event or rescan, and
# how long a failed load's files must then stand still (where no lease says a writer is
# gone) before the failure is reported.
QUIET_S = 0.1
MAX_SETTLE_S = 2.0
LOAD_ATTEMPTS = 5
REPORT_SETTLE_S = 0.1
SETTLE_STEP_S = 0.01

# File identity -> content digest, or None for a file that cannot be read.
Fingerprint = dict[Path, bytes | None]
# Per file: (device, inode, size, mtime ns, ctime ns), or None when it cannot be stat'ed.
Stats = tuple[tuple[int, int, int, int, int] | None, ...]

_LEASES = (
    fcntl is not None
    and getattr(fcntl, "F_SETLEASE", None) is not None
    and getattr(fcntl, "F_SETSIG", None) is not None
)


@dataclass(frozen=True, slots=True)
class SettledLoad:
    """What one settled load found. Exactly one of `policy`, `error`, `unsettled` is set;
    `seen` is the content of the watched files that the outcome stands for."""

    policy: Policy | None = None
    error: PolicyError | None = None
    compile_ms: float = 0.0
    seen: Fingerprint = field(default_factory=dict)
    # Why no load could be shown to have read complete files (a writer held a file open
    # past MAX_SETTLE_S, or the files kept changing through every attempt).
    unsettled: str | None = None


def load_policy(path: Path, check_tests: bool = False) -> Policy:
    policy = load(path)
    if check_tests:
        error = failing_tests_error(policy)
        if error is not None:
            raise error
    return policy


def load_settled(
    path: Path,
    watched: tuple[Path, ...],
    check_tests: bool,
    watch_files: Callable[[Policy], tuple[Path, ...]],
) -> SettledLoad:
    """Load `path` (whose files are thought to be `watched`) once no writer is part way
    through them, and only count a load shown to have read complete files (module doc)."""
    unsettled = "it kept changing while it was read"
    for _ in range(LOAD_ATTEMPTS):
        before = _settle(watched)
        if before is None:
            return SettledLoad(unsettled=f"still open for writing after {MAX_SETTLE_S:g} s")
        started = time.perf_counter()
        try:
            policy: Policy | None = load_policy(path, check_tests)
        except PolicyError as e:
            error: PolicyError | None = e
            policy = None
        else:
            error = None
        elapsed = (time.perf_counter() - started) * 1000
        if policy is None:
            assert error is not None
            seen = fingerprint(watched)
            if _stats(watched) != before:
                continue  # written meanwhile: the failure may be a torn read's
            states = [_write_state(f) for f in watched]
            if any(states):
                continue
            if None in states:  # no lease to tell: a stalled writer can only be waited out
                time.sleep(REPORT_SETTLE_S)
                if _stats(watched) != before:
                    continue
            return SettledLoad(error=error, seen=seen)
        snapshot = _read_complete(policy.files)
        if snapshot is None:
            continue  # a writer had a file open, or opened one, as it was read again
        data, proven = snapshot
        if _revision(policy.files, data) != policy.revision:
            continue  # the load compiled something other than the complete files
        files = watch_files(policy)
        if not proven and (files != watched or _stats(watched) != before):
            # Timing is the only evidence: the files it imports must settle too, and none
            # may have been touched during the load.
            watched = files
            continue
        return SettledLoad(policy=policy, compile_ms=elapsed, seen=_seen(files, data))
    return SettledLoad(unsettled=unsettled)


def unsettled_error(path: Path, reason: str) -> PolicyError:
    """The start-up form of an unsettled load (there is no last good version to keep):
    E005, as for any file that cannot be read."""
    name = path.name
    return PolicyError(
        [
            Diagnostic(
                "E005",
                f"cannot read {name}: {reason}",
                Source("", name),
                NO_SPAN,
                "let the program writing it finish (or close it), then try again",
            )
        ]
    )


def fingerprint(files: Iterable[Path]) -> Fingerprint:
    """Content digests, to tell a rescan whether anything changed since the last load."""
    return {f: _digest(f) for f in files}


def _digest(path: Path) -> bytes | None:
    # Read the way the loader reads: a FIFO or a device under the policy's name must not
    # block the watcher or fill memory.
    try:
        return _hash(read_regular_file(path, MAX_FILE_BYTES))
    except OSError:
        return None


def _hash(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _seen(files: tuple[Path, ...], data: dict[Path, bytes]) -> Fingerprint:
    """The digests of the watched files as of the verified read (keyed as watched, which
    may be spelled through a symlink rather than resolved)."""
    out: Fingerprint = {}
    for f in files:
        got = data.get(Path(os.path.realpath(f)))
        out[f] = _hash(got) if got is not None else _digest(f)
    return out


def _revision(files: tuple[Path, ...], data: dict[Path, bytes]) -> str | None:
    """The revision a load of exactly these bytes would have, or None if they do not decode."""
    from ..compiler.loader import Loaded, source_of

    loaded = Loaded(files=list(files))
    for f in files:
        source = source_of(f, data[f])
        if source is None:
            return None
        loaded.sources.append(source)
    return loaded.revision()


def _read_complete(files: Iterable[Path]) -> tuple[dict[Path, bytes], bool] | None:
    """Each file's bytes, read while no process had it open for writing, and whether that
    was proven (a lease on every file). None if a writer was there, or a file is unreadable."""
    data: dict[Path, bytes] = {}
    proven = True
    for f in files:
        try:
            fd = open_regular_file(f, MAX_FILE_BYTES)
        except OSError:
            return None
        try:
            leased = _lease(fd)
            if leased is False:
                return None  # open for writing right now
            data[f] = read_open_file(fd, MAX_FILE_BYTES)
            if leased:
                # F_UNLCK here means the lease was broken: a writer opened the file, or
                # someone truncated it, while it was being read.
                if fcntl.fcntl(fd, fcntl.F_GETLEASE) != fcntl.F_RDLCK:
                    return None
                fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
            else:
                proven = False
        except OSError:
            return None
        finally:
            os.close(fd)
    return data, proven


def _lease(fd: int) -> bool | None:
    """Take a read lease on `fd`: True if held, False if refused because the file is open
    for writing, None where leases are not to be had.

    The lease's break notice goes to SIGURG, which is ignored by default, rather than
    SIGIO, which would end the process. While it is held a writer's open() waits, for no
    longer than one read: it is dropped as soon as the read ends."""
    if not _LEASES:
        return None
    try:
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as e:
        # EAGAIN: open for writing (or a lease on it being broken by a writer). Anything
        # else (EACCES: another user's file; EINVAL: a file system without leases) says
        # nothing about writers.
        return False if e.errno == errno.EAGAIN else None
    return True


def _write_state(path: Path) -> bool | None:
    """Whether some process has `path` open for writing: a lease asked for and dropped at
    once (Linux). None when that cannot be told."""
    try:
        fd = open_regular_file(path, MAX_FILE_BYTES)
    except OSError:
        return False  # missing or not a file: nothing to be part way through; the load says so
    try:
        leased = _lease(fd)
        if leased:
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
            return False
        return None if leased is None else True
    except OSError:
        return None
    finally:
        os.close(fd)


def _stats(files: Iterable[Path]) -> Stats:
    out: list[tuple[int, int, int, int, int] | None] = []
    for f in files:
        try:
            st = f.stat()
        except OSError:  # a missing file: the load says so
            out.append(None)
        else:
            out.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(out)


def _newest_change(stats: Stats) -> float:
    """The latest change (epoch seconds) among the stats. POSIX ctime moves with every write
    and cannot be set back, so it counts too; on Windows it is the creation time."""
    newest = 0
    for s in stats:
        if s is not None:
            newest = max(newest, s[3] if os.name == "nt" else max(s[3], s[4]))
    return newest / 1e9


def _settle(files: tuple[Path, ...]) -> Stats | None:
    """Wait until no process has one of `files` open for writing and none has changed for
    QUIET_S; their stats then. A file rewritten nonstop is let through at MAX_SETTLE_S; one
    held open for writing is not (None)."""
    deadline = time.monotonic() + MAX_SETTLE_S
    while True:
        # Writers first, then stats: a writer that opens in between and writes makes the
        # stats recent, so it is still seen.
        held = any(_write_state(f) for f in files)
        stats = _stats(files)
        late = time.monotonic() >= deadline
        if held:
            if late:
                return None
            time.sleep(SETTLE_STEP_S)
            continue
        age = time.time() - _newest_change(stats)
        if age >= QUIET_S or age < -1 or late:  # (a clock far behind the file's: no wait)
            return stats
        time.sleep(min(QUIET_S - age, SETTLE_STEP_S))
