"""Lever: the parser on recorded pages, the paging connector against a local server."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from jobsync_pipeline.sources.base import BoardError
from jobsync_pipeline.core.models import RawPayload
from jobsync_pipeline.sources.http import FetchError, HttpPolicy, PoliteClient
from jobsync_pipeline.sources.lever import LeverConnector, epoch_date, parse_lever
from jobsync_pipeline_tests.conftest import FIXTURES
from jobsync_pipeline_tests.http_server import LocalServer, Reply

LEVER = FIXTURES / "lever"
NOW = datetime(2026, 11, 23, tzinfo=timezone.utc)
PAGES = [(LEVER / f"saltmarsh.skip{skip}.limit3.json").read_bytes() for skip in (0, 3, 6)]


def payload(body: bytes) -> RawPayload:
    return RawPayload(board="saltmarsh", location="https://example.test/saltmarsh", body=body, fetched_at=NOW)


def test_recorded_pages_parse():
    parsed = parse_lever(payload(b"[" + b",".join(PAGES) + b"]"))
    assert parsed.found == 7 and parsed.bad_records == []
    scientist = parsed.postings.set_index("external_id").loc["7bfc6225-8439-4401-9e9c-45b3f103a7eb"]
    assert (scientist.title, scientist.location, scientist.company) == ("Senior Data Scientist", "Remote - Canada",
                                                                        "saltmarsh")
    assert json.loads(scientist.requirements) == ["Python and geospatial libraries", "Bayesian modelling"]
    assert scientist.url == "https://jobs.lever.co/saltmarsh/7bfc6225-8439-4401-9e9c-45b3f103a7eb"
    assert scientist.posted_date == epoch_date(1793292312000)


def test_epochs_in_milliseconds_and_seconds_agree():
    assert epoch_date(1793631912000) == epoch_date(1793631912) == "2026-11-02"


@pytest.mark.parametrize("body", [b"{}", b"[{}]", b"<html>maintenance</html>"])
def test_an_unusable_body_fails_the_board(body):
    with pytest.raises(BoardError):
        parse_lever(payload(body))


def test_connector_pages_until_a_short_page():
    routes = {f"/v0/postings/saltmarsh?mode=json&skip={skip}&limit=3": Reply(body=page)
              for skip, page in zip((0, 3, 6), PAGES)}
    with LocalServer(routes) as server, PoliteClient(HttpPolicy(requests_per_second=None)) as client:
        fetched = LeverConnector(client, base_url=server.base_url, page_size=3).fetch("saltmarsh")
        assert [h.path for h in server.hits] == ["/v0/postings/saltmarsh?mode=json&skip=0&limit=3",
                                                 "/v0/postings/saltmarsh?mode=json&skip=3&limit=3",
                                                 "/v0/postings/saltmarsh?mode=json&skip=6&limit=3"]
    assert parse_lever(fetched).found == 7


def test_unknown_site_is_a_404_and_too_many_pages_is_refused():
    full_page = json.dumps([{"id": f"p{i}", "text": "Job"} for i in range(2)]).encode()
    routes = {"/v0/postings/nope?mode=json&skip=0&limit=2": Reply(
        status=404, body=(LEVER / "unknown_site.404.json").read_bytes())}
    routes.update({f"/v0/postings/huge?mode=json&skip={s}&limit=2": Reply(body=full_page) for s in (0, 2, 4)})
    with LocalServer(routes) as server, PoliteClient(HttpPolicy(requests_per_second=None)) as client:
        connector = LeverConnector(client, base_url=server.base_url, page_size=2, max_pages=3)
        with pytest.raises(FetchError) as missing:
            connector.fetch("nope")
        assert missing.value.status == 404
        with pytest.raises(BoardError, match="more than 3 pages"):
            connector.fetch("huge")


def test_salary_range_and_workplace_type_are_kept_as_stated():
    rows = parse_lever(payload(b"[" + b",".join(PAGES) + b"]")).postings.set_index("external_id")
    scientist = rows.loc["7bfc6225-8439-4401-9e9c-45b3f103a7eb"]
    assert (scientist.salary_min, scientist.salary_max, scientist.salary_currency, scientist.salary_interval) == (
        135000, 160000, "CAD", "per-year-salary")
    assert scientist.salary_text.startswith("The range above is the base salary")
    assert scientist.workplace_type == "remote" and scientist.department == "Data"
    assert rows.loc["24867602-1618-418f-947c-3c6d98218b70"].workplace_type == "onsite"
    assert rows.loc["24867602-1618-418f-947c-3c6d98218b70"].salary_min is None
