"""`policyroute serve POLICY`: the Messages API as a routing proxy any Anthropic client can use.

Point a client at it (`ANTHROPIC_BASE_URL=http://127.0.0.1:8787`) and ask for
`model="auto"`: the policy picks the tier. The server stack (starlette, uvicorn, httpx2,
prometheus-client) is the `serve` extra and is imported only when this command runs.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import os
import socket
import sys
from typing import Any

from .common import EXIT_FAIL, EXIT_OK, UsageError, load_policy

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
# The environment variable that carries the settings to `--workers` processes.
CONFIG_ENV = "POLICYROUTE_SERVE_CONFIG"


def register(subparsers: Any) -> None:
    """Register `serve` on the `policyroute` command's subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="run a Messages API proxy that routes model=auto through POLICY",
        description=(
            "Serve the Anthropic Messages API on HOST:PORT. A request whose model is 'auto' "
            "(or the policy's name) is routed by POLICY, capped and escalated like the Router; "
            "any other model passes through untouched. POLICY is hot-reloaded: a broken edit "
            "keeps the last good version serving. Needs: pip install 'policyroute[serve]'."
        ),
    )
    p.add_argument("policy", metavar="POLICY", help="the .route file to serve")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    p.add_argument(
        "--upstream",
        metavar="URL",
        help="the API to forward to (default: $ANTHROPIC_BASE_URL, else https://api.anthropic.com)",
    )
    p.add_argument("--records", metavar="FILE", help="append a decision record per request")
    p.add_argument(
        "--log-prompts", action="store_true", help="put request text in records (off: digest only)"
    )
    p.add_argument("--workers", type=int, default=1, metavar="N", help="processes (default 1)")
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
        "--max-body-bytes",
        type=int,
        default=32 * 1024 * 1024,
        metavar="N",
        help="largest request body accepted (default 32 MiB, the API's own limit)",
    )
    p.add_argument(
        "--upstream-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="give up on an upstream answer after this long (default 600, as the SDK)",
    )
    p.add_argument(
        "--shutdown-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="on SIGTERM, how long in-flight requests may take to finish (default 30)",
    )
    p.add_argument(
        "--sticky-max",
        type=int,
        default=100_000,
        metavar="N",
        help="conversations remembered for sticky routing (default 100000)",
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
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
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
    """The server's settings, validated; secrets stay in the environment, named here."""
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port}: not a port number")
    if args.workers < 1:
        raise UsageError("--workers must be 1 or more")
    if args.max_body_bytes < 1024:
        raise UsageError("--max-body-bytes must be at least 1024")
    # `not x > 0` also refuses NaN, which compares false with everything.
    if math.isnan(args.upstream_timeout) or not args.upstream_timeout > 0:
        raise UsageError(
            f"--upstream-timeout {args.upstream_timeout}: must be a number of seconds above 0"
        )
    if not args.shutdown_timeout >= 0:
        raise UsageError("--shutdown-timeout must be 0 or more")
    budget = args.shadow_budget
    if budget is not None and (not math.isfinite(budget) or budget < 0):
        raise UsageError(f"--shadow-budget {budget}: must be a number of USD, 0 or more")
    if (budget is None) != (args.pairs is None):
        raise UsageError("--shadow-budget and --pairs go together: shadowing needs both")
    if args.sticky_max < 1:
        raise UsageError("--sticky-max must be 1 or more")
    tokens: list[str] = []
    if args.client_tokens_env:
        raw = _env(args.client_tokens_env, "--client-tokens-env")
        tokens = [t for t in raw.replace(",", " ").split() if t]
    if args.api_key_env:
        _env(args.api_key_env, "--api-key-env")
        if not tokens:
            raise UsageError(
                "--api-key-env: a server that holds the API key must require client tokens; "
                "add --client-tokens-env NAME"
            )
    if not _is_loopback(args.host) and not tokens and not args.allow_unauthenticated:
        raise UsageError(
            f"--host {args.host} is reachable from other machines and no client tokens are "
            "required: add --client-tokens-env NAME, or --allow-unauthenticated if something "
            "in front of this server authenticates callers"
        )
    upstream = args.upstream or os.environ.get("ANTHROPIC_BASE_URL") or None
    if upstream is not None and not upstream.startswith(("http://", "https://")):
        raise UsageError(f"--upstream {upstream}: must be an http:// or https:// URL")
    return {
        "policy": os.path.abspath(args.policy),
        "upstream": upstream,
        "records": args.records,
        "log_prompts": args.log_prompts,
        "api_key_env": args.api_key_env,
        "client_tokens_env": args.client_tokens_env,
        "max_body_bytes": args.max_body_bytes,
        "upstream_timeout": args.upstream_timeout,
        "sticky_max": args.sticky_max,
        "poll": args.poll,
        "shadow_budget": budget,
        "pairs": os.path.abspath(args.pairs) if args.pairs else None,
    }


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
        shadow=shadow,
    )


def app_from_env() -> Any:
    """The app of one `--workers` process, from the settings the parent put in the env."""
    from ..server.app import create_app

    return create_app(config_from(json.loads(os.environ[CONFIG_ENV])))


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..server.app import create_app
    except ImportError as e:
        print(
            f"policyroute serve: the server needs the serve extra ({e.name} is missing): "
            "pip install 'policyroute[serve]'",
            file=sys.stderr,
        )
        return EXIT_FAIL
    settings = settings_from(args)
    policy = load_policy(args.policy)  # a broken policy is reported now, exit 1
    if args.workers > 1 and policy.sticky_window is not None:
        raise UsageError(
            "the policy declares sticky conversations, which are remembered per process: run "
            "one worker per replica and hash the conversation at the load balancer "
            "(docs/serve.md), not --workers"
        )
    upstream = settings["upstream"] or "https://api.anthropic.com"
    print(
        f"policyroute serve: policy {policy.name or '(unnamed)'} revision {policy.revision} "
        f"on http://{args.host}:{args.port} -> {upstream}",
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
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "access_log": args.access_log,
        "timeout_graceful_shutdown": args.shutdown_timeout,
        "server_header": False,
        # X-Forwarded-For rewriting is for access logs, which are off unless asked for.
        "proxy_headers": args.access_log,
        "lifespan": "on",
    }
    if args.workers > 1:
        os.environ[CONFIG_ENV] = json.dumps(settings)
        uvicorn.run(
            "policyroute.cli.serve:app_from_env", factory=True, workers=args.workers, **common
        )
        return EXIT_OK
    app = create_app(config_from(settings))
    server = uvicorn.Server(uvicorn.Config(app, **common))
    server.run()
    return EXIT_OK if server.started else EXIT_FAIL
