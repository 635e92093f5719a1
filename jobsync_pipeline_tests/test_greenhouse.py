"""Greenhouse: the parser on recorded payloads, the connector against a local server."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from jobsync_pipeline.sources.base import BoardError
from jobsync_pipeline.core.models import RawPayload
from jobsync_pipeline.sources.greenhouse import GreenhouseConnector, parse_greenhouse
from jobsync_pipeline.sources.http import FetchError, HttpPolicy, PoliteClient
from jobsync_pipeline_tests.conftest import FIXTURES
from jobsync_pipeline_tests.http_server import LocalServer, Reply, json_reply

GREENHOUSE = FIXTURES / "greenhouse"
NOW = datetime(2026, 11, 23, tzinfo=timezone.utc)


def payload(body: bytes | dict, board: str = "larkfieldhealth") -> RawPayload:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return RawPayload(board=board, location=f"https://example.test/{board}", body=raw, fetched_at=NOW)


def test_recorded_board_parses_with_unescaped_text():
    parsed = parse_greenhouse(payload((GREENHOUSE / "larkfieldhealth.jobs.json").read_bytes()))
    rows = parsed.postings.set_index("external_id")
    assert parsed.found == 6 and parsed.bad_records == []
    first = rows.loc["5120344"]
    assert (first.title, first.company, first.location) == ("Clinical Data Engineer", "Larkfield Health",
                                                            "Amsterdam, Netherlands")
    assert first.url == "https://job-boards.greenhouse.io/larkfieldhealth/jobs/5120344"
    assert first.posted_date == "2026-10-26"
    assert "Keep our FHIR & HL7 feeds tested" in first.description  # &amp;amp; unescaped once, then parsed
    assert "<" not in first.description and "&lt;" not in first.description
    assert rows.loc["5120358"].title == "Quality & Compliance Specialist"
    assert rows.loc["5120377"].location == "Düsseldorf, Deutschland"
    assert {rows.loc["5120351"].location, rows.loc["5120362"].location} == {"Remote - US", "Remote (EU)"}


def test_empty_board_is_an_empty_snapshot():
    parsed = parse_greenhouse(payload((GREENHOUSE / "stillwater.jobs.json").read_bytes(), "stillwater"))
    assert parsed.found == 0 and parsed.bad_records == []


@pytest.mark.parametrize("body, problem", [
    (b"<html><body>Service temporarily unavailable</body></html>", "not valid JSON"),
    (b'{"error": "oops"}', "not a Greenhouse jobs document"),
    (b'[{"id": 1}]', "not a Greenhouse jobs document"),
])
def test_an_unusable_body_fails_the_board_clearly(body, problem):
    with pytest.raises(BoardError, match=problem):
        parse_greenhouse(payload(body))


def test_bad_and_duplicate_jobs_are_set_aside():
    jobs = [{"id": 1, "title": "Engineer"}, {"title": "No id"}, {"id": 2}, {"id": 1, "title": "Engineer again"},
            {"id": 3, "title": "Designer", "location": None, "content": None, "updated_at": "nonsense"}]
    parsed = parse_greenhouse(payload({"jobs": jobs, "meta": {"total": 5}}))
    assert list(parsed.postings.external_id) == ["1"]
    assert [r.position for r in parsed.bad_records] == [1, 2, 4]
    assert parsed.duplicates == ["1"]


def test_a_nul_character_sets_only_that_job_aside():
    # PostgreSQL text cannot hold NUL: unchecked, one such job would fail the board's whole apply
    jobs = [{"id": 1, "title": "Engineer", "content": "a\u0000b"}, {"id": 2, "title": "Designer"}]
    parsed = parse_greenhouse(payload({"jobs": jobs}))
    assert list(parsed.postings.external_id) == ["2"]
    assert [r.reason for r in parsed.bad_records] == ["description: contains a NUL character"]


def test_connector_fetches_with_validators_and_reports_missing_boards():
    body = (GREENHOUSE / "larkfieldhealth.jobs.json").read_bytes()
    routes = {"/v1/boards/larkfieldhealth/jobs?content=true": Reply(body=body, etag='"v1"'),
              "/v1/boards/nope/jobs?content=true": Reply(
                  status=404, body=(GREENHOUSE / "unknown_board.jobs.404.json").read_bytes())}
    with LocalServer(routes) as server, PoliteClient(HttpPolicy(requests_per_second=None)) as client:
        connector = GreenhouseConnector(client, base_url=server.base_url)
        first = connector.fetch("larkfieldhealth")
        assert first.body == body and first.etag == '"v1"' and not first.not_modified
        again = connector.fetch("larkfieldhealth", previous=first)
        assert again.not_modified and again.body == b""
        assert server.hits[-1].headers["if-none-match"] == '"v1"'
        with pytest.raises(FetchError) as missing:
            connector.fetch("nope")
        assert missing.value.status == 404 and "/v1/boards/nope/jobs" in str(missing.value)


def test_details_the_board_states_are_kept_as_stated():
    parsed = parse_greenhouse(payload((FIXTURES / "greenhouse" / "larkfieldhealth.jobs.json").read_bytes()))
    rows = parsed.postings.set_index("external_id")
    assert (rows.loc["5120344"].workplace_type, rows.loc["5120344"].department) == ("Hybrid", "Data Engineering")
    assert rows.loc["5120351"].workplace_type is None  # metadata: null
    assert rows.loc["5120344"].description_format == "escaped_html"
    assert rows.loc["5120344"].description_raw.startswith("&lt;div")


def test_pay_ranges_in_cents_become_amounts():
    job = {"id": 1, "title": "Engineer", "pay_input_ranges": [
        {"min_cents": 15000000, "max_cents": 19000000, "currency_type": "USD", "title": "US base pay"}]}
    row = parse_greenhouse(payload({"jobs": [job]})).postings.iloc[0]
    # Greenhouse states no interval: inferred from the amounts when the job is written
    assert (row.salary_min, row.salary_max, row.salary_currency, row.salary_interval) == (150000.0, 190000.0,
                                                                                          "USD", None)
    assert row.salary_source == "pay_input_ranges"
