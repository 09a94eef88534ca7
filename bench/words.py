"""The prose every benchmark routes: common words of coding requests, line breaks and
indents now and then, and non-ASCII words when asked for. One generator, so the figures of
bench_decide, bench_evaluator and bench_replay read the same kind of text."""

from __future__ import annotations

import random

VOCAB = [
    "the",
    "a",
    "function",
    "returns",
    "value",
    "when",
    "list",
    "index",
    "error",
    "please",
    "help",
    "me",
    "write",
    "code",
    "for",
    "this",
    "module",
    "class",
    "test",
    "input",
    "output",
    "file",
    "data",
    "user",
    "request",
    "server",
    "client",
    "cache",
    "query",
    "table",
    "update",
    "delete",
    "create",
    "build",
    "deploy",
    "config",
    "option",
    "path",
    "string",
    "number",
    "loop",
    "thread",
    "lock",
]

NON_ASCII = [
    "über",
    "naïve",
    "déjà",
    "größe",
    "Straße",
    "日本語",
    "данные",
    "ошибка",
    "café",
    "niño",
]


def prose(size: int, rng: random.Random, unicode: bool, tail: str = "") -> str:
    vocab = VOCAB + NON_ASCII if unicode else VOCAB
    words: list[str] = []
    n = 0
    while n < size - len(tail):
        w = rng.choice(vocab)
        if rng.random() < 0.08:
            w = rng.choice(["\n", "\n    ", "\n\n"]) + w
        words.append(w)
        n += len(w) + 1
    return (" ".join(words) + " " + tail)[-size:] if size > len(tail) else tail
