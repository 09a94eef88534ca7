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

Every load, the first included, goes through `settled`: it counts only when it is shown
to have compiled complete files, never half of one a writer is still writing.

This module has the thread store and `watch()`; the asyncio form is `asynchronous` (its names
are exported here too), and the logic both share is `reloading`.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import TracebackType

import watchfiles

from .asynchronous import AsyncPolicyStore, awatch
from .core import (
    DEFAULT_DEBOUNCE_MS,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_STEP_MS,
    READY_TIMEOUT_S,
    RESCAN_MS,
    RETRY_S,
    WAKE_MS,
    OnError,
    OnReload,
    StoreCore,
    logger,
)

__all__ = ["AsyncPolicyStore", "PolicyStore", "awatch", "watch"]


class PolicyStore(StoreCore):
    """The current policy of one `.route` file, reloaded by a background thread.

    Build it with `watch()`. `policy` is always a complete, checked policy; `decide` answers
    with whatever version is current at the moment of the call.
    """

    def _start_watching(self) -> None:
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
    fall back on (E005 too if the file stays open for writing by another program). Later
    failures are reported to `on_error` (and logged) instead.
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
