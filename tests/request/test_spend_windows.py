"""The spend windows: the last window of each kind is remembered (a serve request counts its
spend in the windows of its own time), and that never changes what a time's window is."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from policyroute.request.spend import WINDOWS, window_of

# 1970 to 2100, with times on and next to window boundaries as likely as any.
_HOURS = st.integers(0, 1_140_000).map(lambda h: h * 3600.0)
TIMES = st.one_of(
    st.floats(0, 4.1e9),
    st.builds(lambda b, d: max(0.0, b + d), _HOURS, st.sampled_from([-1e-3, 0.0, 1e-3, 59.5])),
)


def calendar(window: str, at: float) -> tuple[str, float]:
    t = datetime.fromtimestamp(at, UTC)
    if window == "hour":
        start = t.replace(minute=0, second=0, microsecond=0)
        end = start.timestamp() + 3600
        return start.strftime("%Y%m%d%H"), end
    if window == "day":
        start = t.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.strftime("%Y%m%d"), start.timestamp() + 86_400
    start = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start.strftime("%Y%m"), start.replace(year=year, month=month).timestamp()


@given(st.lists(st.tuples(st.sampled_from(WINDOWS), TIMES), min_size=1, max_size=40))
def test_a_remembered_window_is_the_calendar_window(calls: list[tuple[str, float]]) -> None:
    for window, at in calls:
        assert window_of(window, at) == calendar(window, at)
        assert window_of(window, at) == calendar(window, at)  # now remembered
