"""The `policyroute` command. Exit codes: 0 ok, 1 policy errors or failures, 2 usage errors."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __name__ as _pkg
from .compiler.loader import load_path
from .policy import Policy, build
from .request import Request, RequestError
from .syntax.diagnostics import CODES, Diagnostic, PolicyError, render_human, sort_key
from .testing import describe_request, run_tests, uncovered_rules

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


def _analysis_lints(policy: Policy) -> list[Diagnostic]:
    from .analysis import lint

    return lint(policy)


# -- check --------------------------------------------------------------------------------


def _check_file(path: Path) -> tuple[list[Diagnostic], bool]:
    """Diagnostics of one file and whether it is a library (declarations to import)."""
    from .compiler.checker import check as check_statements

    loaded = load_path(path)
    if not loaded.statements and loaded.diagnostics:
        return loaded.diagnostics, False
    checked, found = check_statements(loaded.statements, loaded.imports_failed())
    diagnostics = [*loaded.diagnostics, *found]
    if checked.library:
        return diagnostics, True
    if not any(d.is_error for d in diagnostics):
        policy = build(loaded)
        diagnostics.extend(_analysis_lints(policy))
    return diagnostics, False


def _sarif(diagnostics: list[Diagnostic]) -> dict[str, Any]:
    used = sorted({d.code for d in diagnostics})
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "policyroute",
                        "rules": [
                            {
                                "id": code,
                                "shortDescription": {"text": CODES.get(code, code)},
                            }
                            for code in used
                        ],
                    }
                },
                "results": [_sarif_result(d) for d in sorted(diagnostics, key=sort_key)],
            }
        ],
    }


def _sarif_result(d: Diagnostic) -> dict[str, Any]:
    where = d.to_json()
    return {
        "ruleId": d.code,
        "level": d.severity,
        "message": {"text": d.message + (f" ({d.hint})" if d.hint else "")},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": d.source.name},
                    "region": {
                        "startLine": where["line"],
                        "startColumn": where["column"],
                        "endLine": where["end_line"],
                        "endColumn": where["end_column"],
                    },
                }
            }
        ],
    }


def cmd_check(args: argparse.Namespace) -> int:
    files = policy_files(args.paths)
    everything: list[Diagnostic] = []
    lines: list[str] = []
    for path in files:
        diagnostics, library = _check_file(path)
        everything.extend(diagnostics)
        errors = sum(d.is_error for d in diagnostics)
        warnings = len(diagnostics) - errors
        status = "error" if errors else "ok"
        what = " (declarations for import)" if library and not errors else ""
        lines.append(f"{path}: {status}{what}, {errors} error(s), {warnings} warning(s)")
    failed = any(d.is_error for d in everything) or (
        args.strict and any(not d.is_error for d in everything)
    )
    if args.format == "json":
        print(json.dumps([d.to_json() for d in sorted(everything, key=sort_key)], indent=2))
    elif args.format == "sarif":
        print(json.dumps(_sarif(everything), indent=2))
    else:
        if everything:
            print(render_human(everything), file=sys.stderr)
            print(file=sys.stderr)
        print("\n".join(lines))
    return EXIT_FAIL if failed else EXIT_OK


# -- route --------------------------------------------------------------------------------


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


def _counterfactual(policy: Policy, request: Request, decision: Any) -> list[str]:
    from .analysis import counterfactual

    return counterfactual(policy, request, decision)


def cmd_route(args: argparse.Namespace) -> int:
    request = read_request(args)
    policy = load_policy(args.policy)
    decision = policy.decide(request, explain=args.explain)
    if args.json:
        out = decision.to_dict()
        if args.explain:
            out["counterfactual"] = _counterfactual(policy, request, decision)
        print(json.dumps(out, indent=2, default=str))
        return EXIT_OK
    info = policy.rules[policy.rule_index(decision.rule)]
    print(f"tier:       {decision.tier} ({decision.model})")
    print(f"rule:       {decision.rule} ({info.file}:{info.line})")
    print(
        f"max_tokens: {decision.max_tokens if decision.max_tokens is not None else '(model default)'}"
    )
    ladder = " -> ".join(t.name for t in decision.ladder) or "(no escalation)"
    print(f"ladder:     {ladder}")
    if args.explain and decision.explanation is not None:
        print("tested:")
        for step in decision.explanation:
            print(f"  {step.test}: {json.dumps(step.value, default=str)} ({step.outcome})")
        for line in _counterfactual(policy, request, decision):
            print(f"  {line}")
    return EXIT_OK


# -- test ---------------------------------------------------------------------------------


def cmd_test(args: argparse.Namespace) -> int:
    files = policy_files(args.paths)
    passed = failed = 0
    load_errors = False
    covered_total = rules_total = 0
    report: list[dict[str, Any]] = []
    for path in files:
        try:
            policy = build(load_path(path))
        except PolicyError as e:
            if any(d.code == "E107" and "imported" in d.message for d in e.diagnostics):
                continue  # declarations for import: nothing to test
            print(render_human(e.diagnostics), file=sys.stderr)
            load_errors = True
            continue
        results = run_tests(policy)
        for r in results:
            report.append(r.to_json())
            if r.passed:
                passed += 1
                if args.verbose and args.format == "human":
                    print(f"PASS {r.location()} {r.test.name}")
                continue
            failed += 1
            if args.format == "human":
                expected = r.test.tier + (f" by {r.test.by_rule}" if r.test.by_rule else "")
                print(f"FAIL {r.location()} {r.test.name}")
                print(f"  request:  {describe_request(r.test)}")
                print(f"  expected: {expected}")
                print(f"  actual:   {r.decision.tier} by {r.decision.rule}")
        uncovered = uncovered_rules(policy, results)
        rules_total += len(policy.rules)
        covered_total += len(policy.rules) - len(uncovered)
        if args.coverage and args.format == "human":
            pct = 100.0 * (len(policy.rules) - len(uncovered)) / len(policy.rules)
            print(f"coverage {path}: {pct:.0f}% of {len(policy.rules)} rules")
            for name in uncovered:
                info = policy.rules[policy.rule_index(name)]
                print(f"  not exercised: {name} ({info.file}:{info.line})")
    coverage = 100.0 * covered_total / rules_total if rules_total else 100.0
    if args.format == "json":
        print(
            json.dumps(
                {"passed": passed, "failed": failed, "coverage": coverage, "tests": report},
                indent=2,
            )
        )
    else:
        print(f"{passed} passed, {failed} failed")
        if args.coverage:
            print(f"rule coverage: {coverage:.1f}%")
    if args.fail_under is not None and coverage < args.fail_under:
        print(f"coverage {coverage:.1f}% is under --fail-under {args.fail_under}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_FAIL if failed or load_errors else EXIT_OK


# -- wiring -------------------------------------------------------------------------------


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


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="policyroute", description="Routing policy for Claude, as text.")
    parser.add_argument("--version", action="version", version=f"{_pkg} 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("check", help="parse, type-check and lint policies")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--format", choices=("human", "json", "sarif"), default="human")
    p.add_argument("--strict", action="store_true", help="warnings fail the check too")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("route", help="decide one request and show why")
    p.add_argument("policy", metavar="POLICY")
    add_route_flags(p)
    p.add_argument("--explain", action="store_true", help="show each test made and its value")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_route)

    p = sub.add_parser("test", help="run the inline tests of policies")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--coverage", action="store_true", help="list rules no test exercises")
    p.add_argument("--fail-under", type=float, metavar="PCT", dest="fail_under")
    p.add_argument("--format", choices=("human", "json"), default="human")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=cmd_test)

    for module in ("tooling_cli", "watch_cli", "runtime.ask"):
        _extend(sub, module)
    return parser


def _extend(sub: Any, module: str) -> None:
    import importlib

    mod = importlib.import_module(f"{_pkg}.{module}")
    hook = getattr(mod, "add_parsers", None) or mod.add_parser
    hook(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as e:
        print(f"policyroute {args.command}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except PolicyError as e:
        print(render_human(e.diagnostics), file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
