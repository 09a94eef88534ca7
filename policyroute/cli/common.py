"""What the `policyroute` commands share: exit codes, conventions, policy files and requests.

Exit codes: 0 ok, 1 policy errors or failures, 2 usage errors. Every message the command
writes about a problem starts `policyroute COMMAND: `. `-` names stdin wherever a command
reads policies (check, fmt, test) or a request (--request). Colour only on a terminal, and
never when NO_COLOR is set (https://no-color.org).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn, TextIO

from ..compiler.loader import Loaded, load_path, load_text
from ..policy import Policy, build
from ..request import Request, RequestError, attributes, confidence_value

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
STDIN = Path("-")
STDIN_NAME = "<stdin>"


class UsageError(Exception):
    """A problem with how the command was called (flags, paths, request input): exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def say_error(command: str, message: str) -> None:
    """The one prefix style of every problem the command reports itself."""
    print(f"policyroute {command}: {message}", file=sys.stderr, flush=True)


def use_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


# -- flags every printing command shares ------------------------------------------------------


def add_format(p: argparse.ArgumentParser, *extra: str) -> None:
    """`--format human|json[|...]`, with `--json` kept as an alias of `--format json`."""
    p.add_argument(
        "--format", choices=("human", "json", *extra), default="human", help="output format"
    )
    p.add_argument(
        "--json", dest="format", action="store_const", const="json", help="same as --format json"
    )


def add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print only problems: no summary, nothing for what is fine",
    )


# -- policy files ------------------------------------------------------------------------------


def policy_files(paths: Iterable[str], stdin: bool = True) -> list[Path]:
    """Files named, and every `.route` file below folders named; each file once, in the order
    first named. `-` is stdin (`STDIN`)."""
    out: list[Path] = []
    seen: set[Path] = set()
    named = list(paths)
    for raw in named:
        if raw == "-":
            if not stdin:
                raise UsageError("- (stdin) is not accepted here")
            if STDIN not in seen:
                seen.add(STDIN)
                out.append(STDIN)
            continue
        p = Path(raw)
        if p.is_dir():
            found = sorted(p.rglob("*.route"))
        elif p.exists():
            found = [p]
        else:
            raise UsageError(f"{raw}: no such file or folder")
        for f in found:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                out.append(f)
    if not out:
        raise UsageError("no .route files found in " + ", ".join(named))
    return out


_stdin_text: str | None = None


def stdin_text() -> str:
    """Stdin, read once (a command may need it twice: to check and to report)."""
    global _stdin_text
    if _stdin_text is None:
        _stdin_text = sys.stdin.read()
    return _stdin_text


def load_input(path: Path) -> Loaded:
    """A policy file, or stdin (imports then resolve against the current folder)."""
    if path == STDIN:
        return load_text(stdin_text(), STDIN_NAME, Path.cwd())
    return load_path(path)


def display(path: Path) -> str:
    return STDIN_NAME if path == STDIN else str(path)


def load_policy(path: str) -> Policy:
    p = Path(path)
    if path == "-":
        return build(load_input(STDIN))
    if not p.exists():
        raise UsageError(f"{path}: no such file")
    if not p.is_file():
        raise UsageError(f"{path}: not a file")
    return build(load_path(p))


# -- one request from flags ---------------------------------------------------------------------

# What `--attr` accepts and how it parses each value: the attribute registry's.


def attr_help() -> str:
    return ", ".join([*attributes.spelled(), "CLASSIFIER.label", "CLASSIFIER.confidence"])


_TRUE = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def parse_attr(item: str) -> tuple[str, Any]:
    """`KEY=VALUE` of `--attr`, the value read as the attribute's type."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"--attr takes KEY=VALUE, got {item!r}")
    where = f"--attr {key}"
    info = attributes.ATTRIBUTES.get(key)
    if info is not None and info.computed_from is not None:
        raise UsageError(
            f"{where}: computed from the {info.computed_from} (and system prompt); set those"
        )
    if info is not None and info.type in (attributes.TEXT, attributes.STRING):
        return key, raw
    if info is not None and info.type == attributes.INT:
        try:
            n = int(raw.replace("_", ""))
        except ValueError:
            raise UsageError(f"{where}: must be a whole number, got {raw!r}") from None
        if n < 0:
            raise UsageError(f"{where}: must be 0 or more, got {n}")
        return key, n
    if info is not None and info.type == attributes.BOOL:
        value = _TRUE.get(raw.strip().lower())
        if value is None:
            raise UsageError(f"{where}: must be true or false, got {raw!r}")
        return key, value
    if info is not None and info.type == attributes.NUMBER:
        try:
            return key, float(raw.replace("_", ""))
        except ValueError:
            raise UsageError(f"{where}: must be a number, got {raw!r}") from None
    if attributes.family_of(key) is not None:
        return key, _scalar(raw)
    head, dot, field = key.partition(".")
    if dot and field == "label" and head:
        return key, raw
    if dot and field == "confidence" and head:
        try:
            return key, confidence_value(where, float(raw))
        except RequestError as e:
            raise UsageError(str(e)) from None
        except ValueError:
            raise UsageError(f"{where}: must be a number in [0, 1], got {raw!r}") from None
    raise UsageError(f"{where}: not an attribute; the attributes are {attr_help()}")


def _scalar(raw: str) -> Any:
    """A metadata value: a JSON number or boolean if it reads as one, else the text."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, (int, float, bool)) else raw


class RouteFlags:
    """The routing attributes a command line gives: the `route` object (as the runtime's
    `route=` argument takes it) and the attributes that live in the messages."""

    def __init__(self) -> None:
        self.route: dict[str, Any] = {}
        self.message: dict[str, Any] = {}

    def put(self, dotted: str, value: Any) -> None:
        """Attributes the registry places in the `route` object go there (nested as it
        nests them); the rest live in the messages, as Request keywords."""
        head, _, field = dotted.partition(".")
        info = attributes.lookup(dotted)
        if info is not None and info.route is None and info.field is not None:
            self.message[info.field] = value
        elif info is not None and info.route is not None:
            *outer, last = info.route
            where = self.route
            for part in outer:
                where = where.setdefault(part, {})
            where[last] = value
        elif field in ("label", "confidence"):
            answer = self.route.setdefault("classifiers", {}).setdefault(head, {})
            answer[field] = value
        else:
            self.route[dotted] = value


def route_flags(args: argparse.Namespace) -> RouteFlags:
    flags = RouteFlags()
    for info in attributes.settable():
        value = getattr(args, info.field or "", None) if info.flag else None
        if value is not None:
            flags.put(info.name, value)
    for item in getattr(args, "attr", None) or []:
        flags.put(*parse_attr(item))
    return flags


def route_object(args: argparse.Namespace) -> dict[str, Any]:
    """The `route` attributes from flags, in the shape of the runtime's `route=` argument."""
    return route_flags(args).route


def merge_route(given: Any, flags: dict[str, Any]) -> dict[str, Any]:
    """A request JSON's `route` object with the command line's attributes laid over it."""
    merged = dict(given) if isinstance(given, dict) else {}
    for k, v in flags.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            if k == "classifiers":
                merged[k] = {
                    name: {**_answer_obj(merged[k].get(name)), **a} for name, a in v.items()
                } | {n: a for n, a in merged[k].items() if n not in v}
            else:
                merged[k] = {**merged[k], **v}
        else:
            merged[k] = v
    return merged


def _answer_obj(a: Any) -> dict[str, Any]:
    if isinstance(a, str):
        return {"label": a}
    return dict(a) if isinstance(a, dict) else {}


def read_json(source: str) -> tuple[Any, str]:
    """The JSON object of `--request FILE|-`, and its name for messages."""
    where = STDIN_NAME if source == "-" else source
    try:
        raw = stdin_text() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise UsageError(f"{where}: cannot read: {reason}") from None
    try:
        return json.loads(raw), where
    except json.JSONDecodeError as e:
        raise UsageError(f"{where}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None


def read_request(args: argparse.Namespace, policy: Policy | None = None) -> Request:
    """The request a `route`-style command describes, from --prompt or --request, with the
    other flags laid over it. With `policy`, classifier answers are checked against it."""
    flags = route_flags(args)
    where = "--attr"
    try:
        if args.request is not None:
            obj, where = read_json(args.request)
            if not isinstance(obj, dict):
                raise UsageError(f"{where}: a request must be a JSON object")
            if flags.route:
                obj = {**obj, "route": merge_route(obj.get("route"), flags.route)}
            request = Request.from_json(obj)
        else:
            params: dict[str, Any] = {"messages": [{"role": "user", "content": args.prompt}]}
            request = Request.from_anthropic(params, **flags.route)
        if flags.message:
            request = request.replace(**flags.message)
    except RequestError as e:
        raise UsageError(f"{where}: {e}" if args.request is not None else str(e)) from None
    if policy is not None:
        check_answers(policy, request)
    return request


def check_answers(policy: Policy, request: Request) -> None:
    """Given classifier answers must name a classifier of the policy and one of its labels."""
    for name, answer in request.classifiers.items():
        spec = policy.classifiers.get(name)
        if spec is None:
            known = ", ".join(policy.classifiers) or "none"
            raise UsageError(f"no classifier '{name}' in the policy; its classifiers: {known}")
        if answer.label is not None and answer.label not in spec.labels:
            raise UsageError(
                f"'{answer.label}' is not a label of classifier '{name}'; "
                f"its labels: {', '.join(spec.labels)}"
            )


def add_route_flags(p: argparse.ArgumentParser) -> None:
    """The request flags shared by `route` and `ask`."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="the user's message")
    src.add_argument(
        "--request",
        metavar="FILE",
        help="Messages API JSON with a 'route' object (as `explain` prints); - for stdin",
    )
    for info in attributes.settable():
        if not info.flag:
            continue
        flag = "--" + info.name.replace(".", "-").replace("_", "-")  # --user-tier: user.tier
        if info.type == attributes.INT:
            p.add_argument(flag, dest=info.field, type=int)
        else:
            p.add_argument(flag, dest=info.field, help=info.doc if info.type == "text" else None)
    p.add_argument(
        "--attr",
        action="append",
        metavar="KEY=VALUE",
        help=f"any routing attribute (repeatable): {attr_help()}; "
        "e.g. files=6, metadata.priority=high, urgency.label=high",
    )
