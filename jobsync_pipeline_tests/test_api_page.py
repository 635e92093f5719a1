"""The API's page in headless Chromium (the system's package, driven by Playwright) against a real
`jobsync api` server: a user starts a run in one window and watches it go pending → running → success
live, with its elapsed time and then its results; a second window (another browser profile, as on
another device) follows the same run and sees the same progress."""
from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from jobsync_pipeline.core.search import SearchParameters
from jobsync_pipeline.store.engine import upgrade
from jobsync_pipeline_tests.test_cli import env  # noqa: F401 - the fixture
from jobsync_pipeline_tests.test_searches import ANN, catalog, users

CHROMIUM = Path(os.environ.get("JOBSYNC_TEST_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture
def api(env):
    """`jobsync api` on a free loopback port over a small catalog; yields (base URL, store, Ann's token)."""
    upgrade(env["JOBSYNC_DATABASE_URL"])
    store = catalog(env["JOBSYNC_DATABASE_URL"])
    searches = users(store)
    searches.add_search(ANN, SearchParameters(keywords="python"))
    token = searches.issue_token(ANN)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(["jobsync", "api", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                if httpx.get(base + "/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "jobsync api did not answer"
                time.sleep(0.1)
        yield base, store, token
    finally:
        server.terminate()
        server.wait(10)
        server.stdout.close()


def sign_in(page: Page, base: str, token: str) -> None:
    page.goto(base + "/")
    page.fill("#token", token)
    page.click("#use-token")
    expect(page.locator("#who")).to_have_text(ANN)


def test_a_run_started_in_one_window_is_followed_live_in_both(api, tmp_path):
    assert CHROMIUM.exists(), f"the page test needs the system's Chromium at {CHROMIUM} (apt-get install chromium)"
    base, store, token = api
    searches = store.searches
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            starter, follower = (browser.new_context().new_page() for _ in range(2))
            sign_in(starter, base, token)
            expect(starter.locator("#searches tr")).to_have_count(1)
            starter.click("#searches button.start")
            expect(starter.locator("#run-status")).to_have_text("pending")
            expect(starter.locator("#run-elapsed")).to_contain_text("waiting")
            run_id = int(starter.locator("#run-id").inner_text())
            assert searches.run(ANN, run_id).client_context == {"client": "page"}

            sign_in(follower, base, token)  # another window, another profile: it finds the run in the list
            follower.click(f'#runs tr[data-run-id="{run_id}"] button.follow')
            expect(follower.locator("#run-status")).to_have_text("pending")

            searches.start(run_id)  # what the search_run job does first; both pages hear it, no reload
            for page in (starter, follower):
                expect(page.locator("#run-status")).to_have_text("running")
                expect(page.locator("#run-elapsed")).to_contain_text("running for")
            searches.succeed(run_id, *searches.execute(SearchParameters(keywords="python")))
            for page in (starter, follower):
                expect(page.locator("#run-status")).to_have_text("success")
                expect(page.locator("#run-found")).to_have_text("3 job(s) found")
                expect(page.locator("#results tbody tr")).to_have_count(3)
                expect(page.locator("#results tbody tr").first).to_contain_text("Python")
                expect(page.locator("#run-elapsed")).to_contain_text("took")
            starter.screenshot(path=str(tmp_path / "starter.png"), full_page=True)
            assert follower.url.endswith(f"#run={run_id}")
            assert starter.locator("#message").inner_text() == ""
        finally:
            browser.close()


def test_a_wrong_token_is_told_on_the_page(api):
    base, _, _ = api
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page()
            page.goto(base + "/")
            page.fill("#token", "jsk_not-a-token")
            page.click("#use-token")
            expect(page.locator("#message")).to_contain_text("a valid bearer token is needed")
            expect(page.locator("#signed-in")).to_be_hidden()
        finally:
            browser.close()


def test_a_taken_port_is_one_line_and_nothing_starts(api, env):
    base, _, _ = api
    port = base.rsplit(":", 1)[1]
    done = subprocess.run(["jobsync", "api", "--port", port], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.strip() == (f"jobsync: error: cannot listen on 127.0.0.1:{port}: Address already in use "
                                   "(another server there? try --port)")
