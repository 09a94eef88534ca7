"""The tiers a learned policy routes between: read from TIERS.route, imported or repeated.

TIERS.route may be a file of declarations made to be imported (no rules, no default) or a
whole policy; only its tiers are used. The learned policy imports it when the import path
stays inside the learned file's folder (the language confines imports there), and otherwise
repeats the declarations of the two tiers it routes to, every property kept.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..compiler.check import check
from ..compiler.loader import load_path
from ..decision import Tier
from ..syntax import ast
from ..syntax.diagnostics import PolicyError
from ..syntax.formatter import fmt_num, fmt_str


@dataclass(frozen=True, slots=True)
class TierFile:
    path: Path
    tiers: tuple[Tier, ...]
    declarations: dict[str, str]  # tier name -> its declaration, every property kept
    names: frozenset[str]  # every name the file declares (tiers, keyword sets, classifiers)
    only_tiers: bool  # declares nothing but tiers (and imports nothing else)

    def tier(self, name_or_model: str) -> Tier | None:
        """The tier called `name_or_model`, or the one that declares that model id."""
        for t in self.tiers:
            if t.name == name_or_model:
                return t
        for t in self.tiers:
            if t.model == name_or_model:
                return t
        return None


def read_tiers(path: Path) -> TierFile:
    """The tiers of a `.route` file; PolicyError when it has errors or declares none."""
    loaded = load_path(path)
    checked, found = check(loaded.statements, loaded.imports_failed())
    errors = [d for d in [*loaded.diagnostics, *found] if d.is_error]
    if errors:
        raise PolicyError(errors)
    declarations: dict[str, str] = {}
    names: set[str] = set()
    for located in loaded.statements:
        node = located.node
        if isinstance(node, (ast.TierDecl, ast.KeywordsDecl, ast.ClassifierDecl)):
            names.add(node.name.name)
        if isinstance(node, ast.TierDecl):
            declarations[node.name.name] = _declaration(node)
    only = not checked.keywords and not checked.classifiers
    return TierFile(path.resolve(), tuple(checked.tiers), declarations, frozenset(names), only)


def _declaration(node: ast.TierDecl) -> str:
    props = "  ".join(f"{p.name.name} {fmt_num(p.value)}" for p in node.props)
    return f"tier {node.name.name} = {fmt_str(node.model.value)} {{ {props} }}"


def tier_lines(tiers: TierFile, used: Sequence[str], out: Path) -> list[str]:
    """`import "..."` when TIERS.route declares only tiers and is reachable from `out`'s
    folder, else the declarations of the tiers `used`, cheapest first."""
    folder = out.resolve().parent
    # Imported keyword sets would share phrases with learned ones (W006), so a file that
    # declares more than tiers is repeated from, not imported.
    if tiers.only_tiers and tiers.path.is_relative_to(folder):
        rel = Path(os.path.relpath(tiers.path, folder)).as_posix()
        return [f'import "{rel}"']
    order = [t.name for t in tiers.tiers]
    why = (
        "an import may not leave this folder"
        if tiers.only_tiers
        else "it declares more than tiers, which an import would bring in"
    )
    lines = [f"# Tiers repeated from {tiers.path.name} ({why})."]
    lines += [tiers.declarations[name] for name in sorted(used, key=order.index)]
    return lines
