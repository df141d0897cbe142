"""How an audience is read page after page: in the walk or the set shape, by a pure plan (no SQL, no I/O).

The set shape builds the member set and takes the first members after the cursor; the walk shape tests
profiles in id order after the cursor until it has a page. Walking wins when members are dense among
the profiles walked. A cursor carries the next page's shape as a *walk span*: 0 for the set shape,
else walk while a page spans at most that many profiles. Pages and exports decide by this one plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SET_SHAPE, WALK_SHAPE = 0, 1
MAX_WALK_SPAN = 2**62  # "walk on, however sparse", within a cursor's 64 bits


@dataclass(frozen=True)
class PagePolicy:
    """The figures the plan decides by; an app holds one (tests make them small). docs/performance.md
    says how they were measured."""

    # Walking profiles in id order beats first building the member set from this share of members on.
    walk_density: float = 0.25
    # Profiles a first page samples to judge the density, and an export: small next to the read they steer.
    page_density_sample: int = 200
    export_density_sample: int = 2000
    # What testing one profile in the walk shape costs, about.
    walk_seconds_per_profile: float = 1e-6
    # Members an export reads and encodes at a time from its one streamed statement.
    export_chunk: int = 5000

    def walks_at(self, members: int, profiles: int) -> bool:
        """Whether an audience with `members` among `profiles` (a sample, or a page's id span) is walked."""
        return profiles > 0 and members >= self.walk_density * profiles

    def first_walk_span(self, first: int, walks: bool) -> int:
        """The walk span of a first page of `first` members: a walked one walks on while pages keep
        `walk_density` of their span members."""
        if not walks:
            return 0
        return walk_span(first / self.walk_density if self.walk_density > 0 else math.inf)

    def next_walk_span(self, walk_span_now: int, span: int, seconds: float, complement: bool) -> int:
        """The next page's walk span, after a page of this one's shape that spanned `span` profiles in
        `seconds`. A set-shape page slower than walking its span turns to walking as far as that time
        would walk; a walk whose members thinned out (span past the walk span) turns to the set shape,
        except for a complement, which always walks."""
        if walk_span_now == 0:
            walking_is_cheaper = span * self.walk_seconds_per_profile < seconds
            return walk_span(seconds / self.walk_seconds_per_profile) if walking_is_cheaper else 0
        if not complement and span > walk_span_now:
            return 0
        return walk_span_now


def walk_span(profiles: float) -> int:
    """A walk span for a cursor: whole, at least 1 (0 is the set shape), within a cursor's 64 bits."""
    return MAX_WALK_SPAN if profiles >= MAX_WALK_SPAN else max(1, math.ceil(profiles))


def shape_of(walk_span_now: int) -> int:
    return WALK_SHAPE if walk_span_now > 0 else SET_SHAPE
