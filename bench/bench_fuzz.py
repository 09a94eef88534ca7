"""Seeded hostile cases through the `policyroute` command line, counted by outcome (issue 25).

    python bench/bench_fuzz.py [--cases 100000] [--seed 25] [--workers 2] [--timeout 20]
    python bench/bench_fuzz.py --case 1234          # one case, shown in full

Each case (bench/fuzz_cases.py: policies, requests, traffic lines, outcome lines and flags)
is a few files in a fresh folder and one command line, run by `policyroute.cli.main` inside a
worker subprocess: the worker has a memory cap (RLIMIT_AS) and each case a time limit
(SIGALRM), and the parent kills a worker whose case overruns the limit by 30 s more. The
outcomes: `exit 0/1/2` (what the command returned), `traceback` (an exception escaped the
command, or its stderr holds one: MemoryError and RecursionError included), `timeout`, and
`crash` (the worker died: a segfault, an abort). Prints counts by kind and outcome and every
case that was not an exit, and exits 1 if there was one. Workers keep the interpreter warm,
so 100,000 cases take minutes, not the hours of 100,000 interpreter starts.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_cases import KINDS, case

BAD = ("traceback", "timeout", "crash")
TRACEBACK = "Traceback (most recent call last)"
GRACE = 30.0


class _CaseTimeout(BaseException):
    """Raised by the alarm; a BaseException so no command's `except Exception` takes it."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise _CaseTimeout


def run_case(seed: int, index: int, timeout: float) -> dict[str, Any]:
    """One case in this process, in a fresh folder: its outcome and a detail line."""
    from policyroute.cli import main

    c = case(seed, index)
    folder = tempfile.mkdtemp(prefix="fuzz")
    here = os.getcwd()
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace")
    outcome, detail = "", ""
    try:
        for name, text in c.files.items():
            Path(folder, name).write_text(text, encoding="utf-8", errors="surrogatepass")
        os.chdir(folder)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(c.argv)
                except SystemExit as e:  # argparse: --help, usage errors
                    code = e.code if isinstance(e.code, int) else 2
            outcome = f"exit {code}"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _CaseTimeout:
        outcome, detail = "timeout", f"over {timeout:g} s"
    except BaseException as e:
        outcome = "traceback"
        detail = "".join(traceback.format_exception_only(type(e), e)).strip()[:300]
    finally:
        os.chdir(here)
        shutil.rmtree(folder, ignore_errors=True)
    err.flush()
    stderr = err.buffer.getvalue().decode("utf-8", "replace")  # type: ignore[attr-defined]
    quoted = any(TRACEBACK in text for text in c.files.values())  # a policy's own phrase
    if outcome.startswith("exit") and TRACEBACK in stderr and not quoted:
        outcome, detail = "traceback", stderr.strip().splitlines()[-1][:300]
    return {"i": index, "kind": c.kind, "outcome": outcome, "detail": detail, "argv": c.argv}


def _worker(seed: int, timeout: float, memory_mb: int) -> None:
    cap = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    signal.signal(signal.SIGALRM, _on_alarm)
    import policyroute.cli

    # One parser for the worker's life (argparse keeps no state between parses): building it
    # is a third of a small case's time and not what the cases test.
    parser = policyroute.cli.make_parser()
    policyroute.cli.make_parser = lambda: parser  # type: ignore[assignment]
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    for raw in sys.stdin:
        result = run_case(seed, int(raw), timeout)
        reply.write(json.dumps(result) + "\n")
        if result["outcome"] == "timeout":
            return  # whatever the case left running goes with this process


@dataclass
class _Worker:
    proc: subprocess.Popen[str]
    index: int | None = None
    started: float = 0.0


@dataclass
class Summary:
    cases: int = 0
    seconds: float = 0.0
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    bad: list[dict[str, Any]] = field(default_factory=list)

    def by_outcome(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for (_, outcome), n in self.counts.items():
            out[outcome] += n
        return out


def _spawn(seed: int, timeout: float, memory_mb: int) -> _Worker:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
    for key in [k for k in env if k.startswith("ANTHROPIC_")]:
        del env[key]
    env["ANTHROPIC_BASE_URL"] = "http://127.0.0.1:9"  # nothing listens: never the network
    cmd = [sys.executable, __file__, "--worker", str(seed), str(timeout), str(memory_mb)]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        bufsize=1,
    )
    return _Worker(proc)


def run(
    cases: int,
    seed: int,
    workers: int,
    timeout: float,
    memory_mb: int = 4096,
    start: int = 0,
    budget: float | None = None,
) -> Summary:
    """Cases start .. start+cases-1 of `seed` over `workers` worker processes; with `budget`
    (seconds), no case is started after it, and the summary says how many ran."""
    summary = Summary()
    stop_at = None if budget is None else time.monotonic() + budget
    todo = iter(
        i for i in range(start, start + cases) if stop_at is None or time.monotonic() < stop_at
    )
    sel = selectors.DefaultSelector()
    pool: list[_Worker] = []
    began = time.perf_counter()

    def record(result: dict[str, Any]) -> None:
        summary.cases += 1
        summary.counts[(result["kind"], result["outcome"])] += 1
        if result["outcome"] in BAD:
            summary.bad.append(result)

    def feed(w: _Worker) -> bool:
        nxt = next(todo, None)
        if nxt is None:
            return False
        w.index, w.started = nxt, time.monotonic()
        assert w.proc.stdin is not None
        w.proc.stdin.write(f"{nxt}\n")
        w.proc.stdin.flush()
        return True

    def replace(w: _Worker) -> None:
        sel.unregister(w.proc.stdout)
        w.proc.kill()
        w.proc.wait()
        pool.remove(w)
        fresh = _spawn(seed, timeout, memory_mb)
        pool.append(fresh)
        sel.register(fresh.proc.stdout, selectors.EVENT_READ, fresh)
        if not feed(fresh):
            sel.unregister(fresh.proc.stdout)
            fresh.proc.stdin.close()  # type: ignore[union-attr]

    for _ in range(workers):
        w = _spawn(seed, timeout, memory_mb)
        pool.append(w)
        sel.register(w.proc.stdout, selectors.EVENT_READ, w)
        if not feed(w):
            break
    while any(w.index is not None for w in pool):
        for key, _ in sel.select(timeout=1.0):
            w = key.data
            line = w.proc.stdout.readline()  # type: ignore[union-attr]
            if not line:  # the worker died in its case
                code = w.proc.wait()
                kind = case(seed, w.index).kind if w.index is not None else "?"
                record(
                    {
                        "i": w.index,
                        "kind": kind,
                        "outcome": "crash",
                        "detail": f"worker exit {code}",
                        "argv": case(seed, w.index).argv,
                    }
                )
                w.index = None
                replace(w)
                continue
            result = json.loads(line)
            record(result)
            w.index = None
            if result["outcome"] == "timeout":
                replace(w)
            elif not feed(w):
                sel.unregister(w.proc.stdout)
                w.proc.stdin.close()  # type: ignore[union-attr]
        now = time.monotonic()
        for w in list(pool):
            if w.index is not None and now - w.started > timeout + GRACE:
                record(
                    {
                        "i": w.index,
                        "kind": case(seed, w.index).kind,
                        "outcome": "timeout",
                        "detail": "killed: no answer",
                        "argv": case(seed, w.index).argv,
                    }
                )
                w.index = None
                replace(w)
    for w in pool:
        with contextlib.suppress(Exception):
            w.proc.stdin.close()  # type: ignore[union-attr]
        w.proc.wait(timeout=30)
    summary.seconds = time.perf_counter() - began
    return summary


def report(s: Summary, seed: int) -> str:
    outcomes = sorted({o for _, o in s.counts}, key=lambda o: (o in BAD, o))
    lines = [f"{'kind':10}" + "".join(f"{o:>11}" for o in outcomes) + f"{'total':>9}"]
    for kind in KINDS:
        row = [s.counts.get((kind, o), 0) for o in outcomes]
        lines.append(f"{kind:10}" + "".join(f"{n:>11,}" for n in row) + f"{sum(row):>9,}")
    totals = s.by_outcome()
    lines.append(f"{'all':10}" + "".join(f"{totals[o]:>11,}" for o in outcomes) + f"{s.cases:>9,}")
    bad = {o: totals.get(o, 0) for o in BAD}
    lines.append(
        f"{s.cases:,} cases (seed {seed}) in {s.seconds:.0f} s: {bad['crash']} crashes, "
        f"{bad['traceback']} tracebacks, {bad['timeout']} over the time limit"
    )
    for b in s.bad[:50]:
        lines.append(
            f"  case {b['i']} ({b['kind']}) {b['outcome']}: {b['detail']}  argv={b['argv']}"
        )
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--seed", type=int, default=25)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds a case may take")
    ap.add_argument("--memory", type=int, default=4096, help="MB of address space a worker has")
    ap.add_argument("--case", type=int, help="run this one case here and show it")
    ap.add_argument("--budget", type=float, help="start no case after this many seconds")
    args = ap.parse_args()
    if args.case is not None:
        c = case(args.seed, args.case)
        print(
            json.dumps(
                {"kind": c.kind, "argv": c.argv, "files": {k: v[:300] for k, v in c.files.items()}},
                indent=1,
            )
        )
        signal.signal(signal.SIGALRM, _on_alarm)
        print(json.dumps(run_case(args.seed, args.case, args.timeout), indent=1))
        return 0
    s = run(args.cases, args.seed, args.workers, args.timeout, args.memory, args.start, args.budget)
    print(report(s, args.seed))
    print(json.dumps({"python": sys.version.split()[0], "load": os.getloadavg()[0]}))
    return 1 if s.bad else 0


if __name__ == "__main__":
    sys.exit(main())
