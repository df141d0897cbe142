"""Fixtures: a real store per test (a SQLite file, or a PostgreSQL schema of its own) and the real app over HTTP."""

from __future__ import annotations

import asyncio
import importlib
import os
import pkgutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, settings

from server.app import create_app
from server.config import Settings
from store.engine import Store
from tests.probe_power import POWER_PROPERTY
from tests.stores import StoreFactory, store_params

settings.register_profile(
    "ci", derandomize=True, max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# tests/faults.py: draws exactly the ci profile's examples (the same derandomized seed and max_examples, so a
# fault is caught or missed by what CI runs), but does not shrink a failure, which can take minutes.
settings.register_profile(
    "faults", parent=settings.get_profile("ci"), phases=[p for p in Phase if p not in (Phase.shrink, Phase.explain)],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
# Hypothesis now and then draws a literal found in the project's modules that a run has imported (its "local
# constants"), so a derandomized test drew other examples alone than in the whole suite, or in a pytest-xdist worker
# after other tests: the power check failed in CI and passed alone, and tests/faults.py judged other examples than CI
# ran. Every run imports all of them first (`pytest_sessionstart`), so every run draws the same examples.
PROJECT_PACKAGES = ("vocabulary", "store", "resolvers", "schema", "server", "tests")
NOT_IMPORTED = ("store.migrations", "tests.graphql_http_audit")  # Alembic's scripts run on import; a script


def pytest_sessionstart(session: pytest.Session) -> None:
    for package in PROJECT_PACKAGES:
        path = importlib.import_module(package).__path__
        for module in pkgutil.walk_packages(path, prefix=f"{package}.", onerror=lambda name: None):
            if not module.name.startswith(NOT_IMPORTED):
                importlib.import_module(module.name)
    importlib.import_module("seed")


@pytest.fixture(params=store_params())
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(store_kind: str, tmp_path: Path) -> AsyncIterator[Store]:
    factory = StoreFactory(store_kind, tmp_path)
    created = await factory.create()
    yield created
    await created.dispose()
    await factory.drop_all()


@pytest.fixture
async def store_url(store_kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a new, empty store of its own (no tables yet) that the URL alone names: for the command
    line and `segmentql serve` processes (a SQLite file, or a PostgreSQL database dropped afterwards)."""
    factory = StoreFactory(store_kind, tmp_path)
    yield await factory.standalone_url()
    await factory.drop_all()


@pytest.fixture
async def client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=store.url), store=store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


class GraphQLClient:
    """Posts GraphQL over HTTP and returns the decoded body."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def __call__(self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables or {}}, **kwargs)
        assert response.headers["content-type"].startswith("application/json"), response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self(query, variables)
        assert "errors" not in body, body["errors"]
        return body["data"]  # type: ignore[no-any-return]

    async def error(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The single error of a request that must fail."""
        body = await self(query, variables)
        assert body.get("errors"), body
        return body["errors"][0]  # type: ignore[no-any-return]


@pytest.fixture(params=store_params())
def runner_and_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[asyncio.Runner, Store]]:
    """A store and the event loop it lives on, for synchronous (hypothesis) tests that share it across examples."""
    with asyncio.Runner() as runner:
        factory = StoreFactory(str(request.param), tmp_path)
        store = runner.run(factory.create())
        yield runner, store
        runner.run(store.dispose())
        runner.run(factory.drop_all())


@pytest.fixture
def gql(client: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(client)


STORE_KINDS = ("sqlite", "postgresql")
_passed_by_store = dict.fromkeys(STORE_KINDS, 0)


def _store_of(nodeid: str) -> str | None:
    for kind in STORE_KINDS:
        if f"[{kind}" in nodeid or f"-{kind}]" in nodeid or f"-{kind}-" in nodeid:
            return kind
    return None


_power_reports: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    kind = _store_of(report.nodeid)
    if kind is not None and report.when == "call" and report.passed:
        _passed_by_store[kind] += 1
    if report.when == "call":
        _power_reports.extend(str(value) for name, value in report.user_properties if name == POWER_PROPERTY)


def _postgres_missing_in_ci() -> str | None:
    """Why this run must fail under CI (CI set): PostgreSQL was not tested, so green would mean nothing."""
    if not os.environ.get("CI"):
        return None
    if not os.environ.get("SEGMENTQL_TEST_POSTGRES_URL"):
        return "CI is set but SEGMENTQL_TEST_POSTGRES_URL is not: every PostgreSQL case was skipped"
    if _passed_by_store["postgresql"] == 0:
        return "CI is set but no PostgreSQL test passed"
    return None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):  # a pytest-xdist worker: the controller counts every worker's passes
        return
    if _postgres_missing_in_ci() and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How many tests ran on each store, so that CI shows PostgreSQL was not silently skipped."""
    for report in _power_reports:  # property tests' power: part of their result (tests/probe_power.py)
        terminalreporter.write_line(report)
    counts = _passed_by_store
    terminalreporter.write_line(f"store-backed tests passed: sqlite={counts['sqlite']} postgresql={counts['postgresql']}")
    problem = _postgres_missing_in_ci()
    if problem:
        terminalreporter.write_line(f"FAILED: {problem}", red=True, bold=True)
