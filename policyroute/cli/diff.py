"""`policyroute diff OLD NEW`: the regions of requests two policies route differently.

Exit codes: 0 equivalent, 1 differences or policy errors, 2 usage errors. With --traffic the
change is measured on real traffic instead (cli/replay.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from .common import EXIT_FAIL, EXIT_OK, add_format, add_quiet, load_policy, plural

if TYPE_CHECKING:
    from ..analysis import Difference
    from ..policy import Policy


def _describe_difference(d: Difference) -> str:
    from .route import printable

    lines = [printable(d.describe())]
    if d.witness is not None:
        lines.append("  witness: " + json.dumps(d.witness))
    else:
        lines.append("  (no concrete request found for this region)")
    return "\n".join(lines)


def diff_report(old: Policy, new: Policy, fmt: str, quiet: bool = False) -> int:
    """Print the regions two loaded policies route differently; the exit code. Commands that
    build on `diff` (a traffic-weighted diff) reuse this for the plain part."""
    from ..analysis import AnalysisTooLarge, diff

    try:
        found = diff(old, new)
    except AnalysisTooLarge as e:
        print(f"policyroute diff: the policies are too large to compare: {e}", file=sys.stderr)
        return EXIT_FAIL
    if fmt == "json":
        print(json.dumps([d.to_json() for d in found], indent=2))
    else:
        for d in found:
            print(_describe_difference(d))
        if found and not quiet:  # equivalent policies: nothing at all, exit 0
            print(f"{plural(len(found), 'region')} route differently")
    return EXIT_FAIL if found else EXIT_OK


def run_diff(args: argparse.Namespace) -> int:
    from .replay import impact_requested, run_impact

    if impact_requested(args):  # the change measured on real traffic: cli/replay.py
        args.json = args.format == "json"  # the name cli/replay.py reads
        return run_impact(args)
    old = load_policy(args.old)
    new = load_policy(args.new)
    return diff_report(old, new, args.format, args.quiet)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("diff", help="requests two policies route to different tiers")
    p.add_argument("old", metavar="OLD")
    p.add_argument("new", metavar="NEW")
    add_format(p)
    add_quiet(p)
    from .replay import add_impact_flags

    add_impact_flags(p)
    p.set_defaults(func=run_diff)
