"""Source text and spans: every AST node and diagnostic points back into a file."""

from __future__ import annotations

import errno
import os
import stat
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Span:
    """Half-open character range [start, end) in one source."""

    start: int
    end: int


NO_SPAN = Span(0, 0)


class Source:
    """A policy file's text with a line table for offset -> (line, column)."""

    __slots__ = ("_line_starts", "name", "path", "text")

    def __init__(self, text: str, name: str = "<string>", path: Path | None = None) -> None:
        self.text = text
        self.name = name
        self.path = path
        starts = [0]
        find = text.find
        i = find("\n")
        while i != -1:
            starts.append(i + 1)
            i = find("\n", i + 1)
        self._line_starts = starts

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based line and column (in code points) of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect_right(self._line_starts, offset) - 1
        return line + 1, offset - self._line_starts[line] + 1

    def offset(self, line: int, column: int) -> int:
        line = max(1, min(line, len(self._line_starts)))
        return min(self._line_starts[line - 1] + column - 1, len(self.text))

    def line_text(self, line: int) -> str:
        if not 1 <= line <= len(self._line_starts):
            return ""
        start = self._line_starts[line - 1]
        end = self.text.find("\n", start)
        return self.text[start : end if end != -1 else len(self.text)].rstrip("\r")


class UnreadableFile(OSError):
    """A policy path that is not read: not a regular file, too large, or an OS error."""


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of `path`, read only if it is a regular file of at most `limit` bytes.

    The one way policy files are read (by the loader and by the store's change detection):
    whatever lands on disk under a watched name must not block or exhaust memory. A FIFO
    would block `open()` until a writer came, so the file is opened non-blocking and
    checked with fstat before any read; a device (`/dev/zero` behind a symlink) is refused
    the same way, and a regular file is read to at most `limit + 1` bytes, so a file that
    grows while read is still bounded. Raises UnreadableFile (an OSError) with the reason.
    """
    fd = open_regular_file(path, limit)
    try:
        return read_open_file(fd, limit)
    finally:
        os.close(fd)


def open_regular_file(path: Path, limit: int) -> int:
    """A read-only descriptor of `path`, checked as `read_regular_file` checks it (the
    caller closes it). For a reader that must act on the file between opening and reading:
    the store takes a lease on it."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise UnreadableFile(getattr(e, "errno", None), reason) from e
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise UnreadableFile(errno.EISDIR, "is a folder")
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile(errno.EINVAL, f"not a regular file ({_kind(info.st_mode)})")
        if info.st_size > limit:
            raise UnreadableFile(errno.EFBIG, f"larger than {limit:,} bytes")
    except BaseException as e:
        os.close(fd)
        if isinstance(e, OSError) and not isinstance(e, UnreadableFile):
            raise UnreadableFile(e.errno, e.strerror or str(e)) from e
        raise
    return fd


def read_open_file(fd: int, limit: int) -> bytes:
    """The rest of an open file, at most `limit` bytes (UnreadableFile past that)."""
    try:
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as e:
        raise UnreadableFile(e.errno, e.strerror or str(e)) from e
    data = b"".join(chunks)
    if len(data) > limit:
        raise UnreadableFile(errno.EFBIG, f"larger than {limit:,} bytes")
    return data


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"
