"""Reading TRAFFIC files into chunks of raw lines, in blocks rather than line by line.

Replay's parent process does nothing with a line but hand it on, so it reads 4 MiB at a time
and cuts the blocks at line ends with C-speed `bytes` methods: a chunk is one slice of
complete lines (`Chunk.blob`), sent to a worker as it is, and only split into lines where
they are parsed. Reading line by line (`readline` per line, a list of lines, then joining
them again for the worker) cost the parent about 9 µs of CPU a line, on the same two cores
the workers route on.

The lines and their numbers are exactly `jsonsafe.iter_lines`' (the property tests in
tests/measure/test_reading.py compare the two): blank lines are kept so numbers stay exact,
and a line longer than ``max_bytes`` (its terminator not counted) is skipped without being
held, and stands in its chunk as a `LongLine`. Memory is one chunk plus one block, and at most
``max_bytes`` of an over-long line, whatever the file's length.
"""

from __future__ import annotations

import gzip
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .. import jsonsafe

READ_BYTES = 4 << 20


class TrafficFileError(Exception):
    """A TRAFFIC file that cannot be opened or read on (missing, corrupt gzip...)."""


@dataclass(frozen=True, slots=True)
class LongLine:
    """Stands in a chunk for a line longer than the reader's limit, which was not read."""

    max_bytes: int


RawLine = bytes | LongLine


@dataclass(frozen=True, slots=True)
class Chunk:
    """Consecutive lines of one file: ``count`` lines from line ``start``, as one bytes object
    of the lines each ended by ``b"\\n"`` (the file's last line may lack it). A line in
    ``long`` (offsets in the chunk) was over ``max_bytes`` and stands as an empty line."""

    file: str
    start: int
    blob: bytes
    count: int
    long: tuple[int, ...] = ()
    max_bytes: int = 0

    def lines(self) -> list[RawLine]:
        """The lines without their ``b"\\n"``, a `LongLine` for each over-long one."""
        lines: list[RawLine] = list(self.blob.split(b"\n", self.count)[: self.count])
        for i in self.long:
            lines[i] = LongLine(self.max_bytes)
        return lines


def open_traffic(path: str | Path) -> IO[bytes]:
    """A TRAFFIC file opened for binary reading; ``.gz`` is decompressed as it is read."""
    p = Path(path)
    try:
        if p.suffix == ".gz":
            return gzip.open(p, "rb")  # type: ignore[return-value]
        return p.open("rb")
    except OSError as e:
        raise TrafficFileError(f"{path}: cannot open: {e.strerror or e}") from None


def iter_blocks(
    paths: Iterable[str | Path],
    size: int = 2000,
    max_bytes: int = jsonsafe.MAX_LINE_BYTES,
    read_bytes: int = READ_BYTES,
) -> Iterator[Chunk]:
    """Every line of the files in chunks of at most ``size`` lines (never empty)."""
    size = max(size, 1)
    for path in paths:
        name = str(path)
        with open_traffic(path) as f:
            yield from _File(f, name, size, max_bytes, max(read_bytes, 1)).chunks()


class _File:
    """The chunks of one open file; `line` is the number of the next line not yet taken."""

    def __init__(self, f: IO[bytes], name: str, size: int, max_bytes: int, read_bytes: int):
        self.f, self.name, self.size = f, name, size
        self.max_bytes, self.read_bytes = max_bytes, read_bytes
        self.line = 1
        self.pieces: list[bytes] = []  # the chunk being built
        self.count = 0
        self.long: list[int] = []

    def _read(self, n: int) -> bytes:
        try:
            return self.f.read(n)
        except (OSError, EOFError) as e:
            raise TrafficFileError(f"{self.name}:{self.line}: cannot read on: {e}") from None

    def _take(self, piece: bytes, lines: int) -> Chunk | None:
        """Add ``lines`` complete lines to the chunk; the chunk if that filled it."""
        self.pieces.append(piece)
        self.count += lines
        self.line += lines
        return self._flush() if self.count >= self.size else None

    def _flush(self) -> Chunk | None:
        if not self.count:
            return None
        chunk = Chunk(
            self.name,
            self.line - self.count,
            b"".join(self.pieces),
            self.count,
            tuple(self.long),
            self.max_bytes if self.long else 0,
        )
        self.pieces, self.count, self.long = [], 0, []
        return chunk

    def _skip_long(self) -> bytes:
        """The current line is over the limit: read past its end unheld; what follows it."""
        while True:
            block = self._read(self.read_bytes)
            if not block:
                return b""
            nl = block.find(b"\n")
            if nl >= 0:
                return block[nl + 1 :]

    def chunks(self) -> Iterator[Chunk]:
        max_bytes = self.max_bytes
        tail: list[bytes] = []  # the start of a line whose end is not read yet
        tail_len = 0
        while True:
            block = self._read(self.read_bytes)
            if not block:
                break
            pos = 0
            if tail:
                nl = block.find(b"\n")
                if nl < 0:
                    tail.append(block)  # joined once its end comes: no copy per block
                    tail_len += len(block)
                    pos = len(block)
                elif tail_len + nl > max_bytes:
                    tail, tail_len, pos = [], 0, nl + 1
                    self.long.append(self.count)
                    chunk = self._take(b"\n", 1)
                    if chunk is not None:
                        yield chunk
                else:  # the line's end: only the line is joined, not the block
                    line = b"".join([*tail, block[: nl + 1]])
                    tail, tail_len, pos = [], 0, nl + 1
                    chunk = self._take(line, 1)
                    if chunk is not None:
                        yield chunk
            if pos < len(block):
                pos = yield from self._lines(block, pos)
                if pos < len(block):
                    tail, tail_len = [block[pos:]], len(block) - pos
            while tail_len > max_bytes:  # the line being read is over the limit
                self.long.append(self.count)
                tail, tail_len = [], 0
                block = self._skip_long()
                chunk = self._take(b"\n", 1)
                if chunk is not None:
                    yield chunk
                pos = yield from self._lines(block, 0)
                if pos < len(block):
                    tail, tail_len = [block[pos:]], len(block) - pos
        if tail:  # the last line, without its terminator
            chunk = self._take(b"".join(tail), 1)
            if chunk is not None:
                yield chunk
        chunk = self._flush()
        if chunk is not None:
            yield chunk

    def _lines(self, buf: bytes, pos: int) -> Generator[Chunk, None, int]:
        """Take the complete lines of ``buf`` from ``pos`` on (yielding each chunk they
        fill); returns where the line after them starts."""
        max_bytes = self.max_bytes
        find = buf.find
        while True:
            # Whole lines up to the chunk's size by memchr (bytes.count is several times
            # slower), one bytes slice for all of them.
            room = self.size - self.count
            end = pos - 1
            n = 0
            while n < room:
                nl = find(b"\n", end + 1)
                if nl < 0:
                    break
                end = nl
                n += 1
            if not n:
                return pos
            if end - pos > max_bytes:  # a line over the limit may be among them: one at a time
                end = find(b"\n", pos)
                if end - pos > max_bytes:
                    self.long.append(self.count)
                    chunk = self._take(b"\n", 1)
                else:
                    chunk = self._take(buf[pos : end + 1], 1)
            else:
                chunk = self._take(buf[pos : end + 1], n)
            pos = end + 1
            if chunk is not None:
                yield chunk


def iter_chunks(
    paths: Iterable[str | Path], size: int = 2000, max_bytes: int = jsonsafe.MAX_LINE_BYTES
) -> Iterator[tuple[str, int, list[RawLine]]]:
    """Raw lines in chunks of at most ``size``: (file name, first line number, lines), the
    lines without their ``b"\\n"``. Memory is one chunk, whatever the file's length. Blank
    lines are kept (and skipped by `parse_line`) so line numbers stay exact. A line over
    ``max_bytes`` is skipped unread and stands as a `LongLine`, which `parse_line` reports
    with its line number.
    """
    for chunk in iter_blocks(paths, size, max_bytes):
        yield chunk.file, chunk.start, chunk.lines()
