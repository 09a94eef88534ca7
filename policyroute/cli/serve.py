"""`policyroute serve POLICY`: the Messages API as a routing proxy any Anthropic client can use.

Point a client at it (`ANTHROPIC_BASE_URL=http://127.0.0.1:8787`) and ask for
`model="auto"`: the policy picks the tier. The server stack (starlette, uvicorn, httpx2,
prometheus-client) is the `serve` extra and is imported only when this command runs.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import json
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..server.loopguard import new_instance_id, points_at_self
from .common import EXIT_FAIL, EXIT_OK, UsageError, load_policy, say_error
from .serve_settings import resolve

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
# The environment variable that carries the settings to `--workers` processes.
CONFIG_ENV = "POLICYROUTE_SERVE_CONFIG"


def register(subparsers: Any) -> None:
    """Register `serve` on the `policyroute` command's subparsers.

    No flag has an argparse default: an unset flag must not hide the environment or the
    config file (cli/serve_settings.py holds the defaults).
    """
    p: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="run a Messages API proxy that routes model=auto through POLICY",
        argument_default=argparse.SUPPRESS,
        description=(
            "Serve the Anthropic Messages API on HOST:PORT. A request whose model is 'auto' "
            "(or the policy's name) is routed by POLICY, capped and escalated like the Router; "
            "any other model passes through untouched. POLICY is hot-reloaded: a broken edit "
            "keeps the last good version serving. Every flag is also a key of --config FILE "
            "and a POLICYROUTE_<KEY> variable; a flag wins over the variable, which wins over "
            "the file. Needs: pip install 'policyroute[serve]'."
        ),
    )
    p.add_argument("policy", metavar="POLICY", nargs="?", help="the .route file to serve")
    p.add_argument("--config", metavar="FILE", help="read settings from this TOML file")
    p.add_argument("--host", help=f"address to bind (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, help=f"default {DEFAULT_PORT}")
    p.add_argument(
        "--upstream",
        metavar="URL",
        help="the API to forward to (default: $ANTHROPIC_BASE_URL, else https://api.anthropic.com)",
    )
    p.add_argument("--records", metavar="FILE", help="append a decision record per request")
    p.add_argument(
        "--log-prompts", action="store_true", help="put request text in records (off: digest only)"
    )
    p.add_argument("--workers", type=int, metavar="N", help="processes (default 1)")
    p.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="hold the Anthropic key (read from $NAME) and require client tokens instead",
    )
    p.add_argument(
        "--client-tokens-env",
        metavar="NAME",
        help="require a client token, one of those in $NAME (separated by commas or spaces)",
    )
    p.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="allow binding a non-loopback address without client tokens",
    )
    p.add_argument(
        "--public-metrics",
        action="store_true",
        help="serve /metrics and the health endpoints without a client token",
    )
    p.add_argument(
        "--max-body-bytes",
        type=int,
        metavar="N",
        help="largest request body accepted (default 32 MiB, the API's own limit)",
    )
    p.add_argument(
        "--body-timeout",
        type=float,
        metavar="SECONDS",
        help="a client must send its whole request body within this time (default 60)",
    )
    p.add_argument(
        "--upstream-timeout",
        type=float,
        metavar="SECONDS",
        help="give up on an upstream answer after this long (default 600, as the SDK)",
    )
    p.add_argument(
        "--shutdown-timeout",
        type=float,
        metavar="SECONDS",
        help="on SIGTERM, how long in-flight requests may take to finish (default 30)",
    )
    p.add_argument(
        "--max-concurrency",
        type=int,
        metavar="N",
        help="requests served at once per worker; more get 529 and /readyz says not ready "
        "(default 0: no limit)",
    )
    p.add_argument(
        "--sticky-max",
        type=int,
        metavar="N",
        help="conversations remembered for sticky routing (default 100000)",
    )
    p.add_argument(
        "--state",
        metavar="URL",
        help="keep sticky floors and spend counters in Redis (redis://HOST:PORT/DB), shared "
        "by every replica and worker (default: in this process)",
    )
    p.add_argument(
        "--state-timeout",
        type=float,
        metavar="MS",
        help="a state read slower than this reads as missing (default 50 ms)",
    )
    p.add_argument(
        "--shadow-budget",
        type=float,
        metavar="USD",
        help="turn the policy's shadow statements on, spending at most USD a day (UTC)",
    )
    p.add_argument(
        "--pairs", metavar="FILE", help="where shadowed requests' answer pairs are appended"
    )
    p.add_argument("--poll", action="store_true", help="poll the policy file for changes")
    p.add_argument("--access-log", action="store_true", help="log every request line")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--log-format", choices=["text", "json"], help="log lines as text or JSON (default text)"
    )
    p.set_defaults(func=run)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        return bool(infos) and all(
            ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos
        )


def _env(name: str, what: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise UsageError(f"{what}: ${name} is not set or empty")
    return value


def settings_from(args: argparse.Namespace) -> dict[str, Any]:
    """The server's settings (flags > environment > file), validated; secrets stay in the
    environment, named here. Everything that can be known before listening is checked."""
    s, where = resolve(vars(args), getattr(args, "config", None))
    if s.policy is None:
        raise UsageError("no policy: name the .route file, or set 'policy' in --config")

    def at(key: str) -> str:
        return where.get(key, "--" + key.replace("_", "-"))

    tokens: list[str] = []
    if s.client_tokens_env:
        raw = _env(s.client_tokens_env, at("client_tokens_env"))
        tokens = [t for t in raw.replace(",", " ").split() if t]
    if s.api_key_env:
        _env(s.api_key_env, at("api_key_env"))
        if not tokens:
            raise UsageError(
                f"{at('api_key_env')}: a server that holds the API key must require client "
                "tokens; add --client-tokens-env NAME"
            )
    if not _is_loopback(s.host) and not tokens and not s.allow_unauthenticated:
        raise UsageError(
            f"{at('host')} {s.host} is reachable from other machines and no client tokens are "
            "required: add --client-tokens-env NAME, or --allow-unauthenticated if something "
            "in front of this server authenticates callers"
        )
    upstream, upstream_from = s.upstream, at("upstream")
    if upstream is None and os.environ.get("ANTHROPIC_BASE_URL"):
        upstream, upstream_from = os.environ["ANTHROPIC_BASE_URL"], "$ANTHROPIC_BASE_URL"
        if not upstream.startswith(("http://", "https://")):
            raise UsageError(f"$ANTHROPIC_BASE_URL {upstream}: must be an http:// or https:// URL")
    if upstream is not None and points_at_self(upstream, s.host, s.port):
        raise UsageError(
            f"{upstream_from} {upstream} is this server's own address ({s.host}:{s.port}): every "
            "request would be forwarded to itself. Set --upstream to the API "
            "(https://api.anthropic.com), or unset ANTHROPIC_BASE_URL in the shell that starts "
            "serve (clients keep it)"
        )
    if s.records is not None:
        check_records(s.records, at("records"))
    if (s.shadow_budget is None) != (s.pairs is None):
        raise UsageError("--shadow-budget and --pairs go together: shadowing needs both")
    state = _state_url(s.state, at("state"))
    return {
        **s.model_dump(),
        "policy": os.path.abspath(s.policy),
        "upstream": upstream,
        "records": os.path.abspath(s.records) if s.records else None,
        "instance_id": new_instance_id(),
        "state": state,
        "state_timeout": s.state_timeout / 1000,
        "pairs": os.path.abspath(s.pairs) if s.pairs else None,
    }


def _shown(url: str) -> str:
    from ..runtime.redis_state import shown

    return shown(url)


def _state_url(url: str | None, where: str) -> str | None:
    if url is None:
        return None
    from ..runtime.redis_state import check_url

    try:
        check_url(url)
    except ValueError as e:
        raise UsageError(f"{where} {e}") from None
    try:
        import redis  # noqa: F401
    except ImportError:
        raise UsageError(
            f"{where}: state shared through Redis needs the redis client: "
            "pip install 'policyroute[redis]'"
        ) from None
    return url


def check_records(path: str, where: str) -> None:
    """The records file can be appended to: not a folder, its folder exists and is writable."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{where} {path}: is a folder; name a file to append records to")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"{where} {path}: the folder {folder} does not exist")
    if p.exists() and not os.access(p, os.W_OK):
        raise UsageError(f"{where} {path}: not writable")
    if not p.exists() and not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{where} {path}: cannot create a file in {folder}")


def check_inline_tests(policy: Any, path: str) -> list[str]:
    """One line for each inline test of the policy that fails (serve refuses to start)."""
    from ..compiler.inline_tests import run_tests

    lines = []
    for r in run_tests(policy):
        if not r.passed:
            expected = r.test.tier + (f" by {r.test.by_rule}" if r.test.by_rule else "")
            lines.append(
                f"{r.location()}: inline test {r.test.name!r} expects {expected}, the policy "
                f"decides {r.decision.tier} by {r.decision.rule}"
            )
    return lines


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now: a port in use is a usage error, not a traceback
    after the start-up line."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as e:
        raise UsageError(f"--host {host}: cannot be resolved ({e.strerror or e})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        why = "already in use" if e.errno == errno.EADDRINUSE else (e.strerror or str(e))
        raise UsageError(f"--port {port} on {host}: {why}") from None
    sock.set_inheritable(True)
    return sock


def config_from(settings: dict[str, Any]) -> Any:
    """A ServeConfig from validated settings (reads the secrets from the environment)."""
    from ..server.app import ServeConfig
    from ..server.upstream import DEFAULT_UPSTREAM

    tokens: tuple[str, ...] = ()
    if settings["client_tokens_env"]:
        raw = os.environ.get(settings["client_tokens_env"], "")
        tokens = tuple(t for t in raw.replace(",", " ").split() if t)
    api_key = (
        os.environ.get(settings["api_key_env"], "").strip() if settings["api_key_env"] else None
    )
    shadow = None
    if settings.get("shadow_budget") is not None:
        from ..runtime.shadowing import ShadowConfig

        shadow = ShadowConfig(settings["shadow_budget"], pairs=settings["pairs"])
    return ServeConfig(
        policy=settings["policy"],
        upstream=settings["upstream"] or DEFAULT_UPSTREAM,
        records=settings["records"],
        log_prompts=settings["log_prompts"],
        api_key=api_key or None,
        client_tokens=tokens,
        max_body_bytes=settings["max_body_bytes"],
        upstream_timeout=settings["upstream_timeout"],
        sticky_max_conversations=settings["sticky_max"],
        poll=settings["poll"],
        state=settings.get("state"),
        state_timeout=settings["state_timeout"],
        shadow=shadow,
        body_timeout=settings["body_timeout"],
        max_concurrency=settings["max_concurrency"],
        public_metrics=settings["public_metrics"],
        instance_id=settings["instance_id"],
    )


def app_from_env() -> Any:
    """The app of one `--workers` process, from the settings the parent put in the env."""
    from ..server.app import create_app

    return create_app(config_from(json.loads(os.environ[CONFIG_ENV])))


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..server.app import create_app
        from ..server.logs import log_config
        from ..server.metrics import prepare_multiprocess
    except ImportError as e:
        print(
            f"policyroute serve: the server needs the serve extra ({e.name} is missing): "
            "pip install 'policyroute[serve]'",
            file=sys.stderr,
        )
        return EXIT_FAIL
    settings = settings_from(args)
    policy = load_policy(settings["policy"])  # a broken policy is reported now, exit 1
    failing = check_inline_tests(policy, settings["policy"])
    if failing:
        for line in failing:
            say_error("serve", line)
        return EXIT_FAIL
    if settings["workers"] > 1 and settings["state"] is None:
        from ..runtime.spend import spend_names

        remembers = (
            "declares sticky conversations"
            if policy.sticky_window is not None
            else "reads spend"
            if spend_names(policy)
            else None
        )
        if remembers is not None:
            raise UsageError(
                f"the policy {remembers}, which is remembered per process without shared "
                "state: add --state redis://HOST:PORT/DB, or run one worker per replica and "
                "hash the conversation at the load balancer (docs/serve.md)"
            )
    sock = bind(settings["host"], settings["port"])
    upstream = settings["upstream"] or "https://api.anthropic.com"
    print(
        f"policyroute serve: policy {policy.name or '(unnamed)'} revision {policy.revision} "
        f"on http://{settings['host']}:{settings['port']} -> {upstream}"
        + (f", state in {_shown(settings['state'])}" if settings["state"] else ""),
        file=sys.stderr,
        flush=True,
    )
    if policy.shadows and settings["shadow_budget"] is None:
        print(
            "policyroute serve: the policy's shadow statements are off: give --shadow-budget "
            "USD and --pairs FILE to send them",
            file=sys.stderr,
            flush=True,
        )
    common: dict[str, Any] = {
        "host": settings["host"],
        "port": settings["port"],
        "log_level": settings["log_level"],
        "log_config": log_config(settings["log_level"], settings["log_format"]),
        "access_log": settings["access_log"],
        "timeout_graceful_shutdown": settings["shutdown_timeout"],
        "server_header": False,
        # X-Forwarded-For rewriting is for access logs, which are off unless asked for.
        "proxy_headers": settings["access_log"],
        "lifespan": "on",
    }
    if settings["workers"] > 1:
        # uvicorn binds the workers' socket itself; ours only proved the port is free.
        sock.close()
        os.environ[CONFIG_ENV] = json.dumps(settings)
        with tempfile.TemporaryDirectory(prefix="policyroute-metrics-") as folder:
            prepare_multiprocess(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or folder)
            uvicorn.run(
                "policyroute.cli.serve:app_from_env",
                factory=True,
                workers=settings["workers"],
                **common,
            )
        return EXIT_OK
    app = create_app(config_from(settings))
    server = uvicorn.Server(uvicorn.Config(app, **common))
    server.run(sockets=[sock])
    return EXIT_OK if server.started else EXIT_FAIL
