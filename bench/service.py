"""The real server in a subprocess (`segmentql serve`, as bench/export_memory.py starts it) and what
the bench asks of it over HTTP: segment counts and pages, paging throughput, CSV exports, ingest."""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import export_memory
import httpx
import orjson
from build import AS_OF, END, connect
from measure import RawStatement, Timing, compiled_page, density, timed, timed_together
from segments import PagingAudience

import seed
from resolvers.audiences import DEFAULT_POLICY
from store.tables import profiles
from vocabulary.agent_metrics import metric_key
from vocabulary.timestamps import format_datetime, from_micros, now_utc

AS_OF_ISO = format_datetime(from_micros(AS_OF))
PAGE = 1000
COUNT_QUERY = "query($id: ID!, $asOf: DateTime) { segment(id: $id) { count(asOf: $asOf) } }"
PAGE_QUERY = """query($f: SegmentFilter!, $first: Int!, $after: String, $asOf: DateTime) {
  profiles(filter: $f, first: $first, after: $after, asOf: $asOf) {
    nodes { id email firstName lastName } pageInfo { hasNextPage endCursor } } }"""
INGEST_BLOCK = 5  # batches each side sends back to back
INGEST_PAUSE = 0.25  # seconds between blocks
TRACK_QUERY = "mutation($events: [TrackEventInput!]!) { trackEvents(events: $events) { accepted duplicates } }"
PAGE_COLUMNS = [profiles.c.id, profiles.c.email, profiles.c.first_name, profiles.c.last_name]


class Server:
    """`segmentql serve` on a free loopback port over the SQLite store at `path` (or the store a URL names)."""

    def __init__(self, path: Path | str, api_key: str | None = None) -> None:
        self.path = path
        self.process = export_memory.start_server(path)
        self.base = self.process.base
        headers = {"content-type": "application/json"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self.client = httpx.Client(base_url=self.base, headers=headers, timeout=600)

    @property
    def pid(self) -> int:
        return self.process.pid

    def post(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post("/graphql", content=orjson.dumps({"query": query, "variables": variables}))
        body = orjson.loads(response.content)
        if body.get("errors"):
            raise RuntimeError(body["errors"])
        return body["data"]  # type: ignore[no-any-return]

    def saved_segment(self, name: str, filter_input: dict[str, Any]) -> str:
        """The id of a saved segment with this filter (created once, found again on reruns)."""
        tagged = f"bench {name} {hashlib.sha1(orjson.dumps(filter_input)).hexdigest()[:8]}"
        for found in self.post("{ segments { id name } }", {})["segments"]:
            if found["name"] == tagged:
                return str(found["id"])
        created = self.post("mutation($input: CreateSegmentInput!) { createSegment(input: $input) { id } }",
                            {"input": {"name": tagged, "filter": filter_input}})
        return str(created["createSegment"]["id"])

    def floor(self) -> dict[str, Any]:
        """The cheapest GraphQL request: HTTP, parsing, validation and the view, no resolver."""
        return self.post("{ __typename }", {})

    def count(self, segment_id: str) -> int:
        return int(self.post(COUNT_QUERY, {"id": segment_id, "asOf": AS_OF_ISO})["segment"]["count"])

    def page(self, filter_input: dict[str, Any], after: str | None = None, first: int = PAGE) -> dict[str, Any]:
        data = self.post(PAGE_QUERY, {"f": filter_input, "first": first, "after": after, "asOf": AS_OF_ISO})
        return data["profiles"]  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.client.close()
        self.process.stop()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


# ---------------------------------------------------------------- conversations

CONVERSATION_PAGE = """query($first: Int!, $status: ConversationStatus, $after: String) {
  conversations(first: $first, status: $status, after: $after) {
    %s nodes { id status channel startedAt endedAt profile { id } } pageInfo { hasNextPage endCursor } } }"""
# (label, variables, with totalCount); "later page" starts after the first 1000 conversations.
CONVERSATION_CASES = (
    ("first page of 50, newest first", {}, False),
    ("… with totalCount", {}, True),
    ("first page of 50 ESCALATED", {"status": "ESCALATED"}, False),
    ("page of 50 after the first 1000", {"after": "later"}, False),
)


@dataclass(frozen=True)
class ConversationResult:
    label: str
    timing: Timing
    total: int  # the conversations the list counts


def conversations(server: Server, repeat: int) -> list[ConversationResult]:
    """`conversations` pages through GraphQL, medians after a warm-up (there is no asOf: they hold every event)."""
    def page(variables: dict[str, Any], counted: bool, first: int = 50) -> dict[str, Any]:
        query = CONVERSATION_PAGE % ("totalCount" if counted else "")
        return server.post(query, {"first": first, **variables})["conversations"]  # type: ignore[no-any-return]

    later = page({}, False, first=1000)["pageInfo"]["endCursor"]
    total = int(page({}, True, first=1)["totalCount"])
    results = []
    for label, variables, counted in CONVERSATION_CASES:
        bound = {k: later if v == "later" else v for k, v in variables.items()}
        results.append(ConversationResult(label, timed(lambda b=bound, c=counted: page(b, c), repeat), total))
    return results


# ---------------------------------------------------------------- paging


@dataclass(frozen=True)
class PagingResult:
    audience: str
    members: int
    graphql: Timing  # every page, in pages of 1000
    raw_pages: Timing  # the same page statements on the raw driver, rows → the same JSON with orjson
    raw_single: Timing  # one SELECT of every member's row, → JSON with orjson
    raw_exists: Timing  # hand-written pages: profiles from the cursor in id order, EXISTS per profile
    driver: str = "sqlite3"  # what ran the raw sides


@dataclass(frozen=True)
class RawPaging:
    """What raw paging runs on one database: its driver's name, the compiler's page statement and density
    probe in that database's dialect (`measure`'s or `pg`'s), and the hand-written page."""

    driver: str
    page: Callable[..., RawStatement]  # (filter, as_of, after_id, limit, columns, walk=)
    density: Callable[[dict[str, Any], int, int], RawStatement]  # (filter, as_of, sample)
    exists_page: str


SQLITE_PAGING = RawPaging("sqlite3", compiled_page, density, PagingAudience.EXISTS_PAGE)


def _graphql_all(server: Server, filter_input: dict[str, Any]) -> int:
    fetched, after = 0, None
    while True:
        page = server.page(filter_input, after)
        fetched += len(page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            return fetched
        after = page["pageInfo"]["endCursor"]


def _as_json(rows: list[Any], has_next: bool) -> bytes:
    nodes = [{"id": str(r[0]), "email": r[1], "firstName": r[2], "lastName": r[3]} for r in rows]
    info = {"hasNextPage": has_next, "endCursor": str(rows[-1][0]) if rows else None}
    return orjson.dumps({"data": {"profiles": {"nodes": nodes, "pageInfo": info}}})


def _fetch_all_pages(fetch: Callable[[int | None], list[Any]]) -> int:
    """Pages of PAGE rows (fetched PAGE + 1 at a time), each turned into the GraphQL page's JSON."""
    fetched, after_id = 0, None
    while True:
        rows = fetch(after_id)
        page, has_next = rows[:PAGE], len(rows) > PAGE
        _as_json(page, has_next)
        fetched += len(page)
        if not has_next:
            return fetched
        after_id = page[-1][0]


def _raw_all_pages(db: Any, filter_input: dict[str, Any], statements: RawPaging) -> int:
    walk = False

    def fetch(after_id: int | None) -> list[Any]:
        # As the server pages: a density probe before the first page; a dense audience walks every page
        # (a sparse one's later pages would follow the server's span rule: this bench's audience is dense).
        nonlocal walk
        if after_id is None:
            probe = statements.density(filter_input, AS_OF, DEFAULT_POLICY.page_density_sample)
            sampled, members = db.execute(probe.sql, probe.params).fetchone()
            walk = DEFAULT_POLICY.walks_at(members, sampled)
        statement = statements.page(filter_input, AS_OF, after_id, PAGE + 1, PAGE_COLUMNS, walk=walk)
        return db.execute(statement.sql, statement.params).fetchall()

    return _fetch_all_pages(fetch)


def _raw_single(db: Any, filter_input: dict[str, Any], statements: RawPaging) -> int:
    statement = statements.page(filter_input, AS_OF, None, 10**9, PAGE_COLUMNS)
    rows = db.execute(statement.sql, statement.params).fetchall()
    _as_json(rows, False)
    return len(rows)


def _raw_exists_pages(db: Any, audience: PagingAudience, params: dict[str, int], statements: RawPaging) -> int:
    return _fetch_all_pages(lambda after_id: db.execute(
        statements.exists_page, audience.exists_page_params(params, after_id, PAGE + 1)).fetchall())


def paging(server: Server, db: Any, audience: PagingAudience, params: dict[str, int], repeat: int,
           statements: RawPaging = SQLITE_PAGING) -> PagingResult:
    """Every page of `audience` through GraphQL against the raw sides on `db` (sqlite3, or pg.PgDB with pg.PAGING)."""
    # In rounds, each path once per round: on a shared machine the load drifts over the minutes a run takes.
    timings = timed_together({
        "graphql": lambda: _graphql_all(server, audience.filter),
        "raw_pages": lambda: _raw_all_pages(db, audience.filter, statements),
        "raw_single": lambda: _raw_single(db, audience.filter, statements),
        "raw_exists": lambda: _raw_exists_pages(db, audience, params, statements),
    }, repeat)
    graphql = timings["graphql"]
    return PagingResult(audience.name, int(graphql.result), graphql, timings["raw_pages"], timings["raw_single"],
                        timings["raw_exists"], statements.driver)


# ---------------------------------------------------------------- export


@dataclass
class ExportResult:
    label: str
    rows: int
    count: int
    seconds: list[float] = field(default_factory=list)
    rss_anon_before: int = 0  # kB
    rss_anon_peak: int = 0
    hwm_before: int = 0
    hwm_after: int = 0

    @property
    def rows_per_s(self) -> float:
        return self.rows / statistics.median(self.seconds)


def export(server: Server, segment_id: str, label: str, repeat: int, as_of: str = AS_OF_ISO) -> ExportResult:
    """Download /segments/{id}/members.csv `repeat` times (after a warm-up) and watch the server's memory."""
    count = int(server.post(COUNT_QUERY, {"id": segment_id, "asOf": as_of})["segment"]["count"])
    result = ExportResult(label, 0, count)
    for attempt in range(repeat + 1):
        before = export_memory.proc_status(server.pid)
        sampler = export_memory.AnonPeak(server.pid)
        sampler.start()
        lines = 0
        started = time.perf_counter()
        with server.client.stream("GET", f"/segments/{segment_id}/members.csv", params={"asOf": as_of}) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                lines += chunk.count(b"\n")
        elapsed = time.perf_counter() - started
        sampler.done.set()
        sampler.join()
        after = export_memory.proc_status(server.pid)
        if attempt == 0:  # warm-up; memory figures are taken from it too (a cold first export)
            result.rss_anon_before, result.hwm_before = before["RssAnon"], before["VmHWM"]
        else:
            result.seconds.append(elapsed)
        result.rss_anon_peak = max(result.rss_anon_peak, sampler.peak)
        result.hwm_after = after["VmHWM"]
        result.rows = lines - 1
    return result


def synthetic_store(n: int, directory: Path) -> Path:
    """export_memory.py's store of n profiles with one Placed Order each, built afresh in `directory`."""
    path = directory / f"export-{n}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    export_memory.build_store(path, n)
    return path


def export_buyers(server: Server, n: int, repeat: int) -> ExportResult:
    """The whole of a `synthetic_store` of n profiles, exported through `server`."""
    segment_id = server.saved_segment("buyers", {"did": {"metric": "Placed Order"}})
    # export_memory.py's orders fall in the 30 days before now: evaluate now.
    return export(server, segment_id, f"{n:,} members (export_memory.py store)", repeat, format_datetime(now_utc()))


def export_synthetic(n: int, directory: Path, repeat: int) -> ExportResult:
    """A `synthetic_store` of n profiles, exported whole from a server over it."""
    with Server(synthetic_store(n, directory)) as server:
        return export_buyers(server, n, repeat)


# ---------------------------------------------------------------- ingest


@dataclass(frozen=True)
class IngestResult:
    events: int
    graphql_seconds: float
    raw_seconds: float
    graphql_batches: list[float]
    raw_batches: list[float]


def ingest_events(profiles_count: int, wanted: int, seed_value: int) -> list[tuple[int, seed.EventInput]]:
    """New events of the store's own shoppers, in the 30 days after the store ends (profile id, event)."""
    end = END + timedelta(days=30)
    found: list[tuple[int, seed.EventInput]] = []
    step = max(1, profiles_count // 20_000)  # ~4 events per shopper in 30 days: room for 80k events
    for index in range(0, profiles_count, step):
        shopper = seed.make_shopper(index, 30, seed_value, end)
        found += [(index + 1, event) for event in seed.shopper_events(shopper, 30, seed_value, end)]
        if len(found) >= wanted:
            break
    return found[:wanted]


def _prefixed(event: seed.EventInput, prefix: str) -> tuple[dict[str, Any], str]:
    properties = dict(event.properties or {})
    if isinstance(properties.get("conversation_id"), str):
        properties["conversation_id"] = f"{prefix}{properties['conversation_id']}"
    return properties, f"{prefix}{event.unique_id}"


def _graphql_batch(batch: list[tuple[int, seed.EventInput]], prefix: str) -> list[dict[str, Any]]:
    out = []
    for _, event in batch:
        properties, unique_id = _prefixed(event, prefix)
        out.append({"metric": event.metric, "profile": {"email": event.profile["email"]},
                    "occurredAt": format_datetime(event.occurred_at or END), "properties": properties,
                    "uniqueId": unique_id})
    return out


def _raw_batch(batch: list[tuple[int, seed.EventInput]], prefix: str, metric_ids: dict[str, int]) -> list[tuple[Any, ...]]:
    from vocabulary.timestamps import to_micros

    rows = []
    for profile_id, event in batch:
        properties, unique_id = _prefixed(event, prefix)
        channel = properties.get("channel")
        rows.append((profile_id, metric_ids[metric_key(event.metric)], to_micros(event.occurred_at or END),
                     channel if isinstance(channel, str) else None, properties.get("conversation_id"),
                     orjson.dumps(properties).decode(), unique_id))
    return rows


def ingest(store_copy: Path, profiles_count: int, seed_value: int, batches: int, size: int = 1000,
           block: int = INGEST_BLOCK) -> IngestResult:
    """trackEvents over HTTP in batches of `size`, and raw executemany of the same rows (one transaction
    each), in alternating blocks of `block` batches: within a block each side runs back to back, as a
    client streaming events would, and both find the store's pages equally warm. A pause between blocks
    keeps one side's background work (the server's WAL checkpoint) out of the other's times; raw
    checkpoints after each batch, off the clock, so that it is the insert alone and leaves the server
    no WAL to copy."""
    events = ingest_events(profiles_count, (batches + 1) * size, seed_value)
    chunks = [events[i:i + size] for i in range(0, len(events), size)]
    graphql_batches: list[float] = []
    raw_batches: list[float] = []
    insert = ("INSERT INTO events (profile_id, metric_id, ts, channel, conversation_id, properties, unique_id)"
              " VALUES (?, ?, ?, ?, ?, ?, ?)")
    with Server(store_copy) as server:
        db = connect(store_copy)
        metric_ids = {key: metric_id for metric_id, key in db.execute("SELECT id, name_key FROM metrics")}

        def insert_raw(rows: list[tuple[Any, ...]]) -> float:
            """Seconds the batch took, one transaction; then a checkpoint off the clock, as the server does
            beside its writes."""
            started = time.perf_counter()
            db.execute("BEGIN")
            db.executemany(insert, rows)
            db.execute("COMMIT")
            seconds = time.perf_counter() - started
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            return seconds

        server.post(TRACK_QUERY, {"events": _graphql_batch(chunks[0], "gql-")})  # warm-ups, not timed
        insert_raw(_raw_batch(chunks[0], "raw-", metric_ids))
        measured = chunks[1:]
        for start in range(0, len(measured), block):
            blocked = measured[start:start + block]
            for chunk in blocked:
                variables = {"events": _graphql_batch(chunk, "gql-")}  # built before the clock starts
                started = time.perf_counter()
                accepted = server.post(TRACK_QUERY, variables)["trackEvents"]["accepted"]
                graphql_batches.append(time.perf_counter() - started)
                if accepted != len(chunk):
                    raise RuntimeError(f"trackEvents accepted {accepted} of {len(chunk)}")
            time.sleep(INGEST_PAUSE)
            for chunk in blocked:
                raw_batches.append(insert_raw(_raw_batch(chunk, "raw-", metric_ids)))
            time.sleep(INGEST_PAUSE)
        db.close()
    counted = size * len(graphql_batches)
    return IngestResult(counted, sum(graphql_batches), sum(raw_batches), graphql_batches, raw_batches)
