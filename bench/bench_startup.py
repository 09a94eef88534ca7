"""Start-up cost of the `policyroute` command, as a ratio against a bare Python start.

    python bench/bench_startup.py [--runs N]

Each command runs N times as a fresh process, interleaved so that machine noise hits all of
them alike; the table shows the median wall time and its ratio to `python -c pass`. The
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
import statistics
import subprocess
import sys
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


def lsp_first_diagnostics(path: Path) -> float:
    """Seconds from starting `policyroute lsp` to its first diagnostics for `path`."""
    uri = path.resolve().as_uri()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(BIN), "lsp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
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
                    assert params["diagnostics"] == [], params["diagnostics"]
                    return elapsed
    finally:
        proc.kill()
        proc.wait()


def run_once(cmd: list[str]) -> float:
    if cmd[0] == "lsp":
        return lsp_first_diagnostics(Path(cmd[1]))
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
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
    run_once(COMMANDS[f"policyroute check {POLICY.name}"])  # warm Lark's table cache
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.runs):
        for name, cmd in COMMANDS.items():
            times[name].append(run_once(cmd))
    base = statistics.median(times["python -c pass"])
    print(f"{'command':<52} {'median':>9} {'ratio':>7}   (n={args.runs}, cpus={os.cpu_count()})")
    for name, samples in times.items():
        med = statistics.median(samples)
        print(f"{name:<52} {med * 1000:7.0f} ms {med / base:6.1f}x")
    print(f"heavy modules loaded by `import policyroute`: {env_check.stdout.strip()}")
    print(f"load average after the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name, samples in times.items():
        if name.startswith(("policyroute check", "lsp:")):
            med = statistics.median(samples)
            verdict = "meets" if med < TARGET_S else "MISSES"
            print(f"{name}: {med * 1000:.0f} ms {verdict} the {TARGET_S * 1000:.0f} ms target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
