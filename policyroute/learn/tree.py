"""Conjunctions of two or three conditions: the branches of a shallow tree, as rules.

A gain that lives where two things meet (math questions, but only on their second turn) is
invisible to any one condition. This stage grows, from the training part only, the
conjunctions `A and B` and `A and B and C` that beat every condition they are made of: a
branch is kept when its lower bound on excess per call is above both its parents' and its
support stays above the floor. Which of them (and of the single conditions) become rules is
then the selection's and the validation's business, like any other candidate.

The search is exhaustive over pairs of a root (the best single conditions, and every
non-phrase one: thresholds, regexes, values) with every condition, done as one matrix
product per level, so it costs about as much as scoring the candidates a few hundred times.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .features import AND, Candidates, Item
from .select import Data, excess, lower_bound, stat_columns, stats

if TYPE_CHECKING:
    import numpy as np

SCREEN_Z = 1.0  # a loose bar: the selection and the folds judge the survivors properly


def _roots(items: list[Item], score: np.ndarray, top: int) -> np.ndarray:
    import numpy as np

    order = np.argsort(-score, kind="stable")
    chosen = [int(j) for j in order[:top]]
    chosen += [j for j, i in enumerate(items) if i.kind not in ("phrase", AND) and j not in chosen]
    return np.array(sorted(set(chosen)), dtype=np.intp)


def _grow(
    masks: np.ndarray,
    items: list[Item],
    base_masks: np.ndarray,
    base_items: list[Item],
    base_lcb: np.ndarray,
    atom_lcb: np.ndarray,
    data: Data,
    e: np.ndarray,
    weight: np.ndarray,
    min_support: float,
    keep: int,
) -> tuple[list[Item], np.ndarray]:
    """`base AND atom` for every base row and atom, kept when it beats both its parts."""
    import numpy as np

    n = masks.shape[1]
    columns = stat_columns(e, data.cost, weight, masks.dtype)
    found: list[tuple[float, int, int]] = []
    step = 64  # bases per product: bounds the (k, 4 * step) intermediate
    for start in range(0, len(base_items), step):
        block = base_masks[start : start + step]
        # One product scores every atom against every base of the block.
        wide = (block[:, :, None] * columns[None, :, :]).transpose(1, 0, 2).reshape(n, -1)
        every = (masks @ wide).astype(np.float64).reshape(-1, 4)
        mean_lcb = lower_bound(every, SCREEN_Z)[1].reshape(masks.shape[0], len(block))
        support = every[:, 0].reshape(masks.shape[0], len(block))
        spend = every[:, 1].reshape(masks.shape[0], len(block))
        beats = (
            (support >= min_support)
            & (support < (block @ weight)[None, :])
            & (mean_lcb > np.maximum(base_lcb[start : start + step][None, :], atom_lcb[:, None]))
            & (mean_lcb > 0)
        )
        js, bs = np.nonzero(beats)
        found += [
            (float(mean_lcb[j, b] * spend[j, b]), start + int(b), int(j))
            for j, b in zip(js, bs, strict=True)
        ]
    found.sort(reverse=True)
    out_items: list[Item] = []
    out_masks: list[np.ndarray] = []
    seen: set[bytes] = set()
    for _, bi, ji in found:
        part = items[ji]
        base = base_items[bi]
        parts = base.parts if base.kind == AND else (base,)
        if part in parts or any(p.family == part.family for p in parts):
            continue  # `length > 50 and length > 80` says nothing a single threshold cannot
        mask = base_masks[bi] * masks[ji]
        key = np.packbits(mask.astype(bool)).tobytes()
        if key in seen:
            continue
        seen.add(key)
        ordered = tuple(sorted((*parts, part), key=lambda i: (i.kind == "phrase", i.label())))
        out_items.append(Item(AND, "", "", ordered))
        out_masks.append(mask)
        if len(out_items) >= keep:
            break
    stacked = np.stack(out_masks) if out_masks else np.zeros((0, n), dtype=masks.dtype)
    return out_items, stacked


def conjunctions(
    candidates: Candidates,
    data: Data,
    *,
    min_support: float,
    depth: int = 3,
    weight: np.ndarray | None = None,
    roots: int = 40,
    keep: int = 150,
) -> Candidates:
    """The candidates with their kept conjunctions (up to `depth` conditions) appended,
    grown on the examples `weight` selects (all by default: an inner fold passes its own)."""
    import numpy as np

    items, masks = candidates.items, candidates.masks
    if not items or depth < 2:
        return candidates
    n = masks.shape[1]
    w = np.ones(n) if weight is None else weight
    e = excess(data.gain, data.cost, w)
    atom_sums = stats(masks, e, data.cost, w)
    _, atom_lcb = lower_bound(atom_sums, SCREEN_Z)
    root_rows = _roots(items, atom_sums[:, 2], roots)
    level_items = [items[j] for j in root_rows]
    level_masks = masks[root_rows]
    level_lcb = atom_lcb[root_rows]
    all_items = list(items)
    all_masks = [masks]
    known = {np.packbits(m.astype(bool)).tobytes() for m in masks}
    for _ in range(depth - 1):
        grown_items, grown_masks = _grow(
            masks,
            items,
            level_masks,
            level_items,
            level_lcb,
            atom_lcb,
            data,
            e,
            w,
            min_support,
            keep,
        )
        fresh = [
            j
            for j, m in enumerate(grown_masks)
            if np.packbits(m.astype(bool)).tobytes() not in known
        ]
        if not fresh:
            break
        grown_items = [grown_items[j] for j in fresh]
        grown_masks = grown_masks[fresh]
        known |= {np.packbits(m.astype(bool)).tobytes() for m in grown_masks}
        all_items += grown_items
        all_masks.append(grown_masks)
        sums = stats(grown_masks, e, data.cost, w)
        _, lcb = lower_bound(sums, SCREEN_Z)
        top = np.argsort(-(lcb * sums[:, 1]), kind="stable")[: roots // 2]
        level_items = [grown_items[j] for j in top]
        level_masks = grown_masks[top]
        level_lcb = lcb[top]
    return Candidates(all_items, np.concatenate(all_masks).astype(masks.dtype))
