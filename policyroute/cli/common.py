"""What the `policyroute` commands share: exit codes, usage errors, policy files and requests.

Exit codes: 0 ok, 1 policy errors or failures, 2 usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

from ..compiler.loader import load_path
from ..policy import Policy, build
from ..request import Request, RequestError

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A problem with how the command was called (flags, request input): exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def policy_files(paths: Iterable[str]) -> list[Path]:
    """Files named, and every `.route` file below folders named."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(p.rglob("*.route")))
        elif p.exists():
            out.append(p)
        else:
            raise UsageError(f"{raw}: no such file or folder")
    if not out:
        raise UsageError("no .route files found in " + ", ".join(paths))
    return out


def load_policy(path: str) -> Policy:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{path}: no such file")
    return build(load_path(p))


def parse_attr(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise UsageError(f"--attr takes KEY=VALUE, got {item!r}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def route_object(args: argparse.Namespace) -> dict[str, Any]:
    """The `route` attributes from flags, in the shape of the runtime's `route=` argument."""
    route: dict[str, Any] = {}

    def put(dotted: str, value: Any) -> None:
        parts = dotted.split(".")
        if parts[0] in ("user", "metadata") and len(parts) == 2:
            route.setdefault(parts[0], {})[parts[1]] = value
        elif len(parts) == 1:
            route[dotted] = value
        else:
            raise UsageError(
                f"--attr {dotted}: attributes are task, domain, files, "
                "context_tokens, user.tier, user.id or metadata.KEY"
            )

    for flag, key in (
        ("task", "task"),
        ("domain", "domain"),
        ("user_tier", "user.tier"),
        ("user_id", "user.id"),
        ("files", "files"),
        ("context_tokens", "context_tokens"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            put(key, value)
    for item in getattr(args, "attr", None) or []:
        put(*parse_attr(item))
    return route


def read_request(args: argparse.Namespace) -> Request:
    """The request a `route`-style command describes, from --prompt or --request."""
    route = route_object(args)
    try:
        if args.request is not None:
            if args.request == "-":
                raw = sys.stdin.read()
                where = "<stdin>"
            else:
                try:
                    raw = Path(args.request).read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as e:
                    raise UsageError(f"{args.request}: cannot read: {e}") from None
                where = args.request
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as e:
                raise UsageError(f"{where}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
            if isinstance(obj, dict) and route:
                merged = dict(obj.get("route") or {}) if isinstance(obj.get("route"), dict) else {}
                for k, v in route.items():
                    if isinstance(v, dict) and isinstance(merged.get(k), dict):
                        merged[k] = {**merged[k], **v}
                    else:
                        merged[k] = v
                obj = {**obj, "route": merged}
            try:
                return Request.from_json(obj)
            except RequestError as e:
                raise UsageError(f"{where}: {e}") from None
        params = {"messages": [{"role": "user", "content": args.prompt}]}
        if getattr(args, "system", None):
            params["system"] = args.system
        return Request.from_anthropic(params, **route)
    except RequestError as e:
        raise UsageError(str(e)) from None


def add_route_flags(p: argparse.ArgumentParser) -> None:
    """The request flags shared by `route` and `ask`."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="the user's message")
    src.add_argument(
        "--request", metavar="FILE", help="Messages API JSON with a 'route' object; - for stdin"
    )
    p.add_argument("--system", help="system prompt (with --prompt)")
    p.add_argument("--task")
    p.add_argument("--domain")
    p.add_argument("--user-tier", dest="user_tier")
    p.add_argument("--user-id", dest="user_id")
    p.add_argument("--files", type=int)
    p.add_argument("--context-tokens", dest="context_tokens", type=int)
    p.add_argument(
        "--attr",
        action="append",
        metavar="KEY=VALUE",
        help="any routing attribute, e.g. files=6 or metadata.priority=high (repeatable)",
    )
