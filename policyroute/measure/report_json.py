"""A replay report as JSON: the keys of `Report.to_json`, floats to six decimals."""

from __future__ import annotations

import json
import math
from typing import Any

from .report import ImpactReport, Report


def _tidy(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _tidy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tidy(v) for v in value]
    return value


def render(report: Report | ImpactReport) -> str:
    return json.dumps(_tidy(report.to_json()), indent=2) + "\n"
