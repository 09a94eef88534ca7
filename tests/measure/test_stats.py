"""Replay statistics against hand-computed cases and properties that must hold on any data."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyroute.measure.stats import difference, quality
from policyroute.measure.tally import Row

TIERS = ["cheap", "mid", "top"]


def rows(
    groups: list[str], chosen: list[int], cheap: list, top: list, mid: list | None = None
) -> list[Row]:
    mid = mid or [None] * len(groups)
    return [
        (g, (c,), (0,), (a, m, b))
        for g, c, a, m, b in zip(groups, chosen, cheap, mid, top, strict=True)
    ]


def test_hand_computed_four_requests() -> None:
    # cheap scores 1,0,1,0 (mean .5); top 1,1,1,0 (mean .75). The policy sends the 2nd and
    # 4th to top: it scores 1,1,1,0 = .75, all of top's score, the whole gap.
    data = rows(["a", "b", "c", "d"], [0, 2, 0, 2], [1, 0, 1, 0], [1, 1, 1, 0])
    q = quality(data, 0, TIERS, TIERS, bootstrap=500, seed=1)
    assert q is not None
    assert (q.n, q.groups, q.cheap, q.top) == (4, 4, "cheap", "top")
    assert q.score == pytest.approx(0.75)
    assert q.tier_scores == {"cheap": pytest.approx(0.5), "top": pytest.approx(0.75)}
    assert q.pct_of_top == pytest.approx(100.0)
    assert q.pgr == pytest.approx(1.0)
    assert q.shares == {"cheap": 0.5, "top": 0.5}
    # Random at the same share: half the requests on each tier, chosen at random:
    # .5 * .5 + .5 * .75 = .625.
    assert q.random_same_share == pytest.approx(0.625)
    assert q.lift == pytest.approx(0.125)


def test_hand_computed_partial_gap() -> None:
    # cheap 0,0,0,0,1 (.2); top 1,1,1,1,1 (1.0); policy sends only the first to top:
    # 1,0,0,0,1 = .4; pct_of_top 40%; pgr (.4-.2)/(1-.2) = .25;
    # random with 1 of 5 on top: .8*.2 + .2*1 = .36; lift .04.
    data = rows(list("abcde"), [2, 0, 0, 0, 0], [0, 0, 0, 0, 1], [1, 1, 1, 1, 1])
    q = quality(data, 0, TIERS, TIERS, bootstrap=200)
    assert q is not None
    assert q.score == pytest.approx(0.4)
    assert q.pct_of_top == pytest.approx(40.0)
    assert q.pgr == pytest.approx(0.25)
    assert q.random_same_share == pytest.approx(0.36)
    assert q.lift == pytest.approx(0.04)


def test_requests_without_outcomes_on_the_compared_tiers_are_left_out() -> None:
    # The third request went to "mid", which has no outcome: it is not scored, never zero.
    data = rows(["a", "b", "c"], [0, 2, 1], [1, 0, 1], [1, 1, 1])
    q = quality(data, 0, TIERS, TIERS, bootstrap=100)
    assert q is not None
    assert q.n == 2
    assert q.score == pytest.approx(1.0)
    assert "mid" not in q.tier_scores


def test_no_outcomes_at_all_gives_none() -> None:
    data = [("a", (0,), (0,), (None, None, None))]
    assert quality(data, 0, TIERS, TIERS) is None


def test_groups_widen_the_interval() -> None:
    # Ten groups of ten identical requests carry the information of ten requests, not a
    # hundred: resampling groups must give an interval about sqrt(10) times wider.
    cheap = [float(i % 2) for i in range(100)]
    top = [1.0] * 100
    chosen = [0] * 100
    by_group = rows(
        [f"g{i // 10}" for i in range(100)], chosen, [float((i // 10) % 2) for i in range(100)], top
    )
    alone = rows([f"r{i}" for i in range(100)], chosen, cheap, top)
    qg = quality(by_group, 0, TIERS, TIERS, bootstrap=2000, seed=3)
    qa = quality(alone, 0, TIERS, TIERS, bootstrap=2000, seed=3)
    assert qg is not None and qa is not None
    assert qg.groups == 10 and qa.groups == 100
    assert qg.score == qa.score == pytest.approx(0.5)
    width_g = qg.ci95.high - qg.ci95.low
    width_a = qa.ci95.high - qa.ci95.low
    assert width_g > 2.2 * width_a


def test_a_policy_that_always_beats_random_has_the_smallest_p_value() -> None:
    # The policy sends to top exactly the requests cheap gets wrong (and top gets right):
    # in every resample it beats random at the same share.
    n = 60
    cheap = [float(i % 3 != 0) for i in range(n)]
    top = [1.0] * n
    chosen = [2 if c == 0 else 0 for c in cheap]
    q = quality(
        rows([str(i) for i in range(n)], chosen, cheap, top), 0, TIERS, TIERS, bootstrap=999
    )
    assert q is not None
    assert q.lift > 0
    assert q.p_value == pytest.approx(1 / 1000)
    assert q.lift_ci95.low > 0


def test_the_same_seed_gives_the_same_intervals() -> None:
    data = rows(
        [str(i) for i in range(30)],
        [i % 3 for i in range(30)],
        [i % 2 for i in range(30)],
        [1] * 30,
    )
    a = quality(data, 0, TIERS, TIERS, bootstrap=300, seed=7)
    b = quality(data, 0, TIERS, TIERS, bootstrap=300, seed=7)
    c = quality(data, 0, TIERS, TIERS, bootstrap=300, seed=8)
    assert a == b
    assert a != c


def test_difference_hand_computed() -> None:
    # Old sends everything to cheap (0,1,1,0: .5); new sends the first to top (1,1,1,0: .75).
    data: list[Row] = [
        (str(i), (0, c), (0, 0), (s_cheap, None, s_top))
        for i, (c, s_cheap, s_top) in enumerate([(2, 0, 1), (0, 1, 1), (0, 1, 1), (0, 0, 0)])
    ]
    d = difference(data, TIERS, TIERS, TIERS, bootstrap=500)
    assert d is not None
    assert (d.n, d.old, d.new, d.diff) == (4, 0.5, 0.75, 0.25)
    assert d.ci95.low <= 0.25 <= d.ci95.high


score = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0, 10, allow_nan=False))


@st.composite
def datasets(draw: st.DrawFn) -> list[Row]:
    n = draw(st.integers(1, 40))
    groups = draw(st.lists(st.sampled_from("abcdefgh"), min_size=n, max_size=n))
    chosen = draw(st.lists(st.sampled_from([0, 2]), min_size=n, max_size=n))
    cheap = draw(st.lists(score, min_size=n, max_size=n))
    top = draw(st.lists(score, min_size=n, max_size=n))
    return rows(groups, chosen, cheap, top)


@settings(max_examples=60, deadline=None)
@given(datasets(), st.sampled_from([0, 2]))
def test_all_to_one_tier_reproduces_that_baseline_exactly(data: list[Row], tier: int) -> None:
    data = [(g, (tier,), r, s) for g, _, r, s in data]
    q = quality(data, 0, TIERS, TIERS, bootstrap=50)
    assert q is not None
    name = TIERS[tier]
    assert q.score == q.tier_scores[name]
    assert q.random_same_share == q.score
    assert q.lift == 0.0
    assert q.shares[name] == 1.0


@settings(max_examples=60, deadline=None)
@given(datasets(), st.integers(0, 2**16))
def test_shares_sum_to_one_and_intervals_contain_their_points(data: list[Row], seed: int) -> None:
    q = quality(data, 0, TIERS, TIERS, bootstrap=60, seed=seed)
    assert q is not None
    assert math.isclose(sum(q.shares.values()), 1.0)
    assert q.ci95.low <= q.score <= q.ci95.high
    assert q.random_ci95.low <= q.random_same_share <= q.random_ci95.high
    assert q.lift_ci95.low <= q.lift <= q.lift_ci95.high
    if q.pct_of_top is not None:
        assert q.pct_of_top_ci95 is not None
        assert q.pct_of_top_ci95.low <= q.pct_of_top <= q.pct_of_top_ci95.high
    if q.pgr is not None:
        assert q.pgr_ci95 is not None
        assert q.pgr_ci95.low <= q.pgr <= q.pgr_ci95.high
    assert 0 < q.p_value <= 1
    # The score lies between the worst and best tier of each request.
    low = sum(min(s[0], s[2]) for _, _, _, s in data) / len(data)  # type: ignore[type-var]
    high = sum(max(s[0], s[2]) for _, _, _, s in data) / len(data)  # type: ignore[type-var]
    assert low - 1e-9 <= q.score <= high + 1e-9
