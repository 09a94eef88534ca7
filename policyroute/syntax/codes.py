"""The diagnostic registry: every code the checker, parser and loader can report, once.

Codes are a contract: tools and CI configurations match on them. Never renumber; retire
(a retired or reserved code stays here, marked `reserved`, so it is never reused). Each entry
has its title (SARIF's rule description, the table in docs/diagnostics.md) and its anchor
in that page. A test keeps this table, the codes the source emits, the documentation and the
goldens the same set; `Diagnostic` refuses a code that is not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]
DOCS_PAGE = "docs/diagnostics.md"


@dataclass(frozen=True, slots=True)
class Code:
    code: str  # E001, W003: E for errors, W for warnings
    title: str
    # Reserved: documented, never emitted (its cases are reported under another code).
    reserved: bool = False

    @property
    def severity(self) -> Severity:
        return "warning" if self.code.startswith("W") else "error"

    @property
    def anchor(self) -> str:
        """Where docs/diagnostics.md explains it: `docs/diagnostics.md#e105`."""
        return f"{DOCS_PAGE}#{self.code.lower()}"


CODES_IN_ORDER: tuple[Code, ...] = (
    # syntax
    Code("E001", "unexpected character or token"),
    Code("E002", "unterminated string"),
    Code("E003", "unterminated regular expression"),
    Code("E004", "invalid escape in a string"),
    Code("E005", "file cannot be read (missing, not UTF-8, too large, or binary)"),
    Code("E006", "nesting too deep"),
    Code("E007", "invalid number"),
    Code("E008", "policy larger than a limit of the language"),
    # declarations and names
    Code("E101", "duplicate name"),
    Code("E102", "unknown tier"),
    Code("E103", "unknown keyword set"),
    Code("E104", "unknown classifier", reserved=True),
    Code("E105", "unknown attribute"),
    Code("E106", "no tier declared"),
    Code("E107", "missing default"),
    Code("E108", "more than one default"),
    Code("E109", "rule after the default"),
    Code("E110", "more than one escalate statement"),
    Code("E111", "policy statement not first, or repeated"),
    Code("E112", "invalid tier declaration"),
    Code("E113", "empty keyword set or empty phrase"),
    Code("E114", "invalid classifier declaration"),
    Code("E115", "invalid option"),
    Code("E116", "unknown escalation trigger"),
    Code("E117", "keyword of the language used as a name"),
    Code("E118", "a tier shadowed twice"),
    Code("E119", "shadow tier nothing is routed above"),
    Code("E125", "invalid sticky window (missing or unknown unit, out of range)"),
    Code("E126", "more than one sticky statement"),
    # types
    Code("E201", "type mismatch"),
    Code("E202", "operator not defined for this attribute"),
    Code("E203", "label outside the classifier's labels"),
    Code("E204", "value out of range"),
    # regexes
    Code("E301", "invalid regular expression"),
    Code("E302", "regex needs backtracking (backreference or lookaround): not allowed"),
    Code("E303", "unknown regex flag"),
    Code("E304", "regex too large"),
    # imports
    Code("E401", "imported file not found"),
    Code("E402", "import leaves the policy's root folder"),
    Code("E403", "import cycle"),
    Code("E404", "name imported twice", reserved=True),
    # tests
    Code("E501", "invalid inline test"),
    Code("E502", "inline test fails (a reload that must pass its tests is refused)"),
    # warnings
    Code("W001", "rule can never decide (shadowed or unsatisfiable)"),
    Code("W002", "default can never be reached"),
    Code("W003", "unused tier"),
    Code("W004", "unused keyword set"),
    Code("W005", "unused classifier"),
    Code("W006", "phrase stands in two keyword sets"),
    Code("W007", "regex matches the empty string"),
    Code("W008", "escalate max larger than the ladder allows"),
    Code("W009", "duplicate phrase in one keyword set"),
    Code("W010", "tiers not ordered cheapest first"),
    Code("W011", "policy too large to analyse: W001 and W002 not checked"),
    Code("W012", "a spend bound that never holds"),
    Code("W013", "prompt tested for text it no longer holds"),
)
REGISTRY: dict[str, Code] = {c.code: c for c in CODES_IN_ORDER}
# code -> title, the form SARIF and the docs table print.
CODES: dict[str, str] = {c.code: c.title for c in CODES_IN_ORDER}


def title(code: str) -> str:
    entry = REGISTRY.get(code)
    return entry.title if entry is not None else code
