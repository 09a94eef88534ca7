"""A diff region in words names each alternative once (issue 24): cases that simplify to the
same conditions are one case, and a case that holds for any request is the whole region."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policyroute
from policyroute.analysis import AnalysisTooLarge, diff
from policyroute.analysis.describe import Region
from policyroute.syntax.diagnostics import PolicyError

from .strategies import policies


def parts(region_text: str) -> list[str]:
    return region_text.split("; or ")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.tuples(policies(), policies()))
def test_no_alternative_is_printed_twice(pair: tuple[str, str]) -> None:
    try:
        old, new = (policyroute.loads(text) for text in pair)
        found = diff(old, new)
    except (PolicyError, AnalysisTooLarge):
        return
    for d in found:
        assert len(set(d.cases)) == len(d.cases), d.describe()
        assert len(set(parts(d.where))) == len(parts(d.where)), d.describe()
        if len(d.cases) > 1:
            assert () not in d.cases


def test_a_region_of_repeated_cases_reads_as_one() -> None:
    from policyroute.analysis.describe import distinct

    assert distinct([("a", "b"), ("a", "b"), ("c",)]) == (("a", "b"), ("c",))
    assert distinct([("a",), (), ("c",)]) == ((),)
    assert Region(distinct([("x == 1",), ("x == 1",)]), True).text() == "x == 1"
