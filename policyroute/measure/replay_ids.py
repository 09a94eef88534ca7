"""Duplicate request ids across a replay, in memory bounded by the run size, not the file.

The parent hands every chunk's replayed ids (line, id) to `Ids.absorb` in file order. Each id
gets its hash, its rank in the file order (`o`), its file and line, and the place of its text
in one spill file of id texts; once `run_records` ids are buffered they are sorted by
(hash, rank) and written out as a run. At the end the runs are merged in blocks (more than
`fan_in` runs are first merged into fewer), and equal neighbouring hashes are the candidates:
their texts are read back and compared, so a hash collision is never reported as a
duplicate. A duplicate is a line whose id an earlier line has, as before; the examples are
the first `EXAMPLES_KEPT` of them in file order.

Everything lives in a temporary folder that `close()` (or leaving the `with` block, also on
an error or KeyboardInterrupt) removes.
"""

from __future__ import annotations

import heapq
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from itertools import repeat
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from .tally import EXAMPLES_KEPT, Tally

# hash, rank in file order, file index, line, text offset in the spill file, text length
RECORD = np.dtype(
    [("h", "<i8"), ("o", "<u8"), ("f", "<u4"), ("l", "<u8"), ("t", "<u8"), ("n", "<u4")]
)
RUN_RECORDS = 1 << 16
FAN_IN = 32
BLOCK = 4096


class Ids:
    """The replayed ids of a run: duplicates (exact) and the outcome ids no line has."""

    def __init__(
        self,
        *,
        hash_of: Callable[[str], int] = hash,
        run_records: int = RUN_RECORDS,
        fan_in: int = FAN_IN,
        block: int = BLOCK,
    ) -> None:
        self.hash_of = hash_of  # injectable: a tiny hash forces collisions in tests
        self.run_records = run_records
        self.fan_in = max(fan_in, 2)
        self.block = max(block, 1)
        self.files: list[str] = []
        self.ranked = 0
        self.matched: set[str] = set()  # outcome ids some line has: bounded by the outcomes
        self._dir: Path | None = None
        self._texts: Any = None  # the spill file of id texts, opened on first use
        self._texts_size = 0
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self._runs: list[Path] = []
        self._made = 0

    def __enter__(self) -> Ids:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._texts is not None:
            self._texts.close()
            self._texts = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def _path(self, name: str) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="policyroute-replay-ids-"))
        return self._dir / name

    def absorb(self, part: Tally) -> None:
        """Take a chunk's ids (chunks must come in file order) and empty them."""
        self.matched.update(part.matched)
        part.matched = []
        ids = part.ids
        part.ids = []
        if not ids:
            return
        if not self.files or self.files[-1] != part.ids_file:
            self.files.append(part.ids_file)
        if self._texts is None:
            self._texts = self._path("texts").open("wb")
        # map() and zip() of builtins, not generator expressions: this runs in the parent,
        # for every replayed line.
        lines, names = zip(*ids, strict=True)
        texts = list(map(str.encode, names, repeat("utf-8"), repeat("surrogatepass")))
        n = len(ids)
        rec = np.empty(n, dtype=RECORD)
        rec["h"] = np.fromiter(map(self.hash_of, names), dtype=np.int64, count=n)
        rec["o"] = np.arange(self.ranked, self.ranked + n, dtype=np.uint64)
        rec["f"] = len(self.files) - 1
        rec["l"] = np.array(lines, dtype=np.uint64)
        lengths = np.fromiter(map(len, texts), dtype=np.uint64, count=n)
        ends = np.cumsum(lengths, dtype=np.uint64)
        rec["t"] = ends - lengths + np.uint64(self._texts_size)
        rec["n"] = lengths
        self._texts.write(b"".join(texts))
        self._texts_size += int(ends[-1])
        self.ranked += n
        self._buffer.append(rec)
        self._buffered += n
        if self._buffered >= self.run_records:
            self._spill()

    def _spill(self) -> None:
        if not self._buffered:
            return
        rec = np.concatenate(self._buffer)
        self._buffer, self._buffered = [], 0
        rec = rec[np.lexsort((rec["o"], rec["h"]))]
        path = self._path(f"run{self._made}")
        self._made += 1
        rec.tofile(path)
        self._runs.append(path)

    def _merge_down(self) -> list[Path]:
        """Merge runs `fan_in` at a time until at most `fan_in` are left."""
        runs = self._runs
        while len(runs) > self.fan_in:
            group, runs = runs[: self.fan_in], runs[self.fan_in :]
            path = self._path(f"run{self._made}")
            self._made += 1
            with path.open("wb") as out:
                for batch in _merged(group, self.block):
                    batch.tofile(out)
            for p in group:
                p.unlink()
            runs.append(path)
        self._runs = runs
        return runs

    def duplicates(self) -> tuple[int, list[str]]:
        """How many lines repeat an earlier line's id, and the first of them as file:line."""
        self._spill()
        if self._texts is not None:
            self._texts.flush()
        runs = self._merge_down()
        if not runs:
            return 0, []
        count = 0
        first: list[tuple[int, int, int]] = []  # a max-heap of (-rank, file, line)
        with self._path("texts").open("rb") as texts:
            fd = texts.fileno()
            for rank, f, line in _repeats(_merged(runs, self.block), fd):
                count += 1
                item = (-rank, f, line)
                if len(first) < EXAMPLES_KEPT:
                    heapq.heappush(first, item)
                elif item > first[0]:
                    heapq.heapreplace(first, item)
        examples = [f"{self.files[f]}:{line}" for _, f, line in sorted(first, reverse=True)]
        return count, examples

    def unmatched(self, outcome_ids: Iterable[str]) -> list[str]:
        """The outcome ids that no replayed line has, in the order given."""
        return [i for i in outcome_ids if i not in self.matched]

    def finish(self, total: Tally, outcome_ids: Iterable[str] | None) -> None:
        total.duplicates, total.duplicate_examples = self.duplicates()
        if outcome_ids is not None:
            missing = self.unmatched(outcome_ids)
            total.unmatched_outcomes = len(missing)
            total.unmatched_examples = missing[:EXAMPLES_KEPT]


def _read(path: Path, start: int, count: int) -> np.ndarray:
    with path.open("rb") as f:
        f.seek(start * RECORD.itemsize)
        return np.fromfile(f, dtype=RECORD, count=count)


def _merged(runs: list[Path], block: int) -> Iterator[np.ndarray]:
    """The records of sorted runs in (hash, rank) order, as sorted batches of at most
    len(runs) * block records: each round takes from every run's block what is no greater
    than the smallest last key among runs with records still unread, which nothing unread
    can undercut."""
    sizes = [p.stat().st_size // RECORD.itemsize for p in runs]
    read = [0] * len(runs)
    bufs: list[np.ndarray] = []
    for i, p in enumerate(runs):
        bufs.append(_read(p, 0, block))
        read[i] = len(bufs[i])
    while any(len(b) for b in bufs):
        open_ = [i for i in range(len(runs)) if read[i] < sizes[i]]
        pieces = []
        if open_:
            bh, bo = min((int(bufs[i]["h"][-1]), int(bufs[i]["o"][-1])) for i in open_)
        for i, buf in enumerate(bufs):
            if not len(buf):
                continue
            if open_:
                h = buf["h"]
                lo = int(np.searchsorted(h, bh, "left"))
                hi = int(np.searchsorted(h, bh, "right"))
                k = lo + int(np.searchsorted(buf["o"][lo:hi], bo, "right"))
            else:
                k = len(buf)
            if k:
                pieces.append(buf[:k])
                bufs[i] = buf = buf[k:]
            if not len(buf) and read[i] < sizes[i]:
                bufs[i] = _read(runs[i], read[i], block)
                read[i] += len(bufs[i])
        if pieces:
            batch = np.concatenate(pieces)
            yield batch[np.lexsort((batch["o"], batch["h"]))]


def _repeats(batches: Iterable[np.ndarray], fd: int) -> Iterator[tuple[int, int, int]]:
    """(rank, file, line) of every record whose id text an earlier record (by rank) has.
    Only records with an equal neighbouring hash are read back; the texts held at once are
    the distinct ones sharing one hash."""
    group_h: int | None = None  # the hash of the group being read back
    seen: set[bytes] = set()
    held: np.ndarray | None = None  # the last record of a batch, alone in it so far
    for batch in batches:
        if held is not None:
            batch = np.concatenate([held, batch])
            held = None
        h = batch["h"]
        same = h[1:] == h[:-1]
        prev = np.concatenate([[group_h is not None and int(h[0]) == group_h], same])
        nxt = np.concatenate([same, [False]])
        if not prev[-1]:
            # Whether it has company is only known from the next batch.
            held, batch = batch[-1:], batch[:-1]
            prev, nxt = prev[:-1], nxt[:-1]
        for rec in batch[prev | nxt]:
            rh = int(rec["h"])
            if rh != group_h:
                group_h, seen = rh, set()
            text = os.pread(fd, int(rec["n"]), int(rec["t"]))
            if text in seen:
                yield int(rec["o"]), int(rec["f"]), int(rec["l"])
            else:
                seen.add(text)
