"""Judges without a model, for structured work: the answer validates against a JSON schema,
or equals a reference answer. Scores are 1 (pass) or 0 (fail)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..runtime.answers import extract_json


class SchemaJudge:
    """Passes an answer whose JSON (bare, fenced, or inside prose) validates."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        import jsonschema

        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)  # a broken schema is said at once, not per answer
        self._validator = cls(schema)

    def score(self, answer: str, reference: Any = None) -> float:
        try:
            value = extract_json(answer)
        except ValueError:
            return 0.0
        return 1.0 if self._validator.is_valid(value) else 0.0


class ReferenceJudge:
    """Passes an answer equal to the pair's reference: as JSON values when the reference is
    not a string (or both parse), else as text with surrounding white space and case ignored."""

    def score(self, answer: str, reference: Any) -> float:
        if not isinstance(reference, str):
            try:
                return 1.0 if extract_json(answer) == reference else 0.0
            except ValueError:
                return 0.0
        try:
            if json.loads(reference) == extract_json(answer):
                return 1.0
        except ValueError:
            pass
        return 1.0 if _norm(answer) == _norm(reference) else 0.0


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()
