"""The checks every routing attribute passes, wherever it comes from: keyword arguments,
the `route` object of request JSON, Messages API parameters. One set, so the Python API and
the CLI accept and refuse exactly the same values, and say where and why."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..decision import Classification


class RequestError(ValueError):
    """A request (JSON, parameters or attributes) that cannot be read; says where and why."""


def type_name(value: Any) -> str:
    return "a boolean" if isinstance(value, bool) else f"{type(value).__name__} {value!r:.40}"


def count(where: str, value: Any) -> int:
    """A whole number >= 0. An integral float (JSON `3.0`) is accepted; a string is not."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    else:
        raise RequestError(f"{where}: must be a whole number, got {type_name(value)}")
    if number < 0:
        raise RequestError(f"{where}: must be 0 or more, got {number}")
    return number


def number(where: str, value: Any) -> int | float:
    """A finite number (not a boolean)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RequestError(f"{where}: must be a number, got {type_name(value)}")
    return value


def string(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise RequestError(f"{where}: must be a string, got {type_name(value)}")
    return value


def metadata(where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise RequestError(f"{where}: must be an object, got {type_name(value)}")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise RequestError(f"{where}: keys must be strings, got {type_name(key)}")
        if not isinstance(item, (str, int, float)):  # bool is an int
            raise RequestError(
                f"{where}.{key}: must be a string, number or boolean, got {type_name(item)}"
            )
        out[key] = item
    return out


def answers(where: str, value: Any) -> dict[str, Classification]:
    """Classifier answers the caller already knows: {"NAME": {"label": L, "confidence": C}}
    or {"NAME": "L"} (confidence 1). A policy uses them instead of asking the classifier."""
    if not isinstance(value, Mapping):
        raise RequestError(f"{where}: must be an object, got {type_name(value)}")
    out: dict[str, Classification] = {}
    for name, answer in value.items():
        if not isinstance(name, str):
            raise RequestError(f"{where}: keys must be strings, got {type_name(name)}")
        if isinstance(answer, Classification):
            label, confidence = answer.label, answer.confidence
        elif isinstance(answer, str):
            label, confidence = answer, 1.0
        elif isinstance(answer, Mapping):
            extra = set(answer) - {"label", "confidence"}
            if extra:
                raise RequestError(
                    f"{where}.{name}: unknown key(s) {', '.join(sorted(map(str, extra)))}; "
                    "known: confidence, label"
                )
            label = answer.get("label")
            confidence = answer.get("confidence", 1.0 if label is not None else 0.0)
        else:
            raise RequestError(
                f"{where}.{name}: must be a label or an object with 'label' and 'confidence', "
                f"got {type_name(answer)}"
            )
        if label is not None and not isinstance(label, str):
            raise RequestError(f"{where}.{name}.label: must be a string, got {type_name(label)}")
        out[name] = Classification(
            label, confidence_value(f"{where}.{name}.confidence", confidence)
        )
    return out


def confidence_value(where: str, value: Any) -> float:
    """A classifier confidence: a number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise RequestError(f"{where}: must be a number in [0, 1], got {type_name(value)}")
    if not 0 <= value <= 1:
        raise RequestError(f"{where}: must be in [0, 1], got {value}")
    return float(value)
