"""State and reload logic shared by the thread and asyncio stores (`threaded`, `asynchronous`):
what to watch, when a change is relevant, and swapping in a loaded version."""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import watchfiles

from ..syntax.diagnostics import PolicyError, render_human
from .settled import (
    Fingerprint,
    SettledLoad,
    fingerprint,
    load_settled,
    unsettled_error,
)

if TYPE_CHECKING:
    from ..decision import Decision
    from ..policy import Classifier, Policy
    from ..request import Request

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


class StoreCore(ABC):
    """State and reload logic shared by the thread and asyncio stores.

    `policy` is the version serving now: always complete and checked, replaced by one
    assignment and never mutated. It is a plain attribute because `decide` reads it on every
    request. Readers touch nothing else; the rest is owned by whoever holds the store's
    reload lock, so it needs no locking of its own.
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
        # How the watcher runs (used by the subclass's watch loop).
        self._force_polling = force_polling
        self._poll_delay_ms = max(1, round(poll_interval * 1000))
        # When polling, the content check itself runs at the poll interval: notify's poller
        # compares metadata and can miss a same-second rewrite, a content hash cannot.
        self._rescan_s = min(poll_interval, RESCAN_MS / 1000) if force_polling else RESCAN_MS / 1000
        self._debounce_ms = debounce_ms
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
        self._start_watching()

    @abstractmethod
    def _start_watching(self) -> None:
        """The store's own watcher (a thread, an asyncio task): set up once the first
        version has loaded."""

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

    def _prepare(self, force: bool) -> SettledLoad | None:
        """Load the files, or (unless forced) do nothing if their content is as last loaded.

        Watcher events force a load: the periodic rescan compares content digests only to
        spare itself a compile. What a load counts for is decided in `settled`: only a
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

    def _apply(self, outcome: SettledLoad | None) -> bool:
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
