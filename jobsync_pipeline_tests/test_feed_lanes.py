"""The RemoteOK and Himalayas lanes materialized in-process against a local server and a real store."""
from __future__ import annotations

import json

import dagster as dg
import pytest

from jobsync_pipeline.defs.lanes import build_source_lane
from jobsync_pipeline.defs.resources import HttpResource, StoreResource, SyncPolicyResource
from jobsync_pipeline.defs.source_specs import HIMALAYAS, REMOTEOK, SourceSpec
from jobsync_pipeline_tests.conftest import FIXTURES
from jobsync_pipeline_tests.http_server import LocalServer, Reply, json_reply
from jobsync_pipeline_tests.lane_helpers import query

LANES = {spec.name: build_source_lane(spec) for spec in (REMOTEOK, HIMALAYAS)}
REMOTEOK_FEED = (FIXTURES / "remoteok" / "api.tag_python.json").read_bytes()
HIMALAYAS_PAGES = [(FIXTURES / "himalayas" / f"jobs.offset{n}.limit3.json").read_bytes() for n in (0, 3)]
NOTICE = {"last_updated": 1795327204, "legal": "Terms"}


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:  # disposed: its temporary folder is removed
        yield instance


def sync(instance, store_url: str, server: LocalServer, spec: SourceSpec, partition: str, **policy):
    return dg.materialize(
        LANES[spec.name].assets, instance=instance, raise_on_error=False, partition_key=partition,
        resources={"store": StoreResource(url=store_url),
                   "http": HttpResource(feed_requests_per_second=0.5, remoteok_base_url=server.base_url,
                                        himalayas_base_url=server.base_url),
                   "sync_policy": SyncPolicyResource(**policy)})


def metadata(result, stage: str, source: str) -> dict:
    (materialization,) = result.asset_materializations_for_node(f"{source}__{stage}")
    return {k: v.value for k, v in materialization.metadata.items()}


def test_remoteok_tags_list_into_one_catalog_and_absence_expires_nothing(instance, store_url):
    jobs = [j for j in json.loads(REMOTEOK_FEED) if "id" in j]
    routes = {"/api?tag=dev": Reply(body=REMOTEOK_FEED), "/api?tag=data": json_reply([NOTICE, jobs[0]])}
    with LocalServer(routes) as server:
        first = sync(instance, store_url, server, REMOTEOK, "dev")
        second = sync(instance, store_url, server, REMOTEOK, "data")
    assert first.success and second.success
    assert metadata(first, "job_diff", "remoteok")["new"] == 6
    numbers = metadata(second, "job_diff", "remoteok")
    assert (numbers["found"], numbers["new"], numbers["unchanged"], numbers["expired"]) == (1, 0, 1, 0)
    assert query(store_url, "SELECT DISTINCT board FROM jobs WHERE source = 'remoteok'") == [("all",)]
    assert query(store_url, "SELECT count(*) FROM jobs WHERE source = 'remoteok' AND expired_at IS NULL") == [(6,)]
    assert sorted(query(store_url, "SELECT board, status FROM syncs WHERE source = 'remoteok'")) == [
        ("data", "success"), ("dev", "success")]
    categories = dict(query(store_url, "SELECT external_id, category FROM jobs WHERE source = 'remoteok'"))
    assert categories and set(categories.values()) <= {"engineering", "data", "design", "product", "marketing",
                                                       "sales", "customer support", "operations", "finance",
                                                       "people", "other"}


def test_himalayas_reads_every_page_and_keeps_expiry_dates(instance, store_url):
    routes = {"/jobs/api?limit=20&offset=0": Reply(body=HIMALAYAS_PAGES[0]),
              "/jobs/api?limit=20&offset=3": Reply(body=HIMALAYAS_PAGES[1])}
    with LocalServer(routes) as server:
        result = sync(instance, store_url, server, HIMALAYAS, "all")
        assert [h.path for h in server.hits] == list(routes)
        gap = server.hits[1].at - server.hits[0].at
    assert result.success
    assert gap >= 1.9  # the feed pace: two seconds between requests (a lower bound, never flaky)
    assert metadata(result, "job_diff", "himalayas")["new"] == 5
    assert query(store_url, "SELECT count(*) FROM jobs WHERE source = 'himalayas' AND valid_through IS NOT NULL") \
        == [(5,)]
    assert query(store_url, "SELECT count(*) FROM jobs WHERE source = 'himalayas' AND workplace = 'remote'") == [(5,)]


def test_himalayas_stops_at_the_configured_page_cap(instance, store_url):
    routes = {"/jobs/api?limit=20&offset=0": Reply(body=HIMALAYAS_PAGES[0]),
              "/jobs/api?limit=20&offset=3": Reply(body=HIMALAYAS_PAGES[1])}
    with LocalServer(routes) as server:
        result = sync(instance, store_url, server, HIMALAYAS, "all", feed_max_pages=1)
        assert [h.path for h in server.hits] == ["/jobs/api?limit=20&offset=0"]
    assert result.success
    assert metadata(result, "job_diff", "himalayas")["new"] == 3


def test_a_broken_feed_fails_its_partition_and_expires_nothing(instance, store_url):
    with LocalServer({"/api?tag=dev": Reply(body=REMOTEOK_FEED)}) as server:
        assert sync(instance, store_url, server, REMOTEOK, "dev").success
    with LocalServer({"/api?tag=dev": Reply(body=b"<html>down</html>")}) as server:
        broken = sync(instance, store_url, server, REMOTEOK, "dev")
    assert not broken.success
    assert query(store_url, "SELECT count(*) FROM jobs WHERE expired_at IS NOT NULL") == [(0,)]
    assert query(store_url, "SELECT status FROM syncs WHERE source = 'remoteok' ORDER BY id") == [
        ("success",), ("failed",)]


def test_a_page_of_postings_past_their_expiry_date_adds_up(instance, store_url):
    # every found posting lands in one count: here all 30 in already_expired, in the metadata and the row
    page = json.loads(HIMALAYAS_PAGES[0])
    template = page["jobs"][0]
    page["jobs"] = [{**template, "guid": f"{template['guid']}-{n}", "expiryDate": 1_700_000_000}  # Nov 2023
                    for n in range(30)]
    page["totalCount"] = 30
    with LocalServer({"/jobs/api?limit=20&offset=0": json_reply(page)}) as server:
        result = sync(instance, store_url, server, HIMALAYAS, "all")
    assert result.success
    numbers = metadata(result, "job_diff", "himalayas")
    assert (numbers["found"], numbers["already_expired"], numbers["new"], numbers["unchanged"]) == (30, 30, 0, 0)
    assert query(store_url, "SELECT found, already_expired, new FROM syncs WHERE source = 'himalayas'") == [(30, 30, 0)]
    assert query(store_url, "SELECT count(*) FROM jobs") == [(0,)]
