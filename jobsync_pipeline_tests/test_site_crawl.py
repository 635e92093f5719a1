"""The site crawl against the local job site over real HTTP (and in Chromium): robots.txt, pacing, 429s,
pagination, max_jobs, the steps it reports, the payload it archives and what its parse makes of it."""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime

import pytest

from jobsync_pipeline.core.models import RawPayload
from jobsync_pipeline.core.steps import CRAWL_STEPS
from jobsync_pipeline.sources.base import BoardError
from jobsync_pipeline.sources.jobposting import extract_job_postings
from jobsync_pipeline.sources.site_crawl import SOURCE, SiteCrawlConnector, job_links, parse_site_crawl
from jobsync_pipeline_tests.http_server import Hit, LocalServer, Reply
from jobsync_pipeline_tests.local_site import (DISALLOWED_PATH, JOB_PAGES, NOT_A_JOB_PATH, THROTTLED_PATH,
                                               local_site, polite_client_for, routes, search_path, site_config)

CHROMIUM = "/usr/bin/chromium"
# What the local site's crawl requests, in order: robots.txt, each keyword's two result pages (the
# second brings nothing new), then every job link once (the python page's plain links first, /about
# among them; then the java ItemList's), the throttled page twice and the disallowed one never.
EXPECTED_PATHS = [
    "/robots.txt", search_path("python", 1), search_path("python", 2), search_path("java", 1),
    search_path("java", 2), NOT_A_JOB_PATH, "/jobs/graph", "/jobs/pair", "/jobs/microdata", "/jobs/broken",
    "/jobs/entities", THROTTLED_PATH, THROTTLED_PATH, "/jobs/hourly", "/jobs/remote", "/jobs/expired", "/jobs/vi",
    "/jobs/empty", "/jobs/mixed"]
EXPECTED_IDS = {"ACME-101", "1001", "PAIR-2", "MD-7", "ENT-1", "BUSY-1", "HR-1", "RM-1", "EX-1", "MIX-1"}
PACING_TOLERANCE = 0.02  # a request's trip to the server varies by a few ms


class Recorder:
    """A StepReporter that keeps every call."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def start(self, step, total=None):
        self.events.append(("start", step, total))

    def advance(self, step, done, total=None, counts=None):
        self.events.append(("advance", step, done, total, dict(counts or {})))

    def finish(self, step, counts=None):
        self.events.append(("finish", step, dict(counts or {})))

    def fail(self, step, error, counts=None):
        self.events.append(("fail", step, error))

    def skip(self, step, reason):
        self.events.append(("skip", step, reason))

    def outline(self) -> list[tuple[str, str]]:
        return [(event[0], event[1]) for event in self.events if event[0] != "advance"]

    def of(self, kind: str, step: str) -> list[tuple]:
        return [event for event in self.events if event[:2] == (kind, step)]


@dataclass
class Crawled:
    base_url: str
    hits: list[Hit]
    payload: RawPayload
    steps: Recorder

    def paths(self) -> list[str]:
        return [hit.path for hit in self.hits]

    def document(self) -> dict:
        return json.loads(self.payload.body)


def crawl_site(server: LocalServer, config, **client_policy) -> Crawled:
    steps = Recorder()
    connector = SiteCrawlConnector(lambda name: config, lambda c: polite_client_for(c, **client_policy),
                                   browser_path=CHROMIUM)
    try:
        payload = connector.fetch(config.name, progress=steps)
    finally:
        connector.close()
    return Crawled(server.base_url, list(server.hits), payload, steps)


def crawl(**overrides) -> Crawled:
    with local_site(**overrides) as (server, config):
        return crawl_site(server, config)


def failed_crawl(server: LocalServer, config, match: str, **client_policy) -> Recorder:
    steps = Recorder()
    connector = SiteCrawlConnector(lambda name: config, lambda c: polite_client_for(c, **client_policy),
                                   browser_path=CHROMIUM)
    with pytest.raises(BoardError, match=match):
        connector.fetch(config.name, progress=steps)
    connector.close()
    return steps


@pytest.fixture(scope="module")
def crawled() -> Crawled:
    return crawl()


def gaps(hits: list[Hit]) -> list[float]:
    return [later.at - earlier.at for earlier, later in zip(hits, hits[1:])]


# --- the crawl over HTTP ---------------------------------------------------------------------------------


def test_the_crawl_requests_each_listed_page_once_in_order(crawled):
    assert crawled.paths() == EXPECTED_PATHS


def test_a_page_robots_txt_disallows_is_never_requested(crawled):
    assert DISALLOWED_PATH not in crawled.paths()
    document = crawled.document()
    assert document["disallowed"] == [crawled.base_url + DISALLOWED_PATH]
    assert document["counts"]["disallowed"] == 1


def test_a_429_with_retry_after_is_waited_out_and_retried(crawled):
    busy = [hit for hit in crawled.hits if hit.path == THROTTLED_PATH]
    assert [hit.status for hit in busy] == [429, 200]
    assert busy[1].at - busy[0].at >= 1.0 - PACING_TOLERANCE
    [page] = [page for page in crawled.document()["pages"] if page["url"].endswith(THROTTLED_PATH)]
    assert page["status"] == 200 and page["items"][0]["identifier"] == "BUSY-1"


def test_pagination_stops_at_the_first_page_without_new_links(crawled):
    assert all(search_path(keyword, 3) not in crawled.paths() for keyword in ("python", "java"))
    listings = crawled.document()["listings"]
    assert [(listing["keyword"], listing["page"], listing["new_links"]) for listing in listings] == [
        ("python", 1, 8), ("python", 2, 0), ("java", 1, 6), ("java", 2, 0)]
    assert [listing["via"] for listing in listings] == ["links", "links", "itemlist", "itemlist"]


def test_the_payload_archives_the_crawl(crawled):
    document = crawled.document()
    assert crawled.payload.board == "localsite" and crawled.payload.location == crawled.base_url + (
        "/search?q={keyword}&page={page}")
    assert set(document) == {"format", "site", "config", "crawled_at", "user_agent", "robots", "listings", "pages",
                             "disallowed", "counts"}
    assert document["site"] == "localsite" and document["config"]["keywords"] == ["python", "java"]
    assert datetime.fromisoformat(document["crawled_at"]) == crawled.payload.fetched_at
    assert document["robots"] == {"url": crawled.base_url + "/robots.txt", "status": 200, "found": True,
                                  "crawl_delay": None}
    assert document["counts"] == {"listing_pages": 4, "failed_listing_pages": 0, "links": 14, "pages": 13,
                                  "jobs_found": 11, "failed_pages": 0, "no_posting": 2, "malformed": 1,
                                  "disallowed": 1}
    pages = {page["url"].removeprefix(crawled.base_url): page for page in document["pages"]}
    assert set(pages) == set(JOB_PAGES) - {DISALLOWED_PATH}
    for path, page in pages.items():  # the items exactly as extracted from the page
        assert page["items"] == extract_job_postings(JOB_PAGES[path], crawled.base_url + path).postings, path
    assert pages["/jobs/broken"]["problem"].startswith("malformed JSON-LD: Expecting ',' delimiter")
    assert pages["/jobs/mixed"]["problem"] is None and len(pages["/jobs/mixed"]["malformed"]) == 1
    assert (pages[NOT_A_JOB_PATH]["via"], pages[NOT_A_JOB_PATH]["problem"]) == ("links", "no JobPosting on the page")
    assert pages["/jobs/vi"]["language"] == "vi" and pages["/jobs/graph"]["language"] == "en"
    assert len(pages["/jobs/pair"]["items"]) == 2


def test_parse_keeps_the_postings_and_sets_aside_pages_with_reasons(crawled):
    parsed = parse_site_crawl(crawled.payload)
    assert parsed.board == "localsite" and parsed.snapshot_at == crawled.payload.fetched_at
    assert set(parsed.postings.external_id) == EXPECTED_IDS and parsed.found == 10
    assert parsed.duplicates == [] and parsed.inactive == 0 and SiteCrawlConnector.name == SOURCE == "site_crawl"
    reasons = {record.external_id.removeprefix(crawled.base_url): record.reason for record in parsed.bad_records}
    assert reasons == {"/jobs/broken": "malformed JSON-LD: Expecting ',' delimiter at line 1 column 77",
                       "/jobs/vi": "language vi, not the site's en",
                       "/jobs/empty": "no JobPosting on the page"}  # /about was only a link, not a job
    row = parsed.postings.set_index("external_id").loc["RM-1"]
    assert (row.workplace_type, json.loads(row.region_restrictions)) == ("remote", ["Vietnam"])


def test_parse_of_the_same_payload_is_the_same(crawled):
    first, second = parse_site_crawl(crawled.payload), parse_site_crawl(crawled.payload)
    assert first.postings.equals(second.postings)
    assert SiteCrawlConnector(lambda n: None, lambda c: None).parse(crawled.payload).postings.equals(first.postings)


def test_the_steps_are_reported_in_order(crawled):
    steps = crawled.steps
    assert steps.outline() == [
        ("start", "initialize"), ("finish", "initialize"), ("start", "check_availability"),
        ("finish", "check_availability"), ("skip", "start_browser"), ("start", "generate_urls"),
        ("finish", "generate_urls"), ("start", "crawl"), ("finish", "crawl")]
    assert steps.of("finish", "initialize") == [("finish", "initialize", {"keywords": 2})]
    assert steps.of("skip", "start_browser") == [("skip", "start_browser", "plain HTTP")]
    assert steps.of("start", "generate_urls") == [("start", "generate_urls", 6)]
    assert [event[2:4] for event in steps.of("advance", "generate_urls")] == [(n, 6) for n in (1, 2, 3, 4)]
    assert steps.of("finish", "generate_urls")[0][2] == {"pages": 4, "links": 14, "disallowed": 0, "failed_pages": 0}
    assert steps.of("start", "crawl") == [("start", "crawl", 13)]
    assert [event[2:4] for event in steps.of("advance", "crawl")] == [(n, 13) for n in range(1, 14)]
    assert steps.of("finish", "crawl")[0][2] == {"disallowed": 1, "pages": 13, "jobs_found": 11, "failed_pages": 0,
                                                 "no_posting": 2, "malformed": 1}


def test_step_names_are_the_crawl_plans():
    steps = crawl(keywords=("java",), max_jobs=1).steps
    assert [step for kind, step in steps.outline() if kind in ("start", "skip")] == list(CRAWL_STEPS.fetch)


def test_the_request_delay_holds_between_every_request():
    with local_site(request_delay=0.2, keywords=("python",), link_selector="a.job-link", max_jobs=4) as (server,
                                                                                                         config):
        done = crawl_site(server, config)
    assert done.paths() == ["/robots.txt", search_path("python", 1), "/jobs/graph", "/jobs/pair", "/jobs/microdata",
                            "/jobs/broken"]
    assert min(gaps(done.hits)) >= 0.2 - PACING_TOLERANCE


def test_max_jobs_with_a_selector_stops_reading_result_pages_too():
    done = crawl(link_selector="a.job-link", max_jobs=2)
    assert done.paths() == ["/robots.txt", search_path("python", 1), "/jobs/graph", "/jobs/pair"]
    assert done.steps.of("start", "crawl") == [("start", "crawl", 2)]
    assert {listing["via"] for listing in done.document()["listings"]} == {"selector"}


def test_max_jobs_among_all_links_counts_pages_that_carry_a_posting():
    done = crawl(keywords=("python",), max_jobs=3)
    assert done.paths()[3:] == [NOT_A_JOB_PATH, "/jobs/graph", "/jobs/pair", "/jobs/microdata"]


def test_a_link_selector_takes_only_the_matched_links():
    done = crawl(keywords=("python",), link_selector="li > a.job-link")
    assert NOT_A_JOB_PATH not in done.paths()
    assert {page["via"] for page in done.document()["pages"]} == {"selector"}


def test_job_links_resolve_dedupe_and_stay_on_the_site():
    with local_site() as (server, config):
        body = b"""<a href="/jobs/1#apply">1</a><a href="jobs/2">2</a><a href="/jobs/1">1 again</a>
                   <a href="http://elsewhere.example/jobs/3">off</a><a href="javascript:void(0)">js</a>
                   <a href="/search?q=python&amp;page=2">next</a><a href="">empty</a><a href="http://[::1">bad</a>"""
        links = job_links(body, server.url("/search?q=python&page=1"), config, {server.url(search_path("python", 2))})
    assert [link.url for link in links] == [server.url("/jobs/1"), server.url("/jobs/2")]


def test_a_failed_job_page_is_recorded_and_set_aside():
    with local_site(keywords=("java",)) as (server, config):
        server.set_route("/jobs/empty", Reply(404, b"gone"))
        done = crawl_site(server, config)
    [page] = [page for page in done.document()["pages"] if page["url"].endswith("/jobs/empty")]
    assert page["status"] == 404 and page["problem"].startswith("fetch failed: GET ") and "404" in page["problem"]
    assert done.document()["counts"]["failed_pages"] == 1
    [bad] = [r for r in parse_site_crawl(done.payload).bad_records if r.external_id.endswith("/jobs/empty")]
    assert bad.reason == page["problem"]


def test_without_a_language_every_posting_is_kept():
    parsed = parse_site_crawl(crawl(keywords=("java",), language=None).payload)
    assert "VI-1" in set(parsed.postings.external_id)


# --- what stops a crawl ------------------------------------------------------------------------------------


def test_an_unreachable_site_fails_check_availability():
    with LocalServer(routes()) as server:
        config = site_config(server)  # nothing listens on its port once the server is stopped
    steps = failed_crawl(server, config, r"site localsite: 127\.0\.0\.1:\d+ is not available: GET .*robots\.txt",
                         max_attempts=2)
    assert steps.outline() == [("start", "initialize"), ("finish", "initialize"), ("start", "check_availability"),
                               ("fail", "check_availability")]


def test_a_robots_txt_server_error_fails_check_availability():
    with LocalServer({**routes(), "/robots.txt": Reply(503, b"down")}) as server:
        steps = failed_crawl(server, site_config(server), "is not available", max_attempts=2)
    assert steps.outline()[-1] == ("fail", "check_availability")


def test_without_robots_txt_everything_is_allowed():
    site = routes()
    del site["/robots.txt"]
    with LocalServer(site) as server:
        done = crawl_site(server, site_config(server, keywords=("python",), link_selector="a.job-link"))
    assert DISALLOWED_PATH in done.paths()
    assert done.document()["robots"]["status"] == 404 and done.steps.of("finish", "check_availability")[0][2] == {
        "robots_found": 0}


def test_every_search_page_failing_fails_the_fetch():
    with LocalServer({"/robots.txt": Reply(body=b"")}) as server:
        steps = failed_crawl(server, site_config(server), "every search page failed")
    assert steps.outline()[-2:] == [("start", "generate_urls"), ("fail", "generate_urls")]


def test_robots_txt_disallowing_the_search_fails_the_fetch():
    with LocalServer({**routes(), "/robots.txt": Reply(body=b"User-agent: jobsync\nDisallow: /search\n")}) as server:
        failed_crawl(server, site_config(server), "robots.txt disallows every search page")
        assert server.count(path=search_path("python", 1)) == 0


def test_an_unknown_site_fails_initialize():
    steps = Recorder()

    def unknown(name):
        raise KeyError(name)

    with pytest.raises(BoardError, match="site 'nowhere'"):
        SiteCrawlConnector(unknown, polite_client_for).fetch("nowhere", progress=steps)
    assert steps.outline() == [("start", "initialize"), ("fail", "initialize")]


def test_a_missing_browser_fails_start_browser_naming_what_to_install():
    with local_site(browser=True) as (server, config):
        steps = Recorder()
        connector = SiteCrawlConnector(lambda name: config, polite_client_for, browser_path="/nonexistent/chromium")
        with pytest.raises(BoardError) as failed:
            connector.fetch(config.name, progress=steps)
        connector.close()
    message = str(failed.value)
    assert "apt-get install chromium" in message and "pip install 'jobsync-pipeline[browser]'" in message
    assert "\n" not in message
    assert steps.outline()[-1] == ("fail", "start_browser")
    assert [hit.path for hit in server.hits] == ["/robots.txt"]


def test_without_playwright_start_browser_fails_naming_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)  # the import fails as if not installed
    with local_site(browser=True) as (server, config):
        steps = failed_crawl(server, config, r"Playwright is not installed: pip install 'jobsync-pipeline\[browser\]'")
    assert steps.outline()[-1] == ("fail", "start_browser")


def test_the_connector_keeps_one_client_per_site_and_closes_them():
    made = []

    def client_for(config):
        made.append(polite_client_for(config))
        return made[-1]

    with local_site(keywords=("java",), link_selector="a.job-link", max_jobs=1) as (server, config):
        connector = SiteCrawlConnector(lambda name: config, client_for)
        connector.fetch(config.name)
        connector.fetch(config.name)
        connector.close()
    assert len(made) == 1 and made[0]._client.is_closed


def test_parse_refuses_postings_that_cannot_be_and_pages_that_are_not():
    page = "https://jobs.example.org/jobs/1"
    archive = {"site": "example", "crawled_at": "2026-11-23T10:00:00+00:00", "config": {"language": "vie"}, "pages": [
        {"url": page, "via": "itemlist", "status": 200, "language": "vi", "problem": None,
         "items": [{"@type": "JobPosting", "title": "Kỹ sư", "identifier": "ok"}, {"@type": "JobPosting"}, "junk"]},
        {"url": page + "/gone", "via": "links", "status": 404, "items": [], "problem": "fetch failed: GET … 404"},
        {"url": page + "/about", "via": "links", "status": 200, "items": [], "problem": "no JobPosting on the page"},
        "not a page"]}
    parsed = parse_site_crawl(RawPayload(board="example", location="archive", fetched_at=datetime.now(),
                                         body=json.dumps(archive).encode()))
    assert list(parsed.postings.external_id) == ["ok"] and parsed.snapshot_at == datetime.fromisoformat(
        archive["crawled_at"])
    assert [(r.position, r.reason, r.external_id) for r in parsed.bad_records] == [
        (1, "title: Field required", page), (2, "not a JobPosting object: str", page), (3, "not a crawled page", None)]


@pytest.mark.parametrize("body", [b"[]", b"{}", b'{"pages": 3}', b"<html>oops</html>"])
def test_an_unusable_payload_fails_the_parse(body):
    with pytest.raises(BoardError):
        parse_site_crawl(RawPayload(board="localsite", location="x", body=body, fetched_at=datetime.now()))


# --- in the browser --------------------------------------------------------------------------------------


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
def test_the_crawl_in_chromium_reads_the_same_and_keeps_the_pace():
    with local_site(browser=True, request_delay=0.1) as (server, config):
        done = crawl_site(server, config)
    assert done.paths() == EXPECTED_PATHS  # pages only: no image, font or favicon request
    assert [event[:2] for event in done.steps.events if event[0] != "advance"][4:6] == [
        ("start", "start_browser"), ("finish", "start_browser")]
    # the delay is counted from each navigation's end too: no tolerance needed for the browser's own lag
    assert min(gaps(done.hits)) >= 0.1
    busy = [hit for hit in done.hits if hit.path == THROTTLED_PATH]
    assert busy[1].at - busy[0].at >= 1.0 - PACING_TOLERANCE
    parsed = parse_site_crawl(done.payload)
    assert set(parsed.postings.external_id) == EXPECTED_IDS
    assert sorted(record.reason for record in parsed.bad_records) == [
        "language vi, not the site's en", "malformed JSON-LD: Expecting ',' delimiter at line 1 column 77",
        "no JobPosting on the page"]
    assert all(hit.headers["user-agent"].startswith("jobsync/") for hit in done.hits)
