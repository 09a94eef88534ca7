"""What a regex cannot match without: literals found by the phrase scan, so a regex runs only
when it can match.

`required_literals(pattern)` returns alternatives one of which occurs (as a substring,
ignoring case) in every text the regex matches, or None when no useful set is known. The
pattern is read with Python's own regex parser; RE2 and Python agree on what a literal is
for every pattern that both accept without warnings, and anything else (a parse error, a
warning such as a nested set, an RE2-only construct) gives None, which only means the regex
always runs. Literals are split at white space (the scan folds white-space runs) and kept
only when ASCII, where case folding is the same for RE2's `(?i)` and for Python's casefold.
"""

from __future__ import annotations

import warnings

# re._parser is the parser behind `re` itself (Python 3.11+: the old sre_parse).
from re import _constants as sre
from re import _parser as sre_parse
from typing import Any

# Shorter literals occur too often to save anything.
MIN_LITERAL = 3

Alternatives = tuple[str, ...]


def required_literals(pattern: str) -> Alternatives | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            parsed = sre_parse.parse(pattern)
    except Exception:  # any doubt: no prefilter
        return None
    best = _required(parsed)
    if best is None or _score(best) < MIN_LITERAL:
        return None
    return best


def _score(alts: Alternatives) -> int:
    return min(len(a) for a in alts)


def _pieces(run: list[str]) -> Alternatives | None:
    """The longest white-space-free ASCII piece of a literal run, as a one-way alternative."""
    text = "".join(run)
    pieces = [p for p in text.split() if p.isascii()]
    if not pieces:
        return None
    return (max(pieces, key=len),)


def _required(seq: Any) -> Alternatives | None:
    candidates: list[Alternatives] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            got = _pieces(run)
            if got is not None:
                candidates.append(got)
            run.clear()

    for op, av in seq:
        if op is sre.LITERAL:
            run.append(chr(av))
            continue
        flush()
        sub: Alternatives | None = None
        if op is sre.SUBPATTERN:
            sub = _required(av[-1])
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            low, _high, body = av
            if low >= 1:
                sub = _required(body)
        elif op is sre.ATOMIC_GROUP:
            sub = _required(av)
        elif op is sre.BRANCH:
            alts = [_required(branch) for branch in av[1]]
            if alts and all(a is not None for a in alts):
                sub = tuple(sorted({x for a in alts if a is not None for x in a}))
        if sub is not None:
            candidates.append(sub)
    flush()
    if not candidates:
        return None
    return max(candidates, key=_score)


__all__ = ["required_literals"]
