"""The block reader gives exactly the lines, numbers and over-long lines of the line reader.

`reference_chunks` is the reader replay had before (jsonsafe.iter_lines, one readline a
line), kept here as the specification: on random files (blank lines, lines around the
limit, no final newline, long lines spanning many reads) both must agree line for line.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyroute import jsonsafe
from policyroute.measure.reading import (
    Chunk,
    LongLine,
    RawLine,
    TrafficFileError,
    _File,
    iter_blocks,
    iter_chunks,
)


def reference_lines(data: bytes, max_bytes: int) -> list[RawLine]:
    out: list[RawLine] = []
    for _, line in jsonsafe.iter_lines(io.BytesIO(data), max_bytes=max_bytes):
        if line is None:
            out.append(LongLine(max_bytes))
        else:
            out.append(line[:-1] if line.endswith(b"\n") else line)
    return out


def block_chunks(data: bytes, size: int, max_bytes: int, read_bytes: int) -> Iterator[Chunk]:
    return _File(io.BytesIO(data), "t", size, max_bytes, read_bytes).chunks()


line_text = st.one_of(
    st.just(b""),
    st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"x")),
    st.integers(0, 40).map(lambda n: b"y" * n),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(line_text, max_size=30),
    st.booleans(),
    st.integers(1, 7),
    st.integers(0, 20),
    st.integers(1, 50),
)
def test_blocks_agree_with_the_line_reader(
    lines: list[bytes], final_newline: bool, size: int, max_bytes: int, read_bytes: int
) -> None:
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    want = reference_lines(data, max_bytes)
    got: list[RawLine] = []
    line = 1
    for chunk in block_chunks(data, size, max_bytes, read_bytes):
        assert chunk.start == line and 1 <= chunk.count <= size
        assert len(chunk.lines()) == chunk.count
        got.extend(chunk.lines())
        line += chunk.count
    assert got == want


def test_a_long_line_is_never_held_whole() -> None:
    # 50 reads of 10 bytes past a limit of 30: the reader keeps at most a read past it.
    data = b"a\n" + b"x" * 500 + b"\nb"
    chunks = list(block_chunks(data, 10, 30, 10))
    assert [c.lines() for c in chunks] == [[b"a", LongLine(30), b"b"]]
    assert chunks[0].blob == b"a\n\nb"


def test_files_are_chunked_apart_and_gz_is_read(tmp_path: Path) -> None:
    plain = tmp_path / "a.jsonl"
    plain.write_bytes(b"1\n2\n3")
    packed = tmp_path / "b.jsonl.gz"
    packed.write_bytes(gzip.compress(b"4\n\n6\n"))
    got = [(c.file, c.start, c.lines()) for c in iter_blocks([plain, packed], 2)]
    assert got == [
        (str(plain), 1, [b"1", b"2"]),
        (str(plain), 3, [b"3"]),
        (str(packed), 1, [b"4", b""]),
        (str(packed), 3, [b"6"]),
    ]
    assert list(iter_chunks([plain], 5)) == [(str(plain), 1, [b"1", b"2", b"3"])]


def test_a_corrupt_gz_names_the_line_it_stopped_at(tmp_path: Path) -> None:
    packed = tmp_path / "bad.jsonl.gz"
    packed.write_bytes(gzip.compress(b"1\n2\n" * 10)[:-12])
    with pytest.raises(TrafficFileError, match=r"bad\.jsonl\.gz:\d+: cannot read on"):
        list(iter_blocks([packed], 3))
