"""The words of the language: what starts a statement, and what cannot be a name."""

STATEMENT_KEYWORDS = (
    "policy",
    "import",
    "tier",
    "keywords",
    "classifier",
    "rule",
    "default",
    "escalate",
    "test",
    "shadow",
    "sticky",
)
LANGUAGE_KEYWORDS = frozenset(
    {*STATEMENT_KEYWORDS, "using", "labels", "and", "or", "not", "in", "contains", "any", "all"}
    | {"matches", "has", "on", "max", "by", "true", "false", "never"}
    | {"sample"}
)
