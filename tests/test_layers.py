"""The package's layout holds: no lower stage imports a higher one, and the package's top stays
small (ARCHITECTURE.md, "Where each thing lives").

The stages, lowest first, as ARCHITECTURE.md orders them (syntax < compiler < policy <
analysis/measure/learn < runtime < server/lsp/cli), with the small shared modules placed
where their imports put them. A module may import its own stage and any lower one. Imports
under `if TYPE_CHECKING:` never run, so they are not held to the order (the compiler names
`Policy` in its annotations); imports inside functions run, so they are.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "policyroute"

STAGES: list[set[str]] = [
    {"_version", "jsonsafe", "pairs", "tracing", "syntax"},
    {"decision", "request"},
    {"compiler"},
    {"policy"},
    {"analysis", "measure", "learn", "store"},
    {"runtime", "judge"},
    {"server", "lsp", "cli", "__init__"},  # __init__ is the public API over everything
]
RANK = {unit: i for i, units in enumerate(STAGES) for unit in units}


def _unit(module: str) -> str:
    """The stage a module belongs to: `policyroute.compiler.atoms` -> `compiler`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_of(path: Path) -> tuple[str, str]:
    """(module, package its relative imports start from)."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def _type_only(tree: ast.Module) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return inside


def _imports(path: Path) -> list[tuple[int, str]]:
    return _imports_of(path.read_text(encoding="utf-8"), path)


def _imports_of(source: str, path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for each import of `policyroute` that runs, in the source of
    the module at `path` (which says where its relative imports start)."""
    tree = ast.parse(source)
    skip = _type_only(tree)
    _, package = _module_of(path)
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "policyroute":  # `from .. import x`: x is a stage or a name of __init__
                out.extend((node.lineno, f"policyroute.{a.name}") for a in node.names)
            else:
                out.append((node.lineno, target))
    return [(line, t) for line, t in out if t == "policyroute" or t.startswith("policyroute.")]


def _units() -> set[str]:
    return {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if _is_module(p)}


def _is_module(p: Path) -> bool:
    return (p.is_file() and p.suffix == ".py") or (p.is_dir() and (p / "__init__.py").exists())


def test_every_part_of_the_package_has_a_stage() -> None:
    assert _units() - RANK.keys() == set(), "place the new module in STAGES"


def test_no_lower_stage_imports_a_higher_one() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module, _ = _module_of(path)
        here = _unit(module)
        for line, target in _imports(path):
            there = _unit(target)
            if there not in RANK:  # a name of __init__ (`from .. import __version__`)
                there = "__init__"
            if RANK[there] > RANK[here]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {here} imports {there}")
    assert wrong == []


def test_the_check_sees_imports_inside_functions_and_skips_type_only_ones(tmp_path: Path) -> None:
    # The rule above is only as good as the import finder: pin what it reports.
    source = (
        "from typing import TYPE_CHECKING\n"
        "from ..policy import Policy\n"
        "if TYPE_CHECKING:\n"
        "    from ..runtime import Router\n"
        "def f():\n"
        "    from policyroute.server import app\n"
    )
    found = sorted(_imports_of(source, PACKAGE / "compiler" / "probe.py"))
    assert found == [(2, "policyroute.policy"), (6, "policyroute.server")]


def test_the_package_top_holds_at_most_six_modules_besides_init() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= 6, top
