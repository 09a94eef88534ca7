"""One generated function per policy: the evaluator's work in straight-line code.

Reading an attribute and looking up its mask is a few bytecodes; calling a reader and a
mask function per feature through the evaluator's loop costs several times that, and on a
short request that overhead is most of a decision. So the generated function reads the
features in the order the rules first need them, returning as soon as the first surviving
clause is decided, as an if-chain would:

- an attribute (up to EAGER_MAX of them) is one `m &= ...` line, always read: attributes
  have no side effects, so reading one a decision did not need changes nothing;
- a phrase set or a regex's verdict (up to LAZY_MAX) is read only when the first surviving
  clause needs it, the evaluator's own laziness; one passed over is left to the loop;
- a classifier is read the same way when there is no classifier to ask and the request
  carries no answers (it then reads as failed, with no side effect); otherwise, and when
  what is left needs the loop (a skipped feature, a rule evaluated whole), the code hands
  over to `Evaluator.run` with what it has read, so a classifier is still asked exactly
  when the loop would ask it.

It returns the `Decision` itself, so a decision costs one call.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..request.attributes import DYNAMIC, INT, READ_SCOPE, family_of, lookup
from .atoms import COST_CLASSIFIER, COST_PRESENCE
from .entry import SLOW, write_entry
from .evaluator import Evaluator

EAGER_MAX = 32
# Whole numbers below this are looked up by index (see _eager).
SMALL_MAX = 4096
LAZY_MAX = 32  # with EAGER_MAX, under NEVER
CATCH_UP = "    # __policyroute_catch_up__"

@dataclass(frozen=True, slots=True)
class Scan:
    """How a costly feature is read: a phrase set (`regex` None) or a regex's verdict.

    `scan(text)` is the policy's one pass over a text (phrases found, literals found);
    `literals` are the ids of the literals the regex cannot match without (None: no
    prefilter), `search(regex, text)` the contract's regex reading."""

    attribute: str
    scan: Callable[[str], tuple[frozenset[int], frozenset[int]]]
    regex: Any = None
    literals: frozenset[int] | None = None
    search: Callable[[Any, str], bool] | None = None


DecideFn = Callable[[Any, Any], Any]
# Policy.decide's own signature: (request=None, /, *, classifier=None, explain=False, **attrs)
EntryFn = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Entry:
    """What the public entry point hands anything but a plain request to:
    `fallback(request, classifier, explain, attrs)`."""

    request_type: type
    fallback: Callable[[Any, Any, bool, dict[str, Any]], Any]


def _read(name: str) -> str:
    info = lookup(name)
    assert info is not None, "the checker lets no unknown attribute through"
    return info.read


def generate(
    ev: Evaluator,
    decisions: Sequence[Any],
    scans: Mapping[int, Scan] | None = None,
    unasked: Mapping[int, Any] | None = None,
    entry: Entry | None = None,
) -> tuple[DecideFn, EntryFn | None]:
    """`decide(request, classifier) -> decisions[rule index]`, equal to `ev.decide`, and
    with `entry`, the same code behind Policy.decide's signature: a call to decide() with a
    plain request then costs one Python call, not two.

    `scans` says how to read the phrase and regex features inline; features not in it are
    left to the evaluator's loop. `unasked` is what each classifier feature reads when there
    is no classifier to ask and the request carries no answers: then reading it has no side
    effect, so the generated code reads it like an attribute instead of handing over."""
    return _Writer(ev, decisions, scans or {}, unasked or {}).functions(entry)


class _Writer:
    def __init__(
        self,
        ev: Evaluator,
        decisions: Sequence[Any],
        scans: Mapping[int, Scan],
        unasked: Mapping[int, Any],
    ) -> None:
        self.ev = ev
        self.scans = scans
        self.unasked = unasked
        # In the order the rules first need them, so a request an early rule decides is
        # answered after reading only what that rule reads.
        first_use: dict[int, int] = {}
        for bit, fs in enumerate(ev.needs):
            for f in fs:
                first_use.setdefault(f, bit)
        ordered = sorted(first_use, key=lambda f: (first_use[f], f))
        self.first_use = {f: n for n, f in enumerate(ordered)}
        self.eager = [
            f for f in ordered if ev.features[f].cost <= COST_PRESENCE and f in ev.tables
        ][:EAGER_MAX]
        self.lazy = [
            f
            for f in ordered
            if f not in self.eager
            and (
                (f in scans and lookup(scans[f].attribute) is not None)
                or (f in unasked and ev.features[f].cost >= COST_CLASSIFIER)
            )
        ][:LAZY_MAX]
        self.scope: dict[str, Any] = {
            "RULE": [*(decisions[r] for r in ev.clause_rule), decisions[ev.default]],
            "DEC": tuple(decisions),
            "DEFAULT": decisions[ev.default],
            "run": ev.run,
            "bisect": bisect_left,
            "NUMBER": (int, float),
            **READ_SCOPE,
        }
        self.lines = ["    m = ALL"]
        self.bails: list[tuple[list[str], int, bool]] = []
        self.catch_up: list[str] = []
        self.scope["ALL"] = ev.all

    def functions(self, entry: Entry | None) -> tuple[DecideFn, EntryFn | None]:
        self.body()
        body = "\n".join(self.lines) + "\n"
        on_request = self._bails(body.replace(CATCH_UP + "\n", ""), lambda i: _bail(*self.bails[i]))
        source = "def decide(r, classifier):\n" + on_request
        if entry is not None:
            self.scope.update({"REQUEST": entry.request_type, "FALLBACK": entry.fallback})
            caught = body.replace(CATCH_UP, "\n".join(self.catch_up))
            on_keywords = self._bails(caught, lambda i: f"{SLOW} if m else DEFAULT")
            slots = tuple(entry.request_type.__dict__["__slots__"])
            source += write_entry(on_request, on_keywords, slots, self.scope)
        exec(compile(source, "<policyroute decide>", "exec"), self.scope)
        if "keywords" in self.scope:
            self.scope["KEYWORDS"] = self.scope["keywords"]
        return self.scope["decide"], self.scope.get("entry")

    def _bail(self, texts: list[str], done: int, skippable: bool) -> str:
        """Where the code hands over to the evaluator's loop: a mark, written out per entry
        (the loop over a request, or the full path from keywords)."""
        self.bails.append((list(texts), done, skippable))
        return f"__policyroute_bail_{len(self.bails) - 1}__"

    @staticmethod
    def _bails(body: str, spell: Callable[[int], str]) -> str:
        return re.sub(r"__policyroute_bail_(\d+)__", lambda m: spell(int(m.group(1))), body)

    def body(self) -> None:
        ev, lines, scope = self.ev, self.lines, self.scope
        # Attributes and costly features alike in the order the rules first need them, so a
        # phrase rule that decides early spares reading what only later rules read.
        order = sorted(self.eager + self.lazy, key=self.first_use.__getitem__)
        # A mask's first surviving clause is `count - b` for b = m.bit_length() (clause 0 is
        # the top bit): O(1) whatever the number of clauses. READY_AT[b] is the position in
        # `order` after which that clause needs nothing more (NEVER: it needs the loop), and
        # 0 for b = 0, where no clause survives and RULE[0] is the default.
        ready_at = _ready_at(ev, order)
        scope["READY_AT"] = bytes([0, *(ready_at[ev.count - b] for b in range(1, ev.count + 1))])
        scope["RULE"] = [
            scope["DEFAULT"],
            *(scope["RULE"][ev.count - b] for b in range(1, ev.count + 1)),
        ]
        # A costly feature is read only when the first surviving clause needs it; one passed
        # over is `skipped`, and a clause that needs a skipped feature is not ready (the loop
        # reads it): LAZY_NEEDS[b] holds the skippable features clause `count - b` needs.
        lazy_bit = {f: 1 << f for f in self.lazy}  # as in `done`: one bit a feature
        lazy_needs = [0] * (ev.count + 1)
        for c, fs in enumerate(ev.needs):
            lazy_needs[ev.count - c] = sum(lazy_bit.get(f, 0) for f in fs)
        scope["LAZY_NEEDS"] = lazy_needs
        grows = set(ready_at)
        # A family's mapping (`r.metadata`) once, for every key the features read.
        held = sorted(
            {
                fam.field
                for f in self.eager
                if (fam := family_of(ev.features[f].key[1])) and fam.field and not fam.read
            }
        )
        lines += [f"    fam_{name} = r.{name}" for name in held]
        texts = sorted({self.scans[f].attribute for f in self.lazy if f in self.scans})
        lines += [f"    sc_{_ident(t)} = None" for t in texts]
        if self.lazy:
            lines.append("    skipped = 0")
        done = 0
        fresh = False  # whether `b` is the bit length of `m` as it stands
        for n, f in enumerate(order):
            if f in lazy_bit:
                if not fresh:
                    lines.append("    b = m.bit_length()")
                self._costly(f, lazy_bit[f], texts, done)
            else:
                start = len(lines)
                self._eager(f)
                if n == 0:  # every mask holds ALL's untouched bits: `m = X`, not `m &= X`
                    lines[start:] = [x.replace("m &= ", "m = ") for x in lines[start:]]
                    lines.remove("    m = ALL")
            done |= 1 << f
            fresh = False
            # after a feature that lets a further clause decide, and after the last
            if n in grows or n == len(order) - 1:
                self._return_if_ready(n, any(g in lazy_bit for g in order[: n + 1]))
                fresh = True
        if self.lazy:
            lines.append(CATCH_UP)
            self.catch_up = self._catch_up(order, lazy_bit, texts, done)
        lines.append(f"    return {self._bail(texts, done, bool(self.lazy))}")

    def _catch_up(
        self, order: list[int], lazy_bit: dict[int, int], texts: list[str], done: int
    ) -> list[str]:
        """What the keyword entry runs where the request's code hands over to the loop: the
        costly features passed over, read now (reading one has no side effect, and a mask
        only drops clauses a value contradicts), then the first surviving clause if every
        feature it needs is read. Handing over from keywords costs a Request and the whole
        decision again; this is a few lines."""
        out = ["    if skipped:"]
        for f in order:
            if f in lazy_bit:
                block = self._costly_block(f, texts, done)
                out += [f"        if skipped & {lazy_bit[f]}:", *(f"        {x}" for x in block)]
        out += [
            "        b = m.bit_length()",
            f"        if READY_AT[b] <= {len(order) - 1}:",
            "            return RULE[b]",
        ]
        return out

    def _costly(self, f: int, bit: int, texts: list[str], done: int) -> None:
        """Read costly feature `f` if the first surviving clause needs it, else skip it."""
        ev, scope = self.ev, self.scope
        needs = bytearray(ev.count + 1)
        for c, fs in enumerate(ev.needs):
            needs[ev.count - c] = f in fs and c not in ev.opaque
        scope[f"NEED{f}"] = bytes(needs)
        block = self._costly_block(f, texts, done)
        self.lines += [
            f"    if NEED{f}[b]:",
            *(f"    {x}" for x in block),
            "    else:",
            f"        skipped |= {bit}",
        ]

    def _costly_block(self, f: int, texts: list[str], done: int) -> list[str]:
        """The lines that read costly feature `f` into `m`."""
        outer, self.lines = self.lines, []
        if f in self.unasked:
            self.scope[f"UNASKED{f}"] = self.ev.masks[f](self.unasked[f])
            self.lines += [
                "    if classifier is not None or r.classifiers:",
                f"        return {self._bail(texts, done, True)}",
                f"    m &= UNASKED{f}",
            ]
        else:
            self._lazy(f)
        block, self.lines = self.lines, outer
        return block

    def _return_if_ready(self, n: int, skippable: bool) -> None:
        """Return when the first surviving clause needs nothing past position `n` of the
        features read (and none it skipped), or when no clause survives."""
        test = f"READY_AT[b] <= {n}"
        if skippable:
            test += " and not LAZY_NEEDS[b] & skipped"
        self.lines += ["    b = m.bit_length()", f"    if {test}:", "        return RULE[b]"]

    def _eager(self, f: int) -> None:
        ev, lines, scope = self.ev, self.lines, self.scope
        kind, name = ev.features[f].key[0], ev.features[f].key[1]
        info = lookup(name)
        assert info is not None, "only attributes are read eagerly"
        family = family_of(name)
        if family is not None and family.field and not family.read:
            read = f"fam_{family.field}.get({name.partition('.')[2]!r})"
        else:
            read = info.read
        dynamic = info.type == DYNAMIC
        table = ev.tables[f]
        if table[0] == "num":
            _, ts, cells, missing = table
            scope.update({f"T{f}": ts, f"C{f}": cells, f"M{f}": missing})
            lines.append(f"    v = {read}")
            if dynamic:  # any JSON value: a number, or missing (NaN too)
                lines += [
                    "    if (v.__class__ is int or v.__class__ is float) and v == v or (",
                    "        v is not None and v.__class__ is not bool and isinstance(v, NUMBER) and v == v",
                    "    ):",
                ]
            else:  # a Request's numbers are checked numbers or None (request.py checks them)
                lines.append("    if v is not None:")
            if len(ts) <= 3:  # a few comparisons beat a call to bisect
                for j in range(len(ts)):
                    scope[f"T{f}_{j}"] = ts[j]
                    word = "if" if j == 0 else "elif"
                    lines += [
                        f"        {word} v < T{f}_{j}:",
                        f"            m &= C{f}[{2 * j}]",
                        f"        elif v == T{f}_{j}:",
                        f"            m &= C{f}[{2 * j + 1}]",
                    ]
                lines += [
                    "        else:" if ts else "        if True:",
                    f"            m &= C{f}[{2 * len(ts)}]",
                ]
            else:
                search = [
                    f"i = bisect(T{f}, v)",
                    f"m &= C{f}[2 * i + 1 if i < {len(ts)} and T{f}[i] == v else 2 * i]",
                ]
                if info.type != INT:
                    lines += [f"        {x}" for x in search]
                else:
                    # A whole number >= 0: below SMALL_MAX, its mask by index (one lookup
                    # where bisect compares a dozen ints scattered in memory).
                    top = ts[-1]  # may be infinite, or an int too large for a float
                    limit = (
                        SMALL_MAX
                        if not top < SMALL_MAX
                        else max(1, math.floor(top) + 2)
                        if top >= 0
                        else 1
                    )
                    scope[f"V{f}"] = [cells[_cell(ts, x)] for x in range(limit)]
                    lines += [f"        if v < {limit}:", f"            m &= V{f}[v]"]
                    if limit < SMALL_MAX:  # every larger value is above every threshold
                        lines += ["        else:", f"            m &= C{f}[{2 * len(ts)}]"]
                    else:
                        lines += ["        else:", *(f"            {x}" for x in search)]
            lines += ["    else:", f"        m &= M{f}"]
            return
        _, values, other = table
        scope.update({f"D{f}": values, f"O{f}": other})
        if kind == "present":
            yes, no = values.get(True, other), values.get(False, other)
            scope.update({f"Y{f}": yes, f"N{f}": no})
            lines.append(f"    m &= Y{f} if {read} is not None else N{f}")
        elif dynamic:  # any JSON value, unhashable ones too
            test = "v.__class__ is bool" if kind == "bool" else "isinstance(v, str)"
            lines += [f"    v = {read}", f"    m &= D{f}.get(v, O{f}) if {test} else O{f}"]
        else:
            # A Request's strings are str or None, its flags bool (request.py checks them,
            # and it is immutable); the table's keys are strings or True/False, never None.
            assert kind in ("str", "bool")
            lines.append(f"    m &= D{f}.get({read}, O{f})")

    def _lazy(self, f: int) -> None:
        ev, lines, scope = self.ev, self.lines, self.scope
        scan = self.scans[f]
        sc = f"sc_{_ident(scan.attribute)}"
        scope[f"SCAN{f}"] = scan.scan
        # A Request's texts are str or None (request.py checks them; it is immutable).
        lines += [f"    s = {_read(scan.attribute)}", "    if s is not None:"]
        if scan.regex is None or scan.literals is not None:
            # made where it is first needed, and kept for the later features and the loop
            lines += [f"        if {sc} is None:", f"            {sc} = SCAN{f}(s)"]
        if scan.regex is None:  # phrases found: their mask
            scope[f"MASK{f}"] = ev.masks[f]
            scope[f"NONE{f}"] = ev.masks[f](frozenset())
            lines += [
                f"        m &= MASK{f}({sc}[0]) if {sc}[0] else NONE{f}",
                "    else:",
                f"        m &= NONE{f}",
            ]
            return
        _, values, other = ev.tables[f]
        scope.update(
            {
                f"RX{f}": scan.regex,
                f"SEARCH{f}": scan.search,
                f"YES{f}": values.get(True, other),
                f"NO{f}": values.get(False, other),
                f"O{f}": other,
            }
        )
        search = f"m &= YES{f} if SEARCH{f}(RX{f}, s) else NO{f}"
        if scan.literals is None:
            lines.append(f"        {search}")
        else:
            scope[f"LIT{f}"] = scan.literals
            lines += [
                # a literal it cannot match without is absent: no need to run it
                f"        if LIT{f}.isdisjoint({sc}[1]):",
                f"            m &= NO{f}",
                "        else:",
                f"            {search}",
            ]
        lines += ["    else:", f"        m &= O{f}"]


def _bail(texts: list[str], done: int, skippable: bool) -> str:
    """Handing over to the evaluator's loop, with the classifier and the scans made. `done`
    counts the features up to here as read; a skipped one is left to the loop."""
    scans = "".join(f", {t!r}: sc_{_ident(t)}" for t in texts)
    done_now = f"{done} & ~skipped" if skippable else str(done)
    return f"DEC[run(r, {{'classifier': classifier{scans}}}, m, {done_now})] if m else DEFAULT"


def _cell(thresholds: Sequence[float], v: int) -> int:
    """The cell of `v`: 2i below threshold i, 2i + 1 at it (Evaluator._num)."""
    i = bisect_left(thresholds, v)
    return 2 * i + 1 if i < len(thresholds) and thresholds[i] == v else 2 * i


def _ident(name: str) -> str:
    return name.replace(".", "_")


NEVER = 255  # a ready-at position no clause the generated code decides reaches


def _ready_at(ev: Evaluator, order: list[int]) -> list[int]:
    """For each clause, the position in `order` after which every feature it needs has been
    read, or NEVER (a feature outside `order`, or a rule evaluated whole)."""
    pos = {f: n for n, f in enumerate(order)}
    out = []
    for c, fs in enumerate(ev.needs):
        if c in ev.opaque or not all(f in pos for f in fs):
            out.append(NEVER)
        else:
            out.append(max((pos[f] for f in fs), default=0))
    return out


__all__ = ["EAGER_MAX", "LAZY_MAX", "Entry", "Scan", "generate"]
