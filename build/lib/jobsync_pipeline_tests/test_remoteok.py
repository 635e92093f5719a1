"""RemoteOK: the parser on a recorded feed and its edge cases, the connector against a local server."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from jobsync_pipeline.sources.base import BoardError
from jobsync_pipeline.core.models import RawPayload
from jobsync_pipeline.sources.http import HttpPolicy, PoliteClient
from jobsync_pipeline.sources.remoteok import FEED_BOARD, RemoteOkConnector, parse_remoteok
from jobsync_pipeline_tests.conftest import FIXTURES
from jobsync_pipeline_tests.http_server import LocalServer, Reply, json_reply

NOW = datetime(2026, 11, 23, tzinfo=timezone.utc)
FEED = (FIXTURES / "remoteok" / "api.tag_python.json").read_bytes()
NOTICE = {"last_updated": 1795327204, "legal": "API Terms of Service"}


def payload(body: bytes | list) -> RawPayload:
    body = body if isinstance(body, bytes) else json.dumps(body).encode()
    return RawPayload(board="python", location="https://example.test/api?tag=python", body=body, fetched_at=NOW)


def job(**fields) -> dict:
    return {"id": "1", "position": "Engineer", "company": "Acme", "epoch": 1795269731, **fields}


def test_recorded_feed_parses_without_the_legal_notice():
    parsed = parse_remoteok(payload(FEED))
    assert parsed.found == 6 and parsed.bad_records == []
    first = parsed.postings.set_index("external_id").loc["1131207"]
    assert (first.title, first.company, first.location) == ("Python Backend Engineer", "Bramblehouse",
                                                            "Worldwide")
    assert first.posted_date == "2026-11-22"
    assert (first.salary_min, first.salary_max, first.salary_currency) == (95000.0, 130000.0, "USD")
    assert "python" in json.loads(first.tags)
    assert first.description.startswith("Bramblehouse runs an online lending library")
    assert first.description_raw.startswith("<p>") and first.description_format == "html"
    assert set(parsed.postings.external_id.str.len()) and all(parsed.postings.url.str.startswith("https://"))


def test_entities_in_titles_are_decoded_and_zero_salaries_are_unknown():
    parsed = parse_remoteok(payload([NOTICE, job(position="R&amp;D Engineer", salary_min=0, salary_max=0)]))
    row = parsed.postings.iloc[0]
    assert row.title == "R&D Engineer"
    assert row.salary_min is None and row.salary_max is None and row.salary_currency is None


def test_numeric_ids_string_salaries_and_millisecond_epochs():
    parsed = parse_remoteok(payload([NOTICE, job(id=42, salary_min="90,000", salary_max="120000",
                                                 epoch=1795269731000)]))
    row = parsed.postings.iloc[0]
    assert row.external_id == "42" and row.posted_date == "2026-11-21"
    assert (row.salary_min, row.salary_max) == (90000.0, 120000.0)


def test_an_unreadable_salary_is_kept_as_text_not_a_bad_record():
    row = parse_remoteok(payload([NOTICE, job(salary_min="competitive")])).postings.iloc[0]
    assert row.salary_min is None and row.salary_text == "competitive"


def test_jobs_without_an_id_or_a_position_are_set_aside_and_the_rest_syncs():
    records = [NOTICE, job(id=None), {"position": "No id"}, job(id="2", position=""), job(id="3"), "junk"]
    parsed = parse_remoteok(payload(records))
    assert list(parsed.postings.external_id) == ["3"]
    assert [r.position for r in parsed.bad_records] == [0, 1, 2, 4]  # positions after the notice


def test_a_feed_with_only_the_notice_is_empty():
    assert parse_remoteok(payload([NOTICE])).found == 0


def test_bytes_that_are_not_utf8_become_replacement_characters():
    body = json.dumps([NOTICE, job(company="Caf\u00e9")]).encode().replace("\\u00e9".encode(), b"\xe9")
    parsed = parse_remoteok(payload(body))
    assert parsed.postings.iloc[0].company == "Caf\ufffd"


@pytest.mark.parametrize("body", [b"{}", b"<html>rate limited</html>", b""])
def test_an_unusable_body_fails_the_tag(body):
    with pytest.raises(BoardError):
        parse_remoteok(payload(body))


def test_all_tags_share_one_catalog_board():
    assert set(parse_remoteok(payload(FEED)).postings.external_id)  # keys are per feed, not per tag
    assert FEED_BOARD == "all"


def test_connector_asks_for_the_tag_and_sends_validators():
    routes = {"/api?tag=python": Reply(body=FEED, etag='"v1"')}
    with LocalServer(routes) as server, PoliteClient(HttpPolicy(requests_per_second=None)) as client:
        connector = RemoteOkConnector(client, base_url=server.base_url)
        first = connector.fetch("python")
        again = connector.fetch("python", previous=first)
        assert first.body == FEED and first.etag == '"v1"'
        assert again.not_modified
        assert [h.path for h in server.hits] == ["/api?tag=python"] * 2
        assert server.hits[1].headers.get("if-none-match") == '"v1"'


def test_connector_paces_requests_two_seconds_apart_with_an_injected_clock():
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    routes = {f"/api?tag={tag}": json_reply([NOTICE]) for tag in ("dev", "data", "design")}
    with LocalServer(routes) as server, PoliteClient(HttpPolicy(requests_per_second=0.5),
                                                     clock=lambda: now[0], sleep=sleep) as client:
        connector = RemoteOkConnector(client, base_url=server.base_url)
        for tag in ("dev", "data", "design"):
            connector.fetch(tag)
    assert len(server.hits) == 3
    assert sum(sleeps) == pytest.approx(4.0)  # two waits of 2 s between three requests
