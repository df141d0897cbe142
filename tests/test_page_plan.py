"""The page plan (resolvers/page_plan.py): which shape each page of an audience takes, as pure decisions."""

from __future__ import annotations

import pytest

from resolvers.page_plan import MAX_WALK_SPAN, SET_SHAPE, WALK_SHAPE, PagePolicy, shape_of, walk_span

POLICY = PagePolicy(walk_density=0.25, walk_seconds_per_profile=1e-6)


@pytest.mark.parametrize(("members", "profiles", "walks"), [
    (50, 200, True), (49, 200, False), (0, 0, False), (1, 1, True), (0, 5, False),
])
def test_an_audience_walks_from_the_walk_density_on(members: int, profiles: int, walks: bool) -> None:
    assert POLICY.walks_at(members, profiles) is walks


def test_a_walked_first_page_walks_on_while_pages_keep_the_density() -> None:
    assert POLICY.first_walk_span(100, walks=True) == 400  # 100 members a page: 400 profiles at a quarter
    assert POLICY.first_walk_span(100, walks=False) == 0
    assert PagePolicy(walk_density=0.0).first_walk_span(100, walks=True) == MAX_WALK_SPAN


@pytest.mark.parametrize(("span", "seconds", "expected"), [
    (1000, 0.01, 10_000),  # walking 1000 profiles (1 ms) beats the 10 ms that page took: walk as far as 10 ms goes
    (1000, 0.0005, 0),  # the set shape was faster than walking its span: keep it
    (1000, 0.001, 0),  # a tie keeps the set shape
])
def test_a_set_shape_page_turns_to_walking_when_walking_its_span_is_cheaper(span: int, seconds: float, expected: int) -> None:
    assert POLICY.next_walk_span(0, span, seconds, complement=False) == expected


def test_a_walk_turns_to_the_set_shape_where_members_thin_out_but_a_complement_walks_on() -> None:
    assert POLICY.next_walk_span(400, 401, 1.0, complement=False) == 0
    assert POLICY.next_walk_span(400, 400, 1.0, complement=False) == 400
    assert POLICY.next_walk_span(400, 10_000, 1.0, complement=True) == 400


def test_walk_spans_are_whole_positive_and_fit_a_cursor() -> None:
    assert [walk_span(x) for x in (0.0, 0.2, 1.0, 1.5, 2**70)] == [1, 1, 1, 2, MAX_WALK_SPAN]
    assert (shape_of(0), shape_of(1)) == (SET_SHAPE, WALK_SHAPE)
