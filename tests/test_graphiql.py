"""GraphiQL as a browser sees it, from the real server (`segmentql serve`) with every address but the loopback
cut off: it renders from the server's own files, a query typed into the editor runs and shows its result, and
the docs explorer shows SegmentFilter's description. Debian's chromium, driven by Playwright (its own browser
download could not work offline); skipped, saying why, where either is missing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from server.graphiql import CONTENT_SECURITY_POLICY
from tests.helpers import TRACK, before, event
from tests.server_process import ServerProcess

CHROMIUM = Path("/usr/bin/chromium")

QUERY = '{ metric(name: "Placed Order") { name count } }'
SETTLED = """() => {
  const state = JSON.parse(localStorage.getItem("graphiql:tabState") || "{}");
  const tab = (state.tabs || [])[state.activeTabIndex];
  return Boolean(tab) && tab.query.includes("Placed Order") && !tab.operationName;
}"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    running = ServerProcess(f"sqlite+aiosqlite:///{tmp_path / 'graphiql.db'}", log=tmp_path / "server.log")
    try:
        events = [event(f"{name}@x", "Placed Order", before(days=1)) for name in ("ada", "bob")]
        tracked = httpx.post(f"{running.base}/graphql", json={"query": TRACK, "variables": {"events": events}}, timeout=30)
        assert tracked.json() == {"data": {"trackEvents": {"accepted": 2, "duplicates": 0}}}
        yield running
    finally:
        running.stop()


async def test_the_page_loads_only_files_the_app_serves(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    files = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "graphiql/graphiql.min.js" in files and not any(":" in name and name != "data:," for name in files)
    for name in files:
        if name != "data:,":
            assert (await client.get(f"/{name}")).status_code == 200, name


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no chromium at {CHROMIUM} (Debian: apt-get install chromium)")
def test_graphiql_runs_a_typed_query_offline_and_documents_the_filter(server: ServerProcess) -> None:
    playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package (test extra) is missing")
    left_loopback: list[str] = []
    problems: list[str] = []
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page()

            def only_loopback(route: Any) -> None:
                if urlsplit(route.request.url).hostname == "127.0.0.1":
                    route.continue_()
                else:  # the network beyond this machine is cut off
                    left_loopback.append(route.request.url)
                    route.abort()

            page.route("**/*", only_loopback)
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))

            response = page.goto(f"{server.base}/graphql")
            assert response is not None and response.status == 200
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY

            editor = page.locator(".graphiql-query-editor .CodeMirror")
            editor.wait_for(timeout=60_000)
            assert "SegmentQL" in editor.inner_text()  # it opens on the tour
            editor.click()
            page.keyboard.press("Control+A")
            page.keyboard.press("Delete")
            page.keyboard.type(QUERY)
            # GraphiQL reads the operation's name from the edited document after a debounce; until then it would
            # send the tour's name ("Audience"). Run once its saved tab state holds the new document.
            page.wait_for_function(SETTLED, timeout=30_000)
            page.locator(".graphiql-execute-button").click()
            result = page.locator(".graphiql-response .CodeMirror")
            playwright_api.expect(result).to_contain_text('"count": 2', timeout=30_000)
            playwright_api.expect(result).to_contain_text('"name": "Placed Order"')

            page.get_by_role("button", name="Show Documentation Explorer").click()
            page.locator(".graphiql-doc-explorer-search input").fill("SegmentFilter")
            page.get_by_role("option").filter(has_text="SegmentFilter").first.click()
            docs = page.locator(".graphiql-doc-explorer-content")
            playwright_api.expect(docs).to_contain_text("give exactly one key", timeout=10_000)
        finally:
            browser.close()
    assert left_loopback == []
    assert problems == []

