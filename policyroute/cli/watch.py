"""`policyroute watch POLICY`: follow a policy file as it is edited, the way a server would.

Prints each reload (revision, compile time, rule count) on stdout and each rejected edit on
stderr with its diagnostics (as `check` prints them), until interrupted. An edit whose own
inline tests fail is refused like one with errors (`--no-check-tests` to allow it). Useful beside an editor: save, and see at once whether the
running policy took the change or kept the last good version.
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from ..syntax.diagnostics import PolicyError
from .common import UsageError, add_format, use_colour

if TYPE_CHECKING:
    from ..policy import Policy
    from ..store import PolicyStore


@dataclass(frozen=True, slots=True)
class _Reloaded:
    policy: Policy
    compile_ms: float


@dataclass(frozen=True, slots=True)
class _Rejected:
    error: PolicyError
    serving: str


class _Stop:
    pass


_Event = _Reloaded | _Rejected | _Stop

# The store's own default, repeated so `--help` does not load watchfiles; a test pins them equal.
_DEFAULT_POLL_INTERVAL = 0.3


def register(subparsers: Any) -> None:
    """Register `watch` on the `policyroute` command's subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "watch",
        help="follow a policy file, printing each reload and each rejected edit",
        description=(
            "Load POLICY and follow it and its imports as they change: each change that "
            "checks clean is reloaded (revision, compile time, rule count are printed); a "
            "change with errors is rejected with its diagnostics and the last good version "
            "stays live. Runs until interrupted (Ctrl-C or SIGTERM), then exits 0."
        ),
    )
    p.add_argument("policy", metavar="POLICY", help="the .route file to follow")
    add_format(p)
    p.add_argument(
        "--poll",
        action="store_true",
        help="poll for changes instead of using file system notifications "
        "(network mounts, some containers)",
    )
    p.add_argument(
        "--no-check-tests",
        dest="check_tests",
        action="store_false",
        help="reload an edit even when its inline tests fail (by default it is refused)",
    )
    p.add_argument(
        "--poll-interval",
        type=float,
        default=_DEFAULT_POLL_INTERVAL,
        metavar="SECONDS",
        help=f"how often to poll with --poll (default {_DEFAULT_POLL_INTERVAL})",
    )
    p.set_defaults(func=run)


def _stamp() -> str:
    return time.strftime("%H:%M:%S")


def _say(line: str, stream: TextIO = sys.stdout) -> None:
    print(f"[{_stamp()}] {line}", file=stream, flush=True)


def _event(
    kind: str,
    path: Path,
    policy: Policy,
    compile_ms: float | None,
    error: PolicyError | None = None,
) -> None:
    """One JSON line per event (--format json): for tools that follow a policy's reloads."""
    out: dict[str, Any] = {"event": kind, "time": time.time(), "path": str(path)}
    if error is None:
        out.update(revision=policy.revision, compile_ms=round(compile_ms or 0.0, 3))
    else:
        out["serving"] = policy.revision
        out["errors"] = [d.to_json() for d in error.diagnostics if d.is_error]
    print(json.dumps(out), flush=True)


def _errors(error: PolicyError) -> str:
    """The errors that made a version fail, as `check` prints them."""
    from ..syntax.diagnostics import render_human

    errors = [d for d in error.diagnostics if d.is_error]
    return render_human(errors or error.diagnostics, use_colour(sys.stderr))


def _describe(policy: Policy, compile_ms: float) -> str:
    # `Policy.rules` lists the default last; it is not a rule as the author counts them.
    rules = sum(1 for r in policy.rules if r.name != "default")
    return (
        f"revision {policy.revision}, {rules} rule{'' if rules == 1 else 's'} + default, "
        f"compiled in {compile_ms:.1f} ms"
    )


def run(args: argparse.Namespace) -> int:
    if args.poll_interval <= 0:
        raise UsageError("--poll-interval must be positive")
    path = Path(args.policy)
    if not path.exists():
        raise UsageError(f"{args.policy}: no such file")
    if not path.is_file():
        raise UsageError(f"{args.policy}: not a file")
    # Events are printed by the main thread only, so lines never interleave and the
    # signal handlers (which must run on the main thread) stay in charge of stopping.
    events: queue.SimpleQueue[_Event] = queue.SimpleQueue()
    holder: list[PolicyStore] = []

    def on_reload(policy: Policy) -> None:
        ms = holder[0].last_compile_ms if holder else float("nan")
        events.put(_Reloaded(policy, ms))

    def on_error(error: PolicyError) -> None:
        serving = holder[0].revision if holder else "?"
        events.put(_Rejected(error, serving))

    # The store also logs each rejection; this command prints them itself, and Python's
    # last-resort handler would otherwise print every diagnostic twice.
    store_log = logging.getLogger("policyroute.store")
    saved_propagate = store_log.propagate
    null = logging.NullHandler()
    store_log.addHandler(null)
    store_log.propagate = False
    try:
        return _follow(args, events, holder, on_reload, on_error)
    finally:
        store_log.removeHandler(null)
        store_log.propagate = saved_propagate


def _follow(
    args: argparse.Namespace,
    events: queue.SimpleQueue[_Event],
    holder: list[PolicyStore],
    on_reload: Any,
    on_error: Any,
) -> int:
    from ..store import watch

    def stop(signum: int, frame: FrameType | None) -> None:
        events.put(_Stop())

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            store = watch(
                args.policy,
                on_reload,
                on_error,
                force_polling=args.poll,
                poll_interval=args.poll_interval,
                check_tests=args.check_tests,
            )
        except PolicyError as e:
            print(_errors(e), file=sys.stderr, flush=True)
            print(f"policyroute watch: {args.policy} does not load", file=sys.stderr, flush=True)
            return 1
        holder.append(store)
        with store:
            mode = f"polling every {args.poll_interval:g} s" if args.poll else "notifications"
            if args.format == "json":
                _event("watching", store.path, store.policy, store.last_compile_ms)
            else:
                _say(
                    f"watching {store.path} ({mode}): policy {store.policy.name or '(unnamed)'}, "
                    + _describe(store.policy, store.last_compile_ms)
                )
            while True:
                try:
                    # A timeout keeps the wait short enough for signal handlers to run promptly.
                    event = events.get(timeout=0.5)
                except queue.Empty:
                    continue
                if isinstance(event, _Stop):
                    break
                if args.format == "json":
                    if isinstance(event, _Reloaded):
                        _event("reloaded", store.path, event.policy, event.compile_ms)
                    else:
                        _event("rejected", store.path, store.policy, None, event.error)
                elif isinstance(event, _Reloaded):
                    _say(f"reloaded {store.path}: " + _describe(event.policy, event.compile_ms))
                else:
                    _say(
                        f"rejected edit to {store.path}; still serving revision {event.serving}",
                        sys.stderr,
                    )
                    print(_errors(event.error), file=sys.stderr, flush=True)
        if args.format == "json":
            print(json.dumps({"event": "stopped"}), flush=True)
        else:
            _say("stopped")
        return 0
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
