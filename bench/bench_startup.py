"""Start-up cost of the `policyroute` command, as a ratio against a bare Python start.

    python bench/bench_startup.py [--runs N] [--compare TREE]

Each command runs N times as a fresh process, interleaved so that machine noise hits all of
them alike; the table shows the best and the median wall time and the median's ratio to
`python -c pass`. `import policyroute` is also timed as Python's own `-X importtime` reports
it (best of N: the package's cumulative import time, without the interpreter's start), the
figure the 0.1 s target is about. `--compare TREE` adds the same rows for another checkout
of the package (e.g. `git archive main | tar -x -C /tmp/main`), run by this Python with TREE
first on its path. Every command runs in a neutral folder: `python -c` puts the working
directory first on the path, which would import the checkout it stands in. The
first `check` after installing builds Lark's parse tables once and caches them in the user's
cache folder; the bench runs it once beforehand so the figures are the steady state an editor
or a pre-commit hook sees.

`lsp: first diagnostics` is what an editor waits for: from starting `policyroute lsp` to the
first `textDocument/publishDiagnostics` for a shipped policy, the client's `initialize`,
`initialized` and `didOpen` written at once (as editors do) over hand-framed JSON-RPC, so no
client library's cost is in the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "policies" / "coding-assistant.route"
BIN = Path(sys.executable).parent / "policyroute"

SHIPPED = sorted((ROOT / "policies").glob("*.route"))
COMMANDS: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import policyroute": [sys.executable, "-c", "import policyroute"],
    "import pygls.lsp.server": [sys.executable, "-c", "import pygls.lsp.server"],
    "policyroute --version": [str(BIN), "--version"],
    **{f"policyroute check {p.name}": [str(BIN), "check", str(p)] for p in SHIPPED},
    "policyroute check policies/": [str(BIN), "check", str(ROOT / "policies")],
    "policyroute route": [str(BIN), "route", str(POLICY), "--prompt", "Find the deadlock"],
    **{f"lsp: first diagnostics {p.name}": ["lsp", str(p)] for p in SHIPPED},
}
TARGET_S = 0.3
NEUTRAL = tempfile.gettempdir()
IMPORT_TARGET_S = 0.1
# The steady state a user's machine is in: modules compiled once and their bytecode cached.
# A PYTHONDONTWRITEBYTECODE=1 in the bench's environment (some CI and sandbox images set it)
# would make every start compile every policyroute module again, a third of `check`'s time.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _frame(message: dict[str, object]) -> bytes:
    body = json.dumps(message).encode()
    return f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def _read_message(stream: object) -> dict[str, object]:
    length = 0
    while True:
        line = stream.readline()  # type: ignore[attr-defined]
        if not line:
            raise RuntimeError("the language server closed its output")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return dict(json.loads(stream.read(length)))  # type: ignore[attr-defined]


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a running process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lsp_first_diagnostics(path: Path) -> tuple[float, float]:
    """Wall and CPU seconds from starting `policyroute lsp` to its first diagnostics for
    `path` (the CPU read at that moment, before the server goes on to import pygls)."""
    uri = path.resolve().as_uri()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(BIN), "lsp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env=ENV,
    )
    assert proc.stdin is not None and proc.stdout is not None
    item = {"uri": uri, "languageId": "route", "version": 1, "text": path.read_text()}
    init = {"processId": None, "rootUri": ROOT.as_uri(), "capabilities": {}}
    proc.stdin.write(
        _frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
        + _frame({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        + _frame(
            {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": item}}
        )
    )
    proc.stdin.flush()
    try:
        while True:
            message = _read_message(proc.stdout)
            if message.get("method") == "textDocument/publishDiagnostics":
                params = message["params"]
                assert isinstance(params, dict)
                if params["uri"] == uri:
                    elapsed = time.perf_counter() - start
                    cpu = _cpu_of(proc.pid)
                    assert params["diagnostics"] == [], params["diagnostics"]
                    return elapsed, cpu
    finally:
        proc.kill()
        proc.wait()


def import_time(env: dict[str, str] | None = None) -> float:
    """`import policyroute`'s cumulative time as `python -X importtime` reports it, in s."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import policyroute"],
        capture_output=True,
        text=True,
        check=True,
        env=env or ENV,
        cwd=NEUTRAL,
    )
    last = [ln for ln in proc.stderr.splitlines() if ln.rstrip().endswith("| policyroute")][-1]
    return int(last.split("|")[1]) / 1e6


def run_once(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall and CPU seconds of one run. CPU time barely moves with the machine's load (the
    wall time of a start-up on a shared machine is mostly waiting for a core), so it is the
    figure to compare with the target when the load average is high."""
    if cmd[0] == "lsp":
        return lsp_first_diagnostics(Path(cmd[1]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        cmd,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env or ENV,
        cwd=NEUTRAL,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--compare", metavar="TREE", help="another checkout to time beside this one"
    )
    args = parser.parse_args()
    commands = dict(COMMANDS)
    other: dict[str, str] | None = None
    if args.compare:
        other = {**os.environ, "PYTHONPATH": str(Path(args.compare).resolve())}
        commands["import policyroute (--compare)"] = [sys.executable, "-c", "import policyroute"]
    if not BIN.exists():
        print(f"no console script at {BIN}: install policyroute into this Python", file=sys.stderr)
        return 2
    env_check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, policyroute; print(sorted(m for m in "
            "('anthropic', 'httpx', 'numpy', 'starlette', 'uvicorn', 'watchfiles') "
            "if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    # Warm Lark's table cache and the bytecode of every module the commands import.
    for cmd in COMMANDS.values():
        run_once(cmd)
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    self_times: list[float] = []
    other_times: list[float] = []
    for _ in range(args.runs):
        for name, cmd in commands.items():
            wall, cpu = run_once(cmd, other if name.endswith("(--compare)") else None)
            times[name].append(wall)
            cpus[name].append(cpu)
        self_times.append(import_time())
        if other is not None:
            other_times.append(import_time(other))
    base = statistics.median(times["python -c pass"])
    base_cpu = statistics.median(cpus["python -c pass"])
    print(
        f"{'command':<48} {'wall':>8} {'ratio':>6} {'cpu':>8} {'ratio':>6}"
        f"   (medians, n={args.runs}, cpus={os.cpu_count()})"
    )
    for name in commands:
        med, cpu = statistics.median(times[name]), statistics.median(cpus[name])
        print(
            f"{name:<48} {med * 1000:5.0f} ms {med / base:5.1f}x "
            f"{cpu * 1000:5.0f} ms {cpu / base_cpu:5.1f}x"
        )
    best = min(self_times)
    print(
        f"-X importtime, import policyroute: best {best * 1000:.0f} ms, median "
        f"{statistics.median(self_times) * 1000:.0f} ms "
        f"({'meets' if best < IMPORT_TARGET_S else 'MISSES'} the "
        f"{IMPORT_TARGET_S * 1000:.0f} ms target)"
    )
    if other_times:
        print(
            f"-X importtime, import policyroute (--compare): best {min(other_times) * 1000:.0f} ms,"
            f" median {statistics.median(other_times) * 1000:.0f} ms"
        )
    print(f"heavy modules loaded by `import policyroute`: {env_check.stdout.strip()}")
    print(f"load average after the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name in COMMANDS:
        if name.startswith(("policyroute check", "lsp:")):
            med, cpu = statistics.median(times[name]), statistics.median(cpus[name])
            verdict = "meets" if med < TARGET_S else "MISSES"
            print(
                f"{name}: wall {med * 1000:.0f} ms {verdict} the {TARGET_S * 1000:.0f} ms "
                f"target (cpu {cpu * 1000:.0f} ms)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
