"""`policyroute ARGS` run in this process through `cli.main`, as the installed command would
run it in a fresh one: its own environment, folder and empty stdin, stdout and stderr captured
apart, argparse's exit taken as the status, Python warnings and log records shown on stderr
as a fresh interpreter shows them (pytest would otherwise collect them). An exception `main`
does not handle propagates and fails the test, as the command's traceback would.

Starting an interpreter that imports the command cost 0.7 to 3.7 s a command on this 2-core
machine at load 6 to 9 (December 2026); tests that run many commands use this instead, and
keep a case through the real entry point."""

from __future__ import annotations

import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from policyroute.cli import common, main


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


@contextmanager
def _environment(env: Mapping[str, str] | None) -> Iterator[None]:
    if env is None:
        yield
        return
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _folder(cwd: Path | str | None) -> Iterator[None]:
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(old)


@contextmanager
def _as_a_fresh_interpreter(stderr: TextIO) -> Iterator[None]:
    """Python's default warning filters, each warning printed to `stderr`; log records with
    no handler of the program's own go to stderr through logging's last resort, as they do
    when pytest has not put its capture handlers on the root logger."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
        for quiet in (
            DeprecationWarning,
            PendingDeprecationWarning,
            ImportWarning,
            ResourceWarning,
        ):
            warnings.filterwarnings("ignore", category=quiet)

        def show(message: Any, category: Any, filename: str, lineno: int, *_: Any) -> None:
            stderr.write(warnings.formatwarning(message, category, filename, lineno))

        warnings.showwarning = show
        root.handlers = []
        root.setLevel(logging.WARNING)
        try:
            yield
        finally:
            root.handlers = handlers
            root.setLevel(level)


def run_main(
    argv: Sequence[str],
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    stdin: str = "",
) -> Ran:
    """`policyroute ARGV` in `cwd` with exactly the environment `env` (None: this one)."""
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    common._stdin_text = None  # read once per process; each run is a process of its own
    sys.stdin = io.StringIO(stdin)
    try:
        with (
            _environment(env),
            _folder(cwd),
            redirect_stdout(out),
            redirect_stderr(err),
            _as_a_fresh_interpreter(err),
        ):
            try:
                code = main(list(argv))
            except SystemExit as e:  # argparse: usage errors, --help, --version
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                if isinstance(e.code, str):
                    err.write(e.code + "\n")
    finally:
        sys.stdin = old_stdin
        common._stdin_text = None
    return Ran(code, out.getvalue(), err.getvalue())
