"""Himalayas: the parser on recorded pages and its edge cases, the paging connector on a local server."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from jobsync_pipeline.sources.base import BoardError
from jobsync_pipeline.core.models import RawPayload
from jobsync_pipeline.sources.himalayas import HimalayasConnector, parse_himalayas
from jobsync_pipeline.sources.http import HttpPolicy, PoliteClient
from jobsync_pipeline_tests.conftest import FIXTURES
from jobsync_pipeline_tests.http_server import LocalServer, Reply, json_reply

NOW = datetime(2026, 11, 23, tzinfo=timezone.utc)
PAGES = [(FIXTURES / "himalayas" / f"jobs.offset{offset}.limit3.json").read_bytes() for offset in (0, 3)]


def payload(pages: list) -> RawPayload:
    body = b"[" + b",".join(p if isinstance(p, bytes) else json.dumps(p).encode() for p in pages) + b"]"
    return RawPayload(board="all", location="https://example.test/jobs/api", body=body, fetched_at=NOW)


def job(**fields) -> dict:
    return {"guid": "https://himalayas.app/companies/acme/jobs/1", "title": "Engineer", "companyName": "Acme",
            "pubDate": 1795266000, "expiryDate": 1800450000, **fields}


def test_recorded_pages_parse():
    parsed = parse_himalayas(payload(PAGES))
    assert parsed.found == 5 and parsed.bad_records == []
    row = parsed.postings.set_index("external_id").loc[
        "https://himalayas.app/companies/quillmate/jobs/staff-site-reliability-engineer-9034417721"]
    assert (row.title, row.company) == ("Staff Site Reliability Engineer", "Quillmate")
    assert row.location == "United States, Canada"
    assert json.loads(row.region_restrictions) == ["United States", "Canada"]
    assert (row.salary_min, row.salary_max, row.salary_currency) == (150000.0, 185000.0, "USD")
    assert row.posted_date == "2026-11-22"
    assert row.valid_through == datetime.fromtimestamp(1802692800, tz=timezone.utc).isoformat()
    assert "Own our incident response tooling" in row.description
    assert "Software Development" in json.loads(row.tags)


def test_an_empty_restriction_list_is_worldwide():
    row = parse_himalayas(payload([{"jobs": [job(locationRestrictions=[])]}])).postings.iloc[0]
    assert row.location == "Worldwide" and json.loads(row.region_restrictions) == []


def test_epochs_in_milliseconds_match_seconds():
    seconds = parse_himalayas(payload([{"jobs": [job()]}])).postings.iloc[0]
    millis = parse_himalayas(payload([{"jobs": [job(pubDate=1795266000000, expiryDate=1800450000000)]}])).postings.iloc[0]
    assert (seconds.posted_date, seconds.valid_through) == (millis.posted_date, millis.valid_through)


def test_null_and_string_salaries():
    rows = parse_himalayas(payload([{"jobs": [
        job(guid="a", minSalary=None, maxSalary=None, currency="USD"),
        job(guid="b", minSalary="80000", maxSalary="95,000", currency="eur"),
        job(guid="c", minSalary="n/a", currency="USD")]}])).postings.set_index("external_id")
    assert rows.loc["a"].salary_min is None and rows.loc["a"].salary_currency is None
    assert (rows.loc["b"].salary_min, rows.loc["b"].salary_max, rows.loc["b"].salary_currency) == (80000.0, 95000.0,
                                                                                                   "EUR")
    assert rows.loc["c"].salary_min is None and rows.loc["c"].salary_text == "n/a"


def test_jobs_without_a_guid_or_title_are_set_aside():
    parsed = parse_himalayas(payload([{"jobs": [job(guid=None), job(guid="x", title=""), job(guid="ok"), 7]}]))
    assert list(parsed.postings.external_id) == ["ok"]
    assert [r.position for r in parsed.bad_records] == [0, 1, 3]


@pytest.mark.parametrize("body", [b"{}", b"[{}]", b"[[1]]", b"<html>oops</html>"])
def test_an_unusable_body_fails_the_feed(body):
    with pytest.raises(BoardError):
        parse_himalayas(RawPayload(board="all", location="x", body=body, fetched_at=NOW))


def test_connector_pages_by_offset_until_the_total():
    routes = {"/jobs/api?limit=3&offset=0": Reply(body=PAGES[0]), "/jobs/api?limit=3&offset=3": Reply(body=PAGES[1])}
    with LocalServer(routes) as server, PoliteClient(HttpPolicy(requests_per_second=None)) as client:
        fetched = HimalayasConnector(client, base_url=server.base_url, page_size=3).fetch("all")
    assert [h.path for h in server.hits] == list(routes)
    assert parse_himalayas(fetched).found == 5


def test_connector_stops_at_the_page_cap():
    routes = {f"/jobs/api?limit=1&offset={n}": json_reply({"jobs": [job(guid=str(n))], "totalCount": 100})
              for n in range(5)}
    with LocalServer(routes) as server, PoliteClient(HttpPolicy(requests_per_second=None)) as client:
        fetched = HimalayasConnector(client, base_url=server.base_url, page_size=1, max_pages=3).fetch("all")
    assert len(server.hits) == 3 and parse_himalayas(fetched).found == 3


def test_connector_stops_on_an_empty_page():
    routes = {"/jobs/api?limit=2&offset=0": json_reply({"jobs": [job(guid="a"), job(guid="b")]}),
              "/jobs/api?limit=2&offset=2": json_reply({"jobs": []})}
    with LocalServer(routes) as server, PoliteClient(HttpPolicy(requests_per_second=None)) as client:
        fetched = HimalayasConnector(client, base_url=server.base_url, page_size=2).fetch("all")
    assert len(server.hits) == 2 and parse_himalayas(fetched).found == 2
