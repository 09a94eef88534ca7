"""Limits on a policy's size and shape.

Each is far above what a real policy needs (the shipped policies stay under a hundredth of
every one) and is met early by input built to exhaust the process: every stage after the
checker (the phrase automaton, the decision diagram, the analysis) may then assume a
bounded policy, and the hot-reload thread, which compiles whatever lands on disk, stays
responsive. Exceeding one is an error (E008, E006 for nesting, E007 for numbers) at the
place where the limit is crossed; docs/diagnostics.md lists them.
"""

from __future__ import annotations

# Bytes of one policy file, and of a policy with everything it imports.
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_POLICY_BYTES = 8 * 1024 * 1024
# Files in one policy (the main file and every file it imports), and import statements in
# one file.
MAX_FILES = 128
MAX_IMPORTS_PER_FILE = 64
# Nesting of `not`, `and`, `or` and brackets in one condition.
MAX_NESTING = 64
# Tests (comparisons, contains, matches, ...) in one rule's condition, and in all of them.
MAX_CONDITION_TESTS = 256
MAX_POLICY_CONDITION_TESTS = 10_000
# Declarations of a whole policy, imports included.
MAX_RULES = 1_000
MAX_TIERS = 64
MAX_KEYWORD_SETS = 2_000
MAX_CLASSIFIERS = 64
MAX_LABELS = 256
MAX_TESTS = 10_000
# Keyword phrases (in keyword sets and in conditions) of a whole policy, and characters in
# one phrase.
MAX_PHRASES = 50_000
MAX_PHRASE_CHARS = 256
# Values in one `in [...]` list, and in all of them.
MAX_LIST_VALUES = 10_000
MAX_VALUES = 50_000
# Digits of a number literal: before the decimal point, and in all.
MAX_INTEGER_DIGITS = 15
MAX_NUMBER_DIGITS = 30
