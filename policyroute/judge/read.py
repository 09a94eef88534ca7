"""Reading pairs files (JSON lines, `.gz` too): every line that is not a pair is reported with
`file:line` and why, and reading goes on."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from .. import jsonsafe
from ..measure.outcomes import LineProblem
from ..pairs import Pair


class PairsFileError(Exception):
    """A pairs file that cannot be opened or read at all."""


@dataclass(slots=True)
class PairsRead:
    pairs: list[tuple[Pair, str]] = field(default_factory=list)  # (pair, "file:line")
    problems: list[LineProblem] = field(default_factory=list)


def _open(path: Path) -> IO[str]:
    try:
        if path.suffix == ".gz":
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
        return path.open(encoding="utf-8")
    except OSError as e:
        raise PairsFileError(f"{path}: cannot open: {e.strerror or e}") from None


def _why(e: ValidationError) -> str:
    first = e.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "the line"
    return f"{where}: {first['msg']}"


def _at(e: jsonsafe.JSONError) -> str:
    return e.message if e.column is None else f"{e.message} at column {e.column}"


def read_pairs(paths: Iterable[str | Path]) -> PairsRead:
    out = PairsRead()
    for raw in paths:
        path = Path(raw)
        name = str(raw)
        with _open(path) as f:
            try:
                for lineno, line in jsonsafe.iter_lines(f, max_bytes=jsonsafe.MAX_LINE_BYTES):
                    if line is None:
                        too_long = jsonsafe.too_long(jsonsafe.MAX_LINE_BYTES)
                        out.problems.append(LineProblem(name, lineno, too_long.message))
                        continue
                    if not line.strip():
                        continue
                    try:
                        obj = jsonsafe.loads(line)
                    except jsonsafe.JSONError as e:
                        out.problems.append(LineProblem(name, lineno, _at(e)))
                        continue
                    if not isinstance(obj, dict) or obj.get("kind", "shadow_pair") != "shadow_pair":
                        out.problems.append(
                            LineProblem(
                                name, lineno, 'not a pair (expected {"kind": "shadow_pair", ...})'
                            )
                        )
                        continue
                    try:
                        pair = Pair.model_validate(obj)
                    except ValidationError as e:
                        out.problems.append(LineProblem(name, lineno, _why(e)))
                        continue
                    out.pairs.append((pair, f"{name}:{lineno}"))
            except (OSError, EOFError, UnicodeDecodeError) as e:
                raise PairsFileError(f"{name}: cannot read: {e}") from None
    return out
