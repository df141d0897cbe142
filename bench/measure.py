"""Timing, the compiler's SQL as raw sqlite3 statements, and query plans."""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from resolvers.compiler import Audience, FilterCompiler, count_statement, density_statement, page_statement
from resolvers.language.structured import filter_from_input
from resolvers.language.text import parse_filter
from store.dialects.sqlite import PySQLiteDialect

DIALECT = PySQLiteDialect()  # the app's SQLite compiler: INDEXED BY hints render as the server sends them


@dataclass(frozen=True)
class Timing:
    median: float  # seconds
    runs: list[float]
    result: Any = None

    @property
    def ms(self) -> float:
        return self.median * 1000


def timed(fn: Callable[[], Any], repeat: int = 5, warmup: int = 1) -> Timing:
    """The median of `repeat` calls after `warmup` untimed ones; keeps the last result."""
    result = None
    for _ in range(warmup):
        result = fn()
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - started)
    return Timing(statistics.median(runs), runs, result)


def timed_together(fns: dict[str, Callable[[], Any]], repeat: int = 5, warmup: int = 1) -> dict[str, Timing]:
    """Like `timed` for several alternatives, run in rounds (each once per round) so that drift in the
    machine's load hits them alike."""
    results: dict[str, Any] = {}
    runs: dict[str, list[float]] = {name: [] for name in fns}
    for round_number in range(warmup + repeat):
        for name, fn in fns.items():
            started = time.perf_counter()
            results[name] = fn()
            if round_number >= warmup:
                runs[name].append(time.perf_counter() - started)
    return {name: Timing(statistics.median(runs[name]), runs[name], results[name]) for name in fns}


def wake_cost(wait: float = 0.01, repeat: int = 30) -> Timing:
    """What a loopback request answered after a worker thread's `wait` costs beyond the wait: no SegmentQL code,
    only waking idle threads (the server's, its worker's, the client's), as a GraphQL count does around its reads."""
    listener = socket.create_server(("127.0.0.1", 0))
    worker = ThreadPoolExecutor(1)

    def answer() -> None:
        connection, _ = listener.accept()
        with connection:
            while connection.recv(16):
                worker.submit(time.sleep, wait).result()
                connection.sendall(b"done")

    threading.Thread(target=answer, daemon=True).start()
    with socket.create_connection(listener.getsockname()) as client:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def request() -> None:
            client.sendall(b"go")
            client.recv(16)

        timing = timed(request, repeat)
    listener.close()
    worker.shutdown()
    beyond = [run - wait for run in timing.runs]
    return Timing(statistics.median(beyond), beyond)


@dataclass(frozen=True)
class RawStatement:
    sql: str
    params: list[Any]


def raw(statement: Any) -> RawStatement:
    """A SQLAlchemy statement as the SQL text and positional parameters sqlite3 runs."""
    compiled = statement.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True})
    processors = compiled._bind_processors
    values = compiled.construct_params()
    params = []
    for name in compiled.positiontup or []:
        value = values[name]
        processor = processors.get(name)
        params.append(processor(value) if processor else value)
    return RawStatement(str(compiled), params)


def audience(filter_input: dict[str, Any], as_of: int) -> Audience:
    return FilterCompiler("sqlite", as_of, {}).audience(filter_from_input(filter_input, parse_filter))


def compiled_count(filter_input: dict[str, Any], as_of: int) -> RawStatement:
    return raw(count_statement(audience(filter_input, as_of)))


def compiled_page(
    filter_input: dict[str, Any], as_of: int, after_id: int | None, limit: int, columns: list[Any], walk: bool = False
) -> RawStatement:
    return raw(page_statement(audience(filter_input, as_of), after_id, limit, columns, walk=walk))


def density(filter_input: dict[str, Any], as_of: int, sample: int) -> RawStatement:
    """The density probe the server runs before a first page (profiles sampled, members among them)."""
    return raw(density_statement(audience(filter_input, as_of), sample))


def query_plan(db: Any, sql: str, params: Any) -> str:
    """EXPLAIN QUERY PLAN as an indented tree."""
    rows = db.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    depth: dict[int, int] = {0: -1}
    lines = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
    return "\n".join(lines)
