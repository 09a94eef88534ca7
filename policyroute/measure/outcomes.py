"""OUTCOMES readers: how good each tier's answer to a request was, and what it really cost.

Two formats, chosen by the file name (``.csv``, else JSON lines; ``.gz`` either way):

- JSON lines: ``{"id": ..., "tier": NAME or "model": MODEL_ID, "score": NUMBER or BOOL}``,
  optionally real usage (``input_tokens``, ``output_tokens``, ``cache_read_tokens``,
  ``cache_creation_tokens``) and ``answer_chars``, the length of the answer the tier gave
  (replay estimates output tokens from it when no real usage is given). Other keys are kept
  out of the way (provenance such as ``answered_by`` or ``judge``).
- CSV: an ``id`` column and one column per tier name or model id, holding a number or
  True/False; an empty cell is no outcome.

A model id maps to the policy tier that declares it. A line that cannot be used is reported
with ``file:line`` and why, and reading goes on; the caller may stop on the first (``--strict``).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .. import jsonsafe
from ..decision import Tier
from .traffic import json_problem


class OutcomesFileError(Exception):
    """An OUTCOMES file that cannot be opened or read at all."""


@dataclass(frozen=True, slots=True)
class Usage:
    """Real token usage of one answer, as the API reported it."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """One tier's answer to one request: its score, and what is known about its size."""

    score: float
    usage: Usage | None = None
    answer_chars: int | None = None


@dataclass(frozen=True, slots=True)
class LineProblem:
    """What is wrong with one line of an input file (outcomes here, pairs in judge)."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class Outcomes:
    """Scores per (request id, tier), with the problems met while reading them.

    ``by_id[id][tier]`` is an `Outcome`; ``tiers`` lists the tiers with at least one outcome.
    """

    by_id: dict[str, dict[str, Outcome]] = field(default_factory=dict)
    problems: list[LineProblem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def tiers(self) -> frozenset[str]:
        return frozenset(t for row in self.by_id.values() for t in row)

    def get(self, request_id: str, tier: str) -> Outcome | None:
        row = self.by_id.get(request_id)
        return row.get(tier) if row is not None else None

    def score(self, request_id: str, tier: str) -> float | None:
        o = self.get(request_id, tier)
        return o.score if o is not None else None

    def __len__(self) -> int:
        return sum(len(row) for row in self.by_id.values())

    def __contains__(self, request_id: object) -> bool:
        return request_id in self.by_id

    def add(self, request_id: str, tier: str, outcome: Outcome, file: str, line: int) -> None:
        row = self.by_id.setdefault(request_id, {})
        if tier in row:
            self.problems.append(
                LineProblem(
                    file,
                    line,
                    f"a second outcome for id {request_id!r} on tier {tier}; the first is kept",
                )
            )
            return
        row[tier] = outcome


class TierNames:
    """Maps what an outcome names (a tier name or a model id) to a tier name.

    Without a policy (``tiers=None``) every name is taken as given: a learner reading outcomes
    on their own sees the names the file uses.
    """

    def __init__(self, tiers: Sequence[Tier] | None) -> None:
        self.open = tiers is None
        self.names = {t.name for t in tiers or ()}
        self.models: dict[str, str] = {}
        for t in tiers or ():
            self.models.setdefault(t.model, t.name)

    def tier(self, name: str) -> str | None:
        if self.open or name in self.names:
            return name
        return self.models.get(name)

    def describe(self) -> str:
        return ", ".join(sorted(self.names)) or "(none)"


def _open_text(path: Path) -> IO[str]:
    try:
        if path.suffix == ".gz":
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
        return path.open(encoding="utf-8", newline="")
    except OSError as e:
        raise OutcomesFileError(f"{path}: cannot open: {e.strerror or e}") from None


def _is_csv(path: Path) -> bool:
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    return name.lower().endswith(".csv")


def _score(value: Any) -> float | None:
    """A score: a finite number, or a boolean (True is 1, False is 0)."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _cell_score(cell: str) -> float | None:
    text = cell.strip()
    low = text.lower()
    if low == "true":
        return 1.0
    if low == "false":
        return 0.0
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _token(obj: Mapping[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"'{key}' must be a whole number >= 0")
    if (isinstance(value, float) and not value.is_integer()) or value < 0:
        raise ValueError(f"'{key}' must be a whole number >= 0")
    return int(value)


def _read_jsonl(f: IO[str], name: str, names: TierNames, out: Outcomes) -> None:
    for lineno, line in jsonsafe.iter_lines(f, max_bytes=jsonsafe.MAX_LINE_BYTES):
        if line is None:
            out.problems.append(
                LineProblem(name, lineno, jsonsafe.too_long(jsonsafe.MAX_LINE_BYTES).message)
            )
            continue
        if not line.strip():
            continue

        def bad(message: str, lineno: int = lineno) -> None:
            out.problems.append(LineProblem(name, lineno, message))

        try:
            obj = jsonsafe.loads(line)
        except jsonsafe.JSONError as e:
            bad(json_problem(e))
            continue
        if not isinstance(obj, dict):
            bad("an outcome must be a JSON object")
            continue
        rid = obj.get("id")
        if isinstance(rid, int) and not isinstance(rid, bool):
            rid = str(rid)
        if not isinstance(rid, str):
            bad("'id' must be a string or a whole number")
            continue
        named = obj.get("tier", obj.get("model"))
        if ("tier" in obj) == ("model" in obj) or not isinstance(named, str):
            bad("give exactly one of 'tier' (a tier name) or 'model' (a model id), as a string")
            continue
        tier = names.tier(named)
        if tier is None:
            what = "tier" if "tier" in obj else "model"
            bad(f"{what} {named!r} is not declared by the policy (its tiers: {names.describe()})")
            continue
        score = _score(obj.get("score"))
        if score is None:
            bad("'score' must be a finite number or true/false")
            continue
        try:
            inp, outp = _token(obj, "input_tokens"), _token(obj, "output_tokens")
            created = _token(obj, "cache_creation_tokens") or 0
            read = _token(obj, "cache_read_tokens") or 0
            chars = _token(obj, "answer_chars")
        except ValueError as e:
            bad(str(e))
            continue
        usage = (
            Usage(inp, outp, created, read)
            if inp is not None or outp is not None or created or read
            else None
        )
        out.add(rid, tier, Outcome(score, usage, chars), name, lineno)


def _read_csv(f: IO[str], name: str, names: TierNames, out: Outcomes) -> None:
    reader = csv.reader(f)
    try:
        header = next(reader)
    except StopIteration:
        out.problems.append(LineProblem(name, 1, "empty CSV file: no header"))
        return
    except csv.Error as e:
        out.problems.append(LineProblem(name, 1, f"unreadable CSV: {e}"))
        return
    if "id" not in header:
        out.problems.append(
            LineProblem(
                name, 1, "the header has no 'id' column (columns: " + ", ".join(header) + ")"
            )
        )
        return
    id_col = header.index("id")
    columns: list[tuple[int, str]] = []
    for i, col in enumerate(header):
        if i == id_col:
            continue
        tier = names.tier(col)
        if tier is None:
            out.problems.append(
                LineProblem(
                    name,
                    1,
                    f"column {col!r} names no tier or model of the policy (its tiers: "
                    f"{names.describe()}); ignored",
                )
            )
            continue
        columns.append((i, tier))
    try:
        for row in reader:
            lineno = reader.line_num
            if not row or not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                out.problems.append(
                    LineProblem(name, lineno, f"{len(row)} cells, the header has {len(header)}")
                )
                continue
            rid = row[id_col]
            if not rid:
                out.problems.append(LineProblem(name, lineno, "empty 'id'"))
                continue
            for i, tier in columns:
                cell = row[i]
                if not cell.strip():
                    continue
                score = _cell_score(cell)
                if score is None:
                    out.problems.append(
                        LineProblem(
                            name,
                            lineno,
                            f"column {header[i]!r}: {cell[:40]!r} is not a number or True/False",
                        )
                    )
                    continue
                out.add(rid, tier, Outcome(score), name, lineno)
    except csv.Error as e:
        out.problems.append(LineProblem(name, reader.line_num, f"unreadable CSV: {e}"))


def read_outcomes(paths: Iterable[str | Path], tiers: Sequence[Tier] | None = None) -> Outcomes:
    """Every outcome of the files. With ``tiers`` (a policy's), model ids map to tier names and
    an undeclared name is a problem; without, names are kept as the file gives them.
    """
    names = TierNames(tiers)
    out = Outcomes()
    for raw in paths:
        path = Path(raw)
        out.files.append(str(raw))
        with _open_text(path) as f:
            try:
                if _is_csv(path):
                    _read_csv(f, str(raw), names, out)
                else:
                    _read_jsonl(f, str(raw), names, out)
            except (OSError, EOFError, UnicodeDecodeError) as e:
                raise OutcomesFileError(f"{raw}: cannot read: {e}") from None
    return out


def iter_outcome_rows(outcomes: Outcomes) -> Iterator[tuple[str, str, Outcome]]:
    """(id, tier, outcome) for every outcome, in the order they were read."""
    for rid, row in outcomes.by_id.items():
        for tier, outcome in row.items():
            yield rid, tier, outcome
