"""One pass over a text finds every phrase of a policy: the contract's phrase test at scale.

The contract: a phrase matches case-insensitively (Unicode case folding) where it stands
between word boundaries (start or end of text, or a character that is not a letter, digit or
`_`), and a space in a phrase matches any run of white space.

How: the text is case-folded (ASCII text by the fast ASCII path, which is the same mapping),
encoded as UTF-8, and, when the policy has a phrase of several words, each white-space
character read as a space; runs of spaces are collapsed only when a phrase could span one
(see `PhraseMatcher`). One
byte-wise double-array Aho-Corasick automaton (daachorse) then reports every occurrence of
every phrase, overlapping ones included, and a phrase counts when one of its occurrences has a
boundary on both sides. A boundary is looked up in a 128-entry table for ASCII bytes and by
decoding the neighbouring character only when it is not ASCII, so ASCII text pays nothing for
Unicode. UTF-8 is self-synchronizing, so an occurrence of a whole-character pattern always
starts and ends on character boundaries.

The same automaton also finds *literals*: strings a regex cannot match without (see
`regexes.required_literals`), reported without any boundary test, so a regex whose literal is
absent is never run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import daachorse

_EMPTY: frozenset[int] = frozenset()
ANCHOR = -2  # a pattern that is the first words of a phrase of several words, and a space
ANCHOR_WORDS = 16
_RUN = re.compile(b"  +")

# 1 for the ASCII bytes that are word characters: letters, digits, `_`.
_WORD = bytes(1 if (chr(b).isalnum() or b == 0x5F) else 0 for b in range(128))
# str.split() and re's \s also count \x1c-\x1f as white space; bytes.split() does not.
_SEPARATORS_TO_SPACE = bytes.maketrans(b"\x1c\x1d\x1e\x1f", b"    ")


def normalize_text(text: str) -> str:
    """Case-fold and fold each run of white space to one space: the form phrases match in."""
    folded = text.casefold()
    if folded.isprintable() and "  " not in folded:
        return folded
    return " ".join(folded.split())


def normalize_phrase(phrase: str) -> str:
    return normalize_text(phrase).strip()


def is_word_char(c: str) -> bool:
    """The contract's word character: a letter, a digit or `_`. Anything else is a boundary."""
    return c.isalnum() or c == "_"


# Every white-space character the contract knows (str.isspace), as the automaton reads it:
# ASCII ones by a translation table that also lowers ASCII letters (one pass over the bytes),
# the others found by the folding automaton below.
_SPACES = b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"
_ASCII_FOLD_SPACE = bytes(0x20 if b in _SPACES else b for b in bytes(range(256)).lower())

# Case folding of non-ASCII text, built on first use (about 20 ms): an automaton that finds
# every character whose case folding is not itself, and every non-ASCII white-space
# character, with what each becomes. str.casefold() costs about 5 ns a character; encoding,
# one translation and one automaton pass cost a third of that, as most characters of most
# texts stay as they are. Folding is per character (no context), and UTF-8 never finds a
# character inside another, so replacing each one found is str.casefold(). Every cased
# script lies below U+20000; white space is all in the BMP.
_Folds = tuple[daachorse.DoubleArrayAhoCorasick, list[bytes], list[bytes]]
_FOLDS: _Folds | None = None


def _folds() -> _Folds:
    """(automaton, what each pattern becomes, the same with white space as a space)."""
    global _FOLDS
    if _FOLDS is None:
        cased = [c for c in map(chr, range(0x80, 0x20000)) if c.casefold() != c]
        spaces = [c for c in map(chr, range(0x80, 0x10000)) if c.isspace()]
        automaton = daachorse.DoubleArrayAhoCorasick([c.encode() for c in cased + spaces])
        folded = [c.casefold().encode() for c in cased]
        _FOLDS = (automaton, folded + [c.encode() for c in spaces], folded + [b" "] * len(spaces))
    return _FOLDS


def fold(text: str, spaces: bool) -> bytes:
    """The UTF-8 bytes the automaton reads: case-folded, and when `spaces`, every white-space
    character as one space (runs stay: see PhraseMatcher)."""
    if text.isascii():
        if spaces:
            return text.encode("ascii").translate(_ASCII_FOLD_SPACE)
        return text.encode("ascii").lower()
    # A lone surrogate is kept (as its 3-byte form): it is no phrase's and not a word character.
    data = text.encode("utf-8", "surrogatepass")
    data = data.translate(_ASCII_FOLD_SPACE) if spaces else data.lower()
    automaton, kept, as_space = _folds()
    hits = automaton.find(data)
    if not hits:
        return data
    replace = as_space if spaces else kept
    parts = []
    at = 0
    for start, end, k in hits:
        parts.append(data[at:start])
        parts.append(replace[k])
        at = end
    parts.append(data[at:])
    return b"".join(parts)


def _word_before(data: bytes, i: int) -> bool:
    b = data[i - 1]
    if b < 0x80:
        return _WORD[b] == 1
    j = i - 1
    while j > 0 and data[j] & 0xC0 == 0x80:
        j -= 1
    return data[j:i].decode("utf-8", "surrogatepass").isalnum()


def _word_at(data: bytes, i: int) -> bool:
    b = data[i]
    if b < 0x80:
        return _WORD[b] == 1
    n = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
    return data[i : i + n].decode("utf-8", "surrogatepass").isalnum()


class PhraseMatcher:
    """Every phrase (and regex literal) of a policy in one automaton; one pass finds them all.

    `find(text)` returns the ids of the phrases that stand in `text` between word boundaries;
    `scan(text)` returns those and the ids of the literals that occur anywhere in it.
    """

    __slots__ = (
        "_automaton",
        "_collapse",
        "_literal_of",
        "_phrase_of",
        "_spaces",
        "_spanning",
        "literals",
        "phrases",
    )

    def __init__(self, phrases: Iterable[str], literals: Iterable[str] = ()) -> None:
        self.phrases: list[str] = []
        self.literals: list[str] = []
        patterns: dict[bytes, int] = {}
        phrase_of: list[int] = []
        literal_of: list[tuple[int, ...]] = []
        seen: set[str] = set()
        for phrase in phrases:
            norm = normalize_phrase(phrase)
            if not norm or norm in seen:
                continue
            seen.add(norm)
            pid = len(self.phrases)
            self.phrases.append(norm)
            patterns[norm.encode("utf-8", "surrogatepass")] = len(phrase_of)
            phrase_of.append(pid)
            literal_of.append(())
        for literal in literals:
            lid = len(self.literals)
            self.literals.append(literal)
            key = literal.casefold().encode("utf-8", "surrogatepass")
            k = patterns.get(key)
            if k is None:
                k = patterns[key] = len(phrase_of)
                phrase_of.append(-1)
                literal_of.append(())
            literal_of[k] = (*literal_of[k], lid)
        # A phrase of several words is found as written, with single spaces. Each of its
        # prefixes that ends in a space is an *anchor*: where an anchor stands before a
        # second space (a run of white space), the phrases it begins are tried there with a
        # regex that lets each space be a run. Texts without runs never pay for it.
        # A phrase of more than ANCHOR_WORDS words has no anchors (they would grow with the
        # square of its length); a text with a run is then collapsed before the scan.
        spanning: dict[int, list[tuple[int, re.Pattern[bytes]]]] = {}
        self._collapse = False
        for pid, p in enumerate(self.phrases):
            if " " not in p:
                continue
            words = p.encode("utf-8", "surrogatepass").split(b" ")
            if len(words) > ANCHOR_WORDS:
                self._collapse = True
                continue
            regex = re.compile(b" +".join(re.escape(w) for w in words))
            for cut in range(1, len(words)):
                key = b" ".join(words[:cut]) + b" "
                k = patterns.get(key)
                if k is None:
                    k = patterns[key] = len(phrase_of)
                    phrase_of.append(ANCHOR)
                    literal_of.append(())
                spanning.setdefault(k, []).append((pid, regex))
        self._spanning = spanning
        self._phrase_of = phrase_of
        self._literal_of = literal_of
        self._spaces = any(" " in p for p in self.phrases)
        self._automaton = daachorse.DoubleArrayAhoCorasick(list(patterns)) if patterns else None

    def _span(self, data: bytes, start: int, k: int, found: set[int]) -> None:
        """The phrases anchor `k` begins, tried at `start` with runs of spaces allowed."""
        if start > 0 and _word_before(data, start):
            return
        for pid, regex in self._spanning[k]:
            if pid not in found:
                m = regex.match(data, start)
                if m is not None and (m.end() == len(data) or not _word_at(data, m.end())):
                    found.add(pid)

    def find(self, text: str) -> frozenset[int]:
        return self.scan(text)[0]

    def scan(self, text: str) -> tuple[frozenset[int], frozenset[int]]:
        automaton = self._automaton
        if automaton is None or not text:
            return _EMPTY, _EMPTY
        data = fold(text, self._spaces)
        if self._collapse and b"  " in data:
            data = _RUN.sub(b" ", data)
        hits = automaton.find_overlapping(data)
        if not hits:
            return _EMPTY, _EMPTY
        phrase_of, literal_of = self._phrase_of, self._literal_of
        n = len(data)
        found: set[int] = set()
        literals: set[int] = set()
        for start, end, k in hits:
            pid = phrase_of[k]
            if pid == ANCHOR:
                if end < n and data[end] == 0x20:
                    self._span(data, start, k, found)
                continue
            if (
                pid >= 0
                and pid not in found
                and (start == 0 or not _word_before(data, start))
                and (end == n or not _word_at(data, end))
            ):
                found.add(pid)
            lids = literal_of[k]
            if lids:
                literals.update(lids)
        return (frozenset(found) if found else _EMPTY), (
            frozenset(literals) if literals else _EMPTY
        )


__all__ = ["PhraseMatcher", "fold", "is_word_char", "normalize_phrase", "normalize_text"]
