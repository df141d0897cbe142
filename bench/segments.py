"""The reference segments: each one's SegmentFilter input, hand-written SQLite SQL and DuckDB SQL.

Hand-written SQL takes named parameters (see `parameters`): metric ids looked up once, as a person
writing SQL for this store would; windows as integer microseconds. Each segment lists one or more
hand-written shapes; the bench times them all and reports the fastest as "best hand-written".
`INDEXED BY` pins the (metric_id, ts, profile_id) index where SQLite's planner would otherwise pick
a skip-scan of (profile_id, metric_id, ts) (see shared/notes/measured.md).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from vocabulary.agent_metrics import ESCALATED, RECOMMENDED, STARTED, metric_key
from vocabulary.timestamps import MICROS_PER_DAY, MICROS_PER_HOUR

PLACED_ORDER = "Placed Order"
VIEWED_PRODUCT = "Viewed Product"

BY_METRIC_TS = "INDEXED BY ix_events_metric_ts_profile"
BY_PROFILE = "INDEXED BY ix_events_profile_metric_ts"
BY_CHANNEL = "INDEXED BY ix_events_metric_channel_ts"


@dataclass(frozen=True)
class Segment:
    key: str
    title: str
    filter: dict[str, Any]  # the GraphQL SegmentFilter input
    hand: dict[str, str]  # shape name → hand-written SQLite count query
    duckdb: str  # the same count in DuckDB SQL ($name parameters)
    notes: list[str] = field(default_factory=list)
    postgres: dict[str, str] = field(default_factory=dict)  # shape name → hand-written PostgreSQL count query


def parameters(db: sqlite3.Connection, as_of: int) -> dict[str, int]:
    """Bind values of the hand-written queries: metric ids and window bounds."""
    ids = {key: metric_id for metric_id, key in db.execute("SELECT id, name_key FROM metrics")}
    return {
        "as_of": as_of,
        "d7": as_of - 7 * MICROS_PER_DAY,
        "d30": as_of - 30 * MICROS_PER_DAY,
        "d90": as_of - 90 * MICROS_PER_DAY,
        "h48": 48 * MICROS_PER_HOUR,
        "m_started": ids[metric_key(STARTED.name)],
        "m_rec": ids[metric_key(RECOMMENDED.name)],
        "m_esc": ids[metric_key(ESCALATED.name)],
        "m_order": ids[metric_key(PLACED_ORDER)],
        "m_view": ids[metric_key(VIEWED_PRODUCT)],
    }


def _did(metric: str, **condition: Any) -> dict[str, Any]:
    return {"did": {"metric": metric, **condition}}


REC_7D = _did(RECOMMENDED.name, within={"lastDays": 7})

SEGMENTS: list[Segment] = [
    Segment(
        "rec_7d", "Recommended in the last 7 days", REC_7D,
        hand={
            "DISTINCT": f"""SELECT count(*) FROM (SELECT DISTINCT profile_id FROM events {BY_METRIC_TS}
                WHERE metric_id = :m_rec AND ts >= :d7 AND ts <= :as_of)""",
            "count(DISTINCT)": f"""SELECT count(DISTINCT profile_id) FROM events {BY_METRIC_TS}
                WHERE metric_id = :m_rec AND ts >= :d7 AND ts <= :as_of""",
        },
        postgres={
            "count(DISTINCT)": """SELECT count(DISTINCT profile_id) FROM events
                WHERE metric_id = :m_rec AND ts >= :d7 AND ts <= :as_of""",
            "DISTINCT": """SELECT count(*) FROM (SELECT DISTINCT profile_id FROM events
                WHERE metric_id = :m_rec AND ts >= :d7 AND ts <= :as_of) AS members""",
        },
        duckdb="""SELECT count(DISTINCT profile_id) FROM events
            WHERE metric_id = $m_rec AND ts >= $d7 AND ts <= $as_of""",
    ),
    Segment(
        "rec_7d_no_order", "… and no Placed Order in the last 7 days",
        {"and": [REC_7D, {"didNot": {"metric": PLACED_ORDER, "within": {"lastDays": 7}}}]},
        hand={
            "EXCEPT": f"""SELECT count(*) FROM (
                SELECT profile_id FROM events {BY_METRIC_TS} WHERE metric_id = :m_rec AND ts >= :d7 AND ts <= :as_of
                EXCEPT
                SELECT profile_id FROM events {BY_METRIC_TS} WHERE metric_id = :m_order AND ts >= :d7 AND ts <= :as_of)""",
            "NOT EXISTS per recipient": f"""SELECT count(DISTINCT r.profile_id) FROM events r {BY_METRIC_TS}
                WHERE r.metric_id = :m_rec AND r.ts >= :d7 AND r.ts <= :as_of
                AND NOT EXISTS (SELECT 1 FROM events o {BY_PROFILE} WHERE o.profile_id = r.profile_id
                                AND o.metric_id = :m_order AND o.ts >= :d7 AND o.ts <= :as_of)""",
        },
        postgres={
            "EXCEPT": """SELECT count(*) FROM (
                SELECT profile_id FROM events WHERE metric_id = :m_rec AND ts >= :d7 AND ts <= :as_of
                EXCEPT
                SELECT profile_id FROM events WHERE metric_id = :m_order AND ts >= :d7 AND ts <= :as_of) AS members""",
            "NOT EXISTS": """SELECT count(DISTINCT r.profile_id) FROM events r
                WHERE r.metric_id = :m_rec AND r.ts >= :d7 AND r.ts <= :as_of
                AND NOT EXISTS (SELECT 1 FROM events o WHERE o.profile_id = r.profile_id
                                AND o.metric_id = :m_order AND o.ts >= :d7 AND o.ts <= :as_of)""",
        },
        duckdb="""SELECT count(*) FROM (
            SELECT profile_id FROM events WHERE metric_id = $m_rec AND ts >= $d7 AND ts <= $as_of
            EXCEPT
            SELECT profile_id FROM events WHERE metric_id = $m_order AND ts >= $d7 AND ts <= $as_of)""",
    ),
    Segment(
        "esc_2x_30d", "Escalated at least 2 times in 30 days",
        _did(ESCALATED.name, count={"atLeast": 2}, within={"lastDays": 30}),
        hand={
            "GROUP BY HAVING": f"""SELECT count(*) FROM (SELECT profile_id FROM events {BY_METRIC_TS}
                WHERE metric_id = :m_esc AND ts >= :d30 AND ts <= :as_of
                GROUP BY profile_id HAVING count(*) >= 2)""",
        },
        postgres={
            "GROUP BY HAVING": """SELECT count(*) FROM (SELECT profile_id FROM events
                WHERE metric_id = :m_esc AND ts >= :d30 AND ts <= :as_of
                GROUP BY profile_id HAVING count(*) >= 2) AS members""",
        },
        duckdb="""SELECT count(*) FROM (SELECT profile_id FROM events
            WHERE metric_id = $m_esc AND ts >= $d30 AND ts <= $as_of GROUP BY profile_id HAVING count(*) >= 2)""",
    ),
    Segment(
        "never_started", "Never started a conversation",
        {"didNot": {"metric": STARTED.name}},
        hand={
            "total − DISTINCT (metric,ts) index": f"""SELECT (SELECT count(*) FROM profiles) - (SELECT count(*) FROM (
                SELECT DISTINCT profile_id FROM events {BY_METRIC_TS} WHERE metric_id = :m_started AND ts <= :as_of))""",
            "total − DISTINCT (profile,metric) index": f"""SELECT (SELECT count(*) FROM profiles) - (
                SELECT count(DISTINCT profile_id) FROM events {BY_PROFILE} WHERE metric_id = :m_started AND ts <= :as_of)""",
            "NOT EXISTS per profile": f"""SELECT count(*) FROM profiles p WHERE NOT EXISTS (
                SELECT 1 FROM events e {BY_PROFILE} WHERE e.profile_id = p.id AND e.metric_id = :m_started
                AND e.ts <= :as_of)""",
            "total − profile_metrics rows": """SELECT (SELECT count(*) FROM profiles) - (SELECT count(*) FROM profile_metrics
                WHERE metric_id = :m_started AND first_ts <= :as_of)""",
        },
        postgres={
            "total − profile_metrics rows": """SELECT (SELECT count(*) FROM profiles) - (SELECT count(*) FROM profile_metrics
                WHERE metric_id = :m_started AND first_ts <= :as_of)""",
            "NOT EXISTS per profile": """SELECT count(*) FROM profiles p WHERE NOT EXISTS (
                SELECT 1 FROM profile_metrics f WHERE f.metric_id = :m_started AND f.profile_id = p.id
                AND f.first_ts <= :as_of)""",
        },
        duckdb="""SELECT (SELECT count(*) FROM profiles) - (SELECT count(DISTINCT profile_id) FROM events
            WHERE metric_id = $m_started AND ts <= $as_of)""",
    ),
    Segment(
        "rec_not_followed", "Recommended in 7 days, not followed by Placed Order within 48 h",
        _did(RECOMMENDED.name, within={"lastDays": 7}, notFollowedBy={"metric": PLACED_ORDER, "withinHours": 48}),
        hand={
            "NOT EXISTS on (profile,metric,ts)": f"""SELECT count(DISTINCT r.profile_id) FROM events r {BY_METRIC_TS}
                WHERE r.metric_id = :m_rec AND r.ts >= :d7 AND r.ts <= :as_of - :h48
                AND NOT EXISTS (SELECT 1 FROM events o {BY_PROFILE} WHERE o.profile_id = r.profile_id
                                AND o.metric_id = :m_order AND o.ts > r.ts AND o.ts <= r.ts + :h48 AND o.ts <= :as_of)""",
        },
        postgres={
            "NOT EXISTS": """SELECT count(DISTINCT r.profile_id) FROM events r
                WHERE r.metric_id = :m_rec AND r.ts >= :d7 AND r.ts <= :as_of - :h48
                AND NOT EXISTS (SELECT 1 FROM events o WHERE o.profile_id = r.profile_id
                                AND o.metric_id = :m_order AND o.ts > r.ts AND o.ts <= r.ts + :h48 AND o.ts <= :as_of)""",
            "NOT EXISTS, orders after the window start (hash anti-join)": """SELECT count(DISTINCT r.profile_id) FROM events r
                WHERE r.metric_id = :m_rec AND r.ts >= :d7 AND r.ts <= :as_of - :h48
                AND NOT EXISTS (SELECT 1 FROM events o WHERE o.profile_id = r.profile_id AND o.metric_id = :m_order
                                AND o.ts > r.ts AND o.ts <= r.ts + :h48 AND o.ts <= :as_of AND o.ts > :d7)""",
            "LATERAL": """SELECT count(DISTINCT r.profile_id) FROM events r
                LEFT JOIN LATERAL (SELECT 1 AS hit FROM events o WHERE o.profile_id = r.profile_id
                                   AND o.metric_id = :m_order AND o.ts > r.ts AND o.ts <= r.ts + :h48
                                   AND o.ts <= :as_of LIMIT 1) AS f ON true
                WHERE r.metric_id = :m_rec AND r.ts >= :d7 AND r.ts <= :as_of - :h48 AND f.hit IS NULL""",
        },
        duckdb="""SELECT count(DISTINCT r.profile_id) FROM events r
            WHERE r.metric_id = $m_rec AND r.ts >= $d7 AND r.ts <= $as_of - $h48
            AND NOT EXISTS (SELECT 1 FROM events o WHERE o.profile_id = r.profile_id
                            AND o.metric_id = $m_order AND o.ts > r.ts AND o.ts <= r.ts + $h48 AND o.ts <= $as_of)""",
        notes=["window end is written sargable (ts <= as_of − 48 h)"],
    ),
    Segment(
        "esc_sms_refund", 'Escalated in 30 days where channel = "SMS" and tags contains "refund"',
        _did(ESCALATED.name, within={"lastDays": 30}, where=[
            {"property": "channel", "op": "EQ", "value": "SMS"},
            {"property": "tags", "op": "CONTAINS", "value": "refund"},
        ]),
        hand={
            "channel index + json_each": f"""SELECT count(DISTINCT profile_id) FROM events {BY_CHANNEL}
                WHERE metric_id = :m_esc AND channel = 'SMS' AND ts >= :d30 AND ts <= :as_of
                AND EXISTS (SELECT 1 FROM json_each(properties, '$.tags') WHERE value = 'refund')""",
            "channel index + instr prefilter": f"""SELECT count(DISTINCT profile_id) FROM events {BY_CHANNEL}
                WHERE metric_id = :m_esc AND channel = 'SMS' AND ts >= :d30 AND ts <= :as_of
                AND instr(properties, '"refund"') > 0
                AND EXISTS (SELECT 1 FROM json_each(properties, '$.tags') WHERE value = 'refund')""",
        },
        postgres={
            "channel index + ?": """SELECT count(DISTINCT profile_id) FROM events
                WHERE metric_id = :m_esc AND channel = 'SMS' AND ts >= :d30 AND ts <= :as_of
                AND properties -> 'tags' ? 'refund'""",
            "channel index + @>": """SELECT count(DISTINCT profile_id) FROM events
                WHERE metric_id = :m_esc AND channel = 'SMS' AND ts >= :d30 AND ts <= :as_of
                AND properties -> 'tags' @> '["refund"]'""",
        },
        duckdb="""SELECT count(DISTINCT profile_id) FROM events
            WHERE metric_id = $m_esc AND channel = 'SMS' AND ts >= $d30 AND ts <= $as_of
            AND list_contains(json_extract_string(properties, '$.tags[*]'), 'refund')""",
        notes=["tags are always JSON arrays in seed.py's data"],
    ),
    Segment(
        "order_sum_100_30d", "Placed Order with sum of total ≥ 100 in the last 30 days",
        _did(PLACED_ORDER, within={"lastDays": 30},
             having=[{"function": "SUM", "property": "total", "op": "GTE", "value": 100}]),
        hand={
            "GROUP BY HAVING sum(json_extract)": f"""SELECT count(*) FROM (SELECT profile_id FROM events {BY_METRIC_TS}
                WHERE metric_id = :m_order AND ts >= :d30 AND ts <= :as_of
                GROUP BY profile_id HAVING sum(json_extract(properties, '$.total')) >= 100)""",
            "GROUP BY HAVING sum(->>)": f"""SELECT count(*) FROM (SELECT profile_id FROM events {BY_METRIC_TS}
                WHERE metric_id = :m_order AND ts >= :d30 AND ts <= :as_of
                GROUP BY profile_id HAVING sum(properties ->> '$.total') >= 100)""",
        },
        postgres={
            "GROUP BY HAVING sum((->>)::float8)": """SELECT count(*) FROM (SELECT profile_id FROM events
                WHERE metric_id = :m_order AND ts >= :d30 AND ts <= :as_of
                GROUP BY profile_id HAVING sum((properties ->> 'total')::float8) >= 100) AS members""",
        },
        duckdb="""SELECT count(*) FROM (SELECT profile_id FROM events
            WHERE metric_id = $m_order AND ts >= $d30 AND ts <= $as_of
            GROUP BY profile_id HAVING sum(CAST(json_extract(properties, '$.total') AS DOUBLE)) >= 100)""",
        notes=["totals are always JSON numbers in seed.py's data: the hand-written SQL sums them without a type test"],
    ),
    Segment(
        "started_3_conversations_90d", "3 or more distinct conversations started in the last 90 days",
        _did(STARTED.name, within={"lastDays": 90},
             having=[{"function": "DISTINCT_COUNT", "property": "conversation_id", "op": "GTE", "value": 3}]),
        hand={
            "count(DISTINCT conversation_id column)": f"""SELECT count(*) FROM (SELECT profile_id FROM events {BY_METRIC_TS}
                WHERE metric_id = :m_started AND ts >= :d90 AND ts <= :as_of
                GROUP BY profile_id HAVING count(DISTINCT conversation_id) >= 3)""",
            "count(DISTINCT json_extract)": f"""SELECT count(*) FROM (SELECT profile_id FROM events {BY_METRIC_TS}
                WHERE metric_id = :m_started AND ts >= :d90 AND ts <= :as_of
                GROUP BY profile_id HAVING count(DISTINCT json_extract(properties, '$.conversation_id')) >= 3)""",
        },
        postgres={
            "count(DISTINCT conversation_id column)": """SELECT count(*) FROM (SELECT profile_id FROM events
                WHERE metric_id = :m_started AND ts >= :d90 AND ts <= :as_of
                GROUP BY profile_id HAVING count(DISTINCT conversation_id) >= 3) AS members""",
        },
        duckdb="""SELECT count(*) FROM (SELECT profile_id FROM events
            WHERE metric_id = $m_started AND ts >= $d90 AND ts <= $as_of
            GROUP BY profile_id HAVING count(DISTINCT json_extract_string(properties, '$.conversation_id')) >= 3)""",
        notes=["conversation_id is a string on every agent event (ingest requires it): the hand-written SQL reads its column"],
    ),
    Segment(
        "sms_started_or_esc", "Started on SMS in 30 days OR escalated in 7 days",
        {"or": [
            _did(STARTED.name, within={"lastDays": 30}, where=[{"property": "channel", "op": "EQ", "value": "SMS"}]),
            _did(ESCALATED.name, within={"lastDays": 7}),
        ]},
        hand={
            "UNION": f"""SELECT count(*) FROM (
                SELECT profile_id FROM events {BY_CHANNEL}
                WHERE metric_id = :m_started AND channel = 'SMS' AND ts >= :d30 AND ts <= :as_of
                UNION
                SELECT profile_id FROM events {BY_METRIC_TS} WHERE metric_id = :m_esc AND ts >= :d7 AND ts <= :as_of)""",
        },
        postgres={
            "UNION": """SELECT count(*) FROM (
                SELECT profile_id FROM events
                WHERE metric_id = :m_started AND channel = 'SMS' AND ts >= :d30 AND ts <= :as_of
                UNION
                SELECT profile_id FROM events WHERE metric_id = :m_esc AND ts >= :d7 AND ts <= :as_of) AS members""",
        },
        duckdb="""SELECT count(*) FROM (
            SELECT profile_id FROM events WHERE metric_id = $m_started AND channel = 'SMS' AND ts >= $d30 AND ts <= $as_of
            UNION
            SELECT profile_id FROM events WHERE metric_id = $m_esc AND ts >= $d7 AND ts <= $as_of)""",
    ),
]


def _exists_page(hint: str) -> str:
    """The hand-written page of a paging audience, with `hint` naming the events index (SQLite's INDEXED BY)."""
    return f"""SELECT p.id, p.email, p.first_name, p.last_name FROM profiles p
        WHERE p.id > :after AND EXISTS (SELECT 1 FROM events e {hint} WHERE e.profile_id = p.id
                                        AND e.metric_id = :m_view AND e.ts >= :since AND e.ts <= :as_of)
        ORDER BY p.id LIMIT :limit"""


@dataclass(frozen=True)
class PagingAudience:
    name: str
    filter: dict[str, Any]
    days: int

    # A hand-written page: walk profiles in id order from the cursor, probing each one's events, and stop
    # after the page (the set shape rebuilds the whole audience for every page).
    EXISTS_PAGE = _exists_page(BY_PROFILE)
    # PostgreSQL has no index hints; planned for the bound values (custom plans, as the store's connections), it
    # probes the same (profile, metric, ts) index per profile.
    EXISTS_PAGE_POSTGRES = _exists_page("")

    def exists_page_params(self, params: dict[str, int], after_id: int | None, limit: int) -> dict[str, int]:
        return {"after": after_id or 0, "m_view": params["m_view"], "since": params["as_of"] - self.days * MICROS_PER_DAY,
                "as_of": params["as_of"], "limit": limit}


def paging_candidates() -> list[PagingAudience]:
    """Audiences for the paging bench; the one nearest the wanted size is used."""
    return [PagingAudience(f"viewed a product in the last {days} days", _did(VIEWED_PRODUCT, within={"lastDays": days}),
                           days) for days in (7, 14, 30, 45, 60, 90, 120, 180, 365)]
