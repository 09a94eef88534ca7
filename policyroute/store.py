"""Hot reload: the current compiled policy behind one reference, kept fresh as its files change.

A reader calls `store.decide(...)` and gets a decision from exactly one complete, checked
policy: the swap to a new version is a single attribute assignment, so there is no moment at
which half of a policy is visible. A broken edit never replaces a good policy; it is reported
(to `on_error` and to the `policyroute.store` logger) and the last good version keeps serving.

Change detection is layered, so that no single mechanism has to be perfect:

1. watchfiles watches the *directories* holding the policy file and every file it imports,
   not the files themselves: editors and deploy tools replace files by rename, delete and
   create, or symlink swap (Kubernetes ConfigMaps), and a watch on a replaced inode goes
   deaf.
2. An event (filtered to the watched names, plus the `..`-prefixed entries a ConfigMap
   swaps) triggers a load; the result goes live only if it checks clean and its revision,
   a content hash of the policy and its imports, differs from the one serving.
3. A periodic rescan hashes the watched files and loads if they differ from what was
   last loaded: it catches what an event watcher can miss (the window while the watcher
   restarts on a new set of directories, a directory that is itself swapped).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import watchfiles

from .settled_load import (
    Fingerprint,
    Outcome,
    fingerprint,
    load_settled,
    unsettled_error,
)
from .syntax.diagnostics import PolicyError, render_human

if TYPE_CHECKING:
    from .decision import Decision
    from .policy import Classifier, Policy
    from .request import Request

__all__ = ["AsyncPolicyStore", "PolicyStore", "awatch", "watch"]

logger = logging.getLogger("policyroute.store")

OnReload = Callable[["Policy"], object]
OnError = Callable[[PolicyError], object]

# watchfiles' own defaults (1.6 s debounce, 50 ms step) suit restarting a dev server, not
# routing: a reload should be live within tens of milliseconds of the write.
DEFAULT_DEBOUNCE_MS = 50
DEFAULT_STEP_MS = 10
DEFAULT_POLL_INTERVAL = 0.3
# How often the content is re-checked with no event at all; bounds how late a change missed
# by the event watcher can be noticed.
RESCAN_MS = 1000
# How long the watcher may sit silent before handing control back. Its first hand-back is
# the only sign that watchfiles has set up its watches, which `watch()` waits for, so that an
# edit made as soon as it returns is seen by notification, not a second later by rescan.
WAKE_MS = 50
# Upper bound on that wait; past it the rescan still catches anything missed.
READY_TIMEOUT_S = 2.0
# Pause before retrying when the watcher itself fails (a watched directory vanished).
RETRY_S = 0.2


def render_errors(error: PolicyError) -> str:
    """The diagnostics that made a version fail; its warnings would only bury them."""
    errors = [d for d in error.diagnostics if d.is_error]
    return render_human(errors or error.diagnostics)


class _Core:
    """State and reload logic shared by the thread and asyncio stores.

    `policy` is the version serving now: always complete and checked, replaced by one
    assignment and never mutated. It is a plain attribute because `decide` reads it on every
    request. Readers touch nothing else; the rest is owned by whoever holds the store's
    reload lock, so it needs no locking of its own.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        on_reload: OnReload | None,
        on_error: OnError | None,
        check_tests: bool = False,
    ) -> None:
        # Absolute but deliberately *not* resolved: with a symlinked file (ConfigMap style) the
        # resolved target is a directory that is deleted on the next update, while the path
        # the user gave stays valid.
        self._path = Path(os.path.abspath(os.fspath(path)))
        self._on_reload = on_reload
        self._on_error = on_error
        # Refuse a version whose own inline tests fail (reported as E502, like a check error).
        self._check_tests = check_tests
        # No last good policy exists yet, so a failure here is the caller's to handle. The
        # first load waits for complete files like every reload: a server may start while
        # its policy is being deployed.
        first = load_settled(self._path, (self._path,), check_tests, self._watch_files)
        if first.error is not None:
            raise first.error
        if first.policy is None:
            raise unsettled_error(self._path, first.unsettled or "")
        self.policy: Policy = first.policy
        self._compile_ms = first.compile_ms
        self._files: tuple[Path, ...] = self._watch_files(self.policy)
        self._seen: Fingerprint = first.seen
        self._relevant_names: frozenset[str] = self._names(self._files)
        # Set while the files on disk do not load: then any event in a watched directory is
        # worth a try, since the fix may be a file the last good policy never imported.
        self._broken = False
        self._last_error_text: str | None = None
        # Set while a load could not be shown to read complete files (warned about once).
        self._unsettled = False

    # -- what readers use ---------------------------------------------------------------

    @property
    def revision(self) -> str:
        """The revision of the policy serving now."""
        return self.policy.revision

    @property
    def path(self) -> Path:
        """The policy file, as given (absolute, symlinks kept)."""
        return self._path

    @property
    def last_compile_ms(self) -> float:
        """Milliseconds the current policy took to load and compile."""
        return self._compile_ms

    if TYPE_CHECKING:

        def decide(
            self,
            request: Request | None = None,
            /,
            *,
            classifier: Classifier | None = None,
            explain: bool = False,
            **attrs: Any,
        ) -> Decision:
            """`Policy.decide` on the current policy; the decision carries its revision."""
            ...

    else:

        def decide(self, request=None, /, **attrs):
            # One attribute read picks the version; the call then runs wholly on it. Keywords
            # are forwarded as they came: spelling out classifier/explain here and re-packing
            # them cost more than everything else this wrapper adds.
            return self.policy.decide(request, **attrs)

    # -- reloading -----------------------------------------------------------------------

    def _watch_files(self, policy: Policy) -> tuple[Path, ...]:
        """The files to watch, spelled through the user's path rather than resolved.

        `Policy.files` holds resolved paths; an import that lies beside the real policy file
        is mapped back under the user's directory so a symlink swap of that directory is
        followed.
        """
        real_dir = Path(os.path.realpath(self._path)).parent
        out: dict[Path, None] = {self._path: None}
        for f in policy.files:
            try:
                rel = f.relative_to(real_dir)
            except ValueError:
                out[f] = None
                continue
            # Only when the user's directory really leads to the same file: a policy symlinked
            # from elsewhere keeps its imports' own paths.
            mapped = self._path.parent / rel
            out[mapped if os.path.realpath(mapped) == os.fspath(f) else f] = None
        return tuple(out)

    @staticmethod
    def _names(files: Iterable[Path]) -> frozenset[str]:
        names: set[str] = set()
        for f in files:
            names.add(f.name)
            names.add(Path(os.path.realpath(f)).name)
        return frozenset(names)

    def _watch_dirs(self) -> tuple[Path, ...]:
        """Existing directories to watch: each file's own directory and, for a symlink, the
        directory of its target (an in-place edit there raises no event beside the link)."""
        dirs: dict[Path, None] = {}
        for f in self._files:
            for d in (f.parent, Path(os.path.realpath(f)).parent):
                if d.is_dir():
                    dirs[d] = None
        return tuple(dirs)

    def _is_relevant(self, _change: watchfiles.Change, path: str) -> bool:
        name = os.path.basename(path)
        # `..data`, `..2024_01_01_...`: the Kubernetes atomic writer swaps these, never the
        # file names themselves.
        return self._broken or name in self._relevant_names or name.startswith("..")

    def _prepare(self, force: bool) -> Outcome | None:
        """Load the files, or (unless forced) do nothing if their content is as last loaded.

        Watcher events force a load: the periodic rescan compares content digests only to
        spare itself a compile. What a load counts for is decided in `settled_load`: only a
        load shown to have read complete files, never one that raced a writer. Runs without
        touching reader-visible state.
        """
        if not force and not self._broken and fingerprint(self._files) == self._seen:
            return None
        outcome = load_settled(self._path, self._files, self._check_tests, self._watch_files)
        if outcome.unsettled is not None:
            # Still being written: the next rescan (or event) tries again.
            self._seen = {}
            if not self._unsettled:
                logger.warning(
                    "not reloading %s yet: %s; still serving revision %s",
                    self._path,
                    outcome.unsettled,
                    self.policy.revision,
                )
            self._unsettled = True
            return None
        self._unsettled = False
        self._seen = outcome.seen
        return outcome

    def _apply(self, outcome: Outcome | None) -> bool:
        """Swap in a good outcome (one assignment), report a bad one. True if swapped."""
        if outcome is None:
            return False
        if outcome.error is not None:
            self._reject(outcome.error)
            return False
        new = outcome.policy
        assert new is not None
        self._broken = False
        self._last_error_text = None
        files = self._watch_files(new)
        if files != self._files:
            # Keys of `seen` no longer match, so the next check compiles once more and
            # records the new imports' content before believing it current.
            self._files = files
            self._relevant_names = self._names(files)
        if new.revision == self.policy.revision:
            return False
        self._compile_ms = outcome.compile_ms
        self.policy = new
        logger.info(
            "reloaded %s: revision %s, compiled in %.1f ms",
            self._path,
            new.revision,
            outcome.compile_ms,
        )
        if self._on_reload is not None:
            try:
                self._on_reload(new)
            except Exception:
                # A faulty callback must not stop the watcher: later edits still need serving.
                logger.exception("on_reload callback failed")
        return True

    def _reject(self, error: PolicyError) -> None:
        text = render_errors(error)
        if self._broken and text == self._last_error_text:
            # The same broken content seen again (an unrelated event): already reported.
            return
        self._broken = True
        self._last_error_text = text
        logger.warning(
            "rejected change to %s; still serving revision %s\n%s",
            self._path,
            self.policy.revision,
            text,
        )
        if self._on_error is not None:
            try:
                self._on_error(error)
            except Exception:
                logger.exception("on_error callback failed")


class PolicyStore(_Core):
    """The current policy of one `.route` file, reloaded by a background thread.

    Build it with `watch()`. `policy` is always a complete, checked policy; `decide` answers
    with whatever version is current at the moment of the call.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        on_reload: OnReload | None = None,
        on_error: OnError | None = None,
        *,
        force_polling: bool = False,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        debounce_ms: int = DEFAULT_DEBOUNCE_MS,
        check_tests: bool = False,
    ) -> None:
        super().__init__(path, on_reload, on_error, check_tests)
        self._force_polling = force_polling
        self._poll_delay_ms = max(1, round(poll_interval * 1000))
        # When polling, the content check itself runs at the poll interval: notify's poller
        # compares metadata and can miss a same-second rewrite, a content hash cannot.
        self._rescan_s = min(poll_interval, RESCAN_MS / 1000) if force_polling else RESCAN_MS / 1000
        self._debounce_ms = debounce_ms
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"policyroute-watch:{self._path.name}", daemon=True
        )
        self._ready = threading.Event()
        self._thread.start()
        self._ready.wait(READY_TIMEOUT_S)

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    def reload(self) -> bool:
        """Load the files now, whether or not they changed. True if a new revision went live.

        Never raises for a bad policy: that is reported to `on_error` and the log, as for a
        watched change.
        """
        return self._check(force=True)

    def _check(self, force: bool) -> bool:
        with self._lock:
            try:
                return self._apply(self._prepare(force))
            except Exception:
                # load() promises PolicyError for bad input; anything else is a bug, but the
                # last good policy must keep serving regardless.
                logger.exception("unexpected failure reloading %s", self._path)
                return False

    def _run(self) -> None:
        core = self
        try:
            while not self._stop.is_set():
                dirs = core._watch_dirs()
                if not dirs:
                    # Nothing to watch (the directory itself is gone): fall back to rescanning.
                    self._ready.set()
                    if self._stop.wait(RESCAN_MS / 1000):
                        return
                    self._check(force=False)
                    continue
                try:
                    self._watch(dirs)
                except Exception:
                    logger.debug("watcher on %s failed; restarting", dirs, exc_info=True)
                    if self._stop.wait(RETRY_S):
                        return
        finally:
            self._ready.set()

    def _watch(self, dirs: tuple[Path, ...]) -> None:
        """Follow `dirs` until stopped or until the set of directories to watch changes."""
        core = self
        # A new watcher cannot report what happened while none was running: check the content
        # once it is up (its first hand-back), then on events and at each rescan.
        fresh = True
        last_scan = time.monotonic()
        for changes in watchfiles.watch(
            *dirs,
            watch_filter=core._is_relevant,
            debounce=self._debounce_ms,
            step=DEFAULT_STEP_MS,
            stop_event=self._stop,
            rust_timeout=WAKE_MS,
            yield_on_timeout=True,
            recursive=False,
            force_polling=self._force_polling,
            poll_delay_ms=self._poll_delay_ms,
            raise_interrupt=False,
        ):
            now = time.monotonic()
            if changes or fresh or now - last_scan >= self._rescan_s:
                self._check(force=bool(changes))
                last_scan = now
                if fresh:
                    fresh = False
                    self._ready.set()
            if core._watch_dirs() != dirs:
                return  # imports or symlink targets moved: watch the new set

    def close(self) -> None:
        """Stop watching and wait for the watcher thread. Safe to call more than once."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> PolicyStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "watching"
        return f"<PolicyStore {self._path} revision={self.revision} {state}>"


def watch(
    path: str | os.PathLike[str],
    on_reload: OnReload | None = None,
    on_error: OnError | None = None,
    *,
    force_polling: bool = False,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    debounce_ms: int = DEFAULT_DEBOUNCE_MS,
    check_tests: bool = False,
) -> PolicyStore:
    """Load `path` and keep it fresh in a background thread.

    Raises PolicyError if the policy does not load now: there is no last good version to
    fall back on. Later failures are reported to `on_error` (and logged) instead.
    `force_polling` polls every `poll_interval` seconds, for file systems without change
    notification (network mounts, some containers). With `check_tests`, a version whose
    inline tests fail is refused like one with errors (E502 per failing test), at the
    start as on every reload; `policyroute watch` and the server turn it on.
    """
    return PolicyStore(
        path,
        on_reload,
        on_error,
        force_polling=force_polling,
        poll_interval=poll_interval,
        debounce_ms=debounce_ms,
        check_tests=check_tests,
    )


class AsyncPolicyStore(_Core):
    """The asyncio form of `PolicyStore`: watches with `watchfiles.awatch` in a task.

    Use as `async with awatch(path) as store:`, or call `start()` inside a running loop and
    `await store.aclose()` at the end. Compilation runs in a worker thread so a large
    policy never stalls the event loop; the swap and the callbacks happen on the loop.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        on_reload: OnReload | None = None,
        on_error: OnError | None = None,
        *,
        force_polling: bool = False,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        debounce_ms: int = DEFAULT_DEBOUNCE_MS,
        check_tests: bool = False,
    ) -> None:
        super().__init__(path, on_reload, on_error, check_tests)
        self._force_polling = force_polling
        self._poll_delay_ms = max(1, round(poll_interval * 1000))
        # When polling, the content check itself runs at the poll interval: notify's poller
        # compares metadata and can miss a same-second rewrite, a content hash cannot.
        self._rescan_s = min(poll_interval, RESCAN_MS / 1000) if force_polling else RESCAN_MS / 1000
        self._debounce_ms = debounce_ms
        self._lock: asyncio.Lock | None = None
        self._stop: asyncio.Event | None = None
        self._ready: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def start(self) -> None:
        """Start the watcher task on the running loop. Idempotent."""
        if self._closed:
            raise RuntimeError("store is closed")
        if self._task is not None:
            return
        # Made here, not in __init__: they belong to the loop that runs the watcher.
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"policyroute-awatch:{self._path.name}"
        )

    async def reload(self) -> bool:
        """Load the files now. True if a new revision went live; never raises for bad policy."""
        return await self._check(force=True)

    async def _check(self, force: bool) -> bool:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            try:
                outcome = await asyncio.to_thread(self._prepare, force)
                return self._apply(outcome)
            except Exception:
                logger.exception("unexpected failure reloading %s", self._path)
                return False

    async def _run(self) -> None:
        stop, ready = self._stop, self._ready
        assert stop is not None and ready is not None
        try:
            while not stop.is_set():
                dirs = self._watch_dirs()
                if not dirs:
                    ready.set()
                    if await _wait(stop, RESCAN_MS / 1000):
                        return
                    await self._check(force=False)
                    continue
                try:
                    await self._watch(dirs, stop, ready)
                except Exception:
                    logger.debug("watcher on %s failed; restarting", dirs, exc_info=True)
                    if await _wait(stop, RETRY_S):
                        return
        finally:
            ready.set()

    async def _watch(
        self, dirs: tuple[Path, ...], stop: asyncio.Event, ready: asyncio.Event
    ) -> None:
        core = self
        fresh = True  # see PolicyStore._watch
        last_scan = time.monotonic()
        async for changes in watchfiles.awatch(
            *dirs,
            watch_filter=core._is_relevant,
            debounce=self._debounce_ms,
            step=DEFAULT_STEP_MS,
            stop_event=stop,
            rust_timeout=WAKE_MS,
            yield_on_timeout=True,
            recursive=False,
            force_polling=self._force_polling,
            poll_delay_ms=self._poll_delay_ms,
        ):
            now = time.monotonic()
            if changes or fresh or now - last_scan >= self._rescan_s:
                await self._check(force=bool(changes))
                last_scan = now
                if fresh:
                    fresh = False
                    ready.set()
            if core._watch_dirs() != dirs:
                return

    async def aclose(self) -> None:
        """Stop the watcher task and wait for it. Safe to call more than once."""
        self._closed = True
        if self._stop is not None:
            self._stop.set()
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            await task

    async def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> bool:
        """Wait until the watcher is up, so that an edit made from now on is seen promptly."""
        if self._ready is None:
            return False
        return await _wait(self._ready, timeout)

    async def __aenter__(self) -> AsyncPolicyStore:
        self.start()
        await self.wait_ready()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("watching" if self._task else "not started")
        return f"<AsyncPolicyStore {self._path} revision={self.revision} {state}>"


def awatch(
    path: str | os.PathLike[str],
    on_reload: OnReload | None = None,
    on_error: OnError | None = None,
    *,
    force_polling: bool = False,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    debounce_ms: int = DEFAULT_DEBOUNCE_MS,
    check_tests: bool = False,
) -> AsyncPolicyStore:
    """Load `path` now (raising PolicyError if it does not load) for watching on asyncio.

    The watcher runs from `async with awatch(path) as store:` (or `store.start()`).
    """
    return AsyncPolicyStore(
        path,
        on_reload,
        on_error,
        force_polling=force_polling,
        poll_interval=poll_interval,
        debounce_ms=debounce_ms,
        check_tests=check_tests,
    )


async def _wait(event: asyncio.Event, timeout: float) -> bool:
    """Wait for `event` at most `timeout` seconds; True if it was set."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    return True
