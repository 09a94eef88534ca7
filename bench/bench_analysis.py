"""Lint and diff on a generated 1,000-rule policy.

    python bench/bench_analysis.py [RULES]

The policy mixes what real policies test: task and domain dispatch, length and file counts,
keyword sets (50 sets of 8 phrases), a few regexes and tools. The diff compares it with a
copy where one rule's tier and one threshold changed.
"""

from __future__ import annotations

import random
import sys
import time

import policyroute
from policyroute.analysis import diff, lint
from policyroute.analysis.reach import compute

TIERS = ("haiku", "sonnet", "opus")


def generate(n: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    out = [
        'tier haiku = "claude-haiku-4-5" { input 1 output 5 }',
        'tier sonnet = "claude-sonnet-4-6" { input 3 output 15 }',
        'tier opus = "claude-opus-4-7" { input 5 output 25 }',
    ]
    for k in range(50):
        phrases = ", ".join(f'"w{k}x{j} term{j}"' for j in range(8))
        out.append(f"keywords set{k} = [{phrases}]")
    for i in range(n):
        kind = rng.randrange(6)
        task = f"task{rng.randrange(40)}"
        if kind == 0:
            cond = f'task == "{task}" and length < {rng.choice([100, 300, 1000, 5000])}'
        elif kind == 1:
            cond = f"prompt contains any set{rng.randrange(50)}"
        elif kind == 2:
            cond = f'domain in ["d{rng.randrange(30)}", "d{rng.randrange(30)}"] and files > {rng.randrange(10)}'
        elif kind == 3:
            cond = f'task == "{task}" and prompt contains any set{rng.randrange(50)}'
        elif kind == 4:
            cond = f"prompt matches /id{rng.randrange(5)}-[0-9]+/ and not has_tools"
        else:
            cond = f'user.tier == "plan{rng.randrange(5)}" and context_tokens > {rng.randrange(1, 200)}k'
        out.append(f"rule r{i}: {cond} -> {rng.choice(TIERS)}")
    out.append("default -> sonnet")
    return "\n".join(out) + "\n"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    text = generate(n)
    t = time.perf_counter()
    policy = policyroute.loads(text)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    found = lint(policy)
    lint_s = time.perf_counter() - t
    reach = compute(policy)
    changed = text.replace("-> haiku\n", "-> opus\n", 1).replace("length < 300", "length < 250", 1)
    other = policyroute.loads(changed)
    t = time.perf_counter()
    regions = diff(policy, other)
    diff_s = time.perf_counter() - t
    t = time.perf_counter()
    same = diff(policy, policyroute.loads(text))
    same_s = time.perf_counter() - t
    print(f"rules:                 {n}")
    print(f"load (compile):        {load_s:.3f} s")
    print(
        f"lint:                  {lint_s:.3f} s ({len(found)} warnings, {reach.space.size()} MDD nodes)"
    )
    print(f"diff (changed copy):   {diff_s:.3f} s ({len(regions)} regions)")
    print(f"diff (identical copy): {same_s:.3f} s ({len(same)} regions)")


if __name__ == "__main__":
    main()
