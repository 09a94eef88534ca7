"""Which phrases stand inside which others, found without comparing every pair.

Phrase q stands in phrase p (`contains_at_boundaries(p, q)`) when q occurs in p with a word
boundary on each side. Such a q starts where p's previous character is not a word
character and ends where p's next one is not, so cutting both into tokens (a run of word
characters, or one other character) lines q up with a run of whole tokens of p. Every
phrase's tokens go into one trie; each phrase is then walked from each of its starts at a
boundary, as deep as the trie follows, and each phrase ending there at a boundary is a pair.
The work is the length of the phrases plus the depth of those walks, not the square of the
number of phrases, and is capped: past `budget` steps the caller gets None (the analysis
then declines the policy rather than running for minutes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..compiler.features import is_word_char

# A word character is what `features.is_word_char` says: `str.isalnum()` or `_`, which is
# exactly what `\w` matches in a str pattern.
_TOKEN = re.compile(r"\w+|\W", re.UNICODE)

# Steps (trie edges followed) allowed in one call; real policies need a few per phrase.
DEFAULT_BUDGET = 2_000_000
# Pairs returned at most: each becomes a constraint of the analysis.
MAX_PAIRS = 10_000


def containment_pairs(
    texts: Sequence[str], budget: int = DEFAULT_BUDGET
) -> list[tuple[int, int]] | None:
    """Pairs (i, j), i != j, with texts[j] standing in texts[i] between word boundaries.

    Texts must be distinct. None when finding them would take more than `budget` steps, or
    when there are more than MAX_PAIRS.
    """
    token_ids: dict[str, int] = {}
    word: list[bool] = []
    tokenized: list[list[int]] = []
    for text in texts:
        ids = []
        for tok in _TOKEN.findall(text):
            tid = token_ids.get(tok)
            if tid is None:
                tid = token_ids[tok] = len(word)
                word.append(tok[0].isalnum() or tok[0] == "_")
            ids.append(tid)
        tokenized.append(ids)
    # The trie: node 0 is the root; edges in one dict keyed by (node, token).
    edges: dict[tuple[int, int], int] = {}
    ends: dict[int, int] = {}  # node -> index of the text ending there
    for index, ids in enumerate(tokenized):
        node = 0
        for tid in ids:
            nxt = edges.get((node, tid))
            if nxt is None:
                nxt = edges[(node, tid)] = len(edges) + 1
            node = nxt
        ends[node] = index
    pairs: set[tuple[int, int]] = set()
    steps = 0
    for i, ids in enumerate(tokenized):
        n = len(ids)
        for start in range(n):
            if start > 0 and word[ids[start - 1]]:
                continue  # q would begin right after a word character of p
            node = 0
            for pos in range(start, n):
                steps += 1
                nxt = edges.get((node, ids[pos]))
                if nxt is None:
                    break
                node = nxt
                j = ends.get(node)
                if j is not None and j != i and (pos + 1 == n or not word[ids[pos + 1]]):
                    pairs.add((i, j))
            if steps > budget or len(pairs) > MAX_PAIRS:
                return None
    return sorted(pairs)


def contains_at_boundaries(p: str, q: str) -> bool:
    """Whether q stands in p between word boundaries, so any text containing p contains q."""
    start = p.find(q)
    while start != -1:
        end = start + len(q)
        # The matcher asks only that the characters around a match are not word characters
        # (or the text's edge); at p's own edges the text around p provides that.
        if (start == 0 or not is_word_char(p[start - 1])) and (
            end == len(p) or not is_word_char(p[end])
        ):
            return True
        start = p.find(q, start + 1)
    return False
