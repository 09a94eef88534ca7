"""The asyncio form of the store: `awatch()` and `AsyncPolicyStore` (see `store`)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from types import TracebackType

import watchfiles

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

__all__ = ["AsyncPolicyStore", "awatch"]


class AsyncPolicyStore(StoreCore):
    """The asyncio form of `PolicyStore`: watches with `watchfiles.awatch` in a task.

    Use as `async with awatch(path) as store:`, or call `start()` inside a running loop and
    `await store.aclose()` at the end. Compilation runs in a worker thread so a large
    policy never stalls the event loop; the swap and the callbacks happen on the loop.
    """

    def _start_watching(self) -> None:
        # The loop's objects are made in start(), on the loop that runs the watcher.
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
