"""The site_crawl lane materialized in-process against the local job site, a real store, and the
step-by-step records of a successful, a failing and a partly failing sync."""
from __future__ import annotations

import os
from datetime import datetime, timezone

import dagster as dg
import pytest

from jobsync_pipeline.core.steps import CRAWL_STEPS
from jobsync_pipeline.defs.lanes import build_source_lane, build_stalest_first_schedule
from jobsync_pipeline.defs.resources import HttpResource, StoreResource, SyncPolicyResource
from jobsync_pipeline.defs.source_specs import SITE_CRAWL
from jobsync_pipeline.store.repo import Store
from jobsync_pipeline_tests.http_server import LocalServer
from jobsync_pipeline_tests.lane_helpers import query
from jobsync_pipeline_tests.local_site import SITE_NAME, local_site, site_config

LANE = build_source_lane(SITE_CRAWL)


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def crawl(instance, store_url: str, sites: list[str], **policy) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions(SITE_CRAWL.partitions_name,
                                    [s for s in sites if not instance.has_dynamic_partition(SITE_CRAWL.partitions_name, s)])
    keys = instance.get_dynamic_partitions(SITE_CRAWL.partitions_name)
    ordered = sorted(sites, key=keys.index)
    selection = ({"partition_key": ordered[0]} if len(ordered) == 1 else
                 {"tags": {"dagster/asset_partition_range_start": ordered[0],
                           "dagster/asset_partition_range_end": ordered[-1]}})
    return dg.materialize(
        LANE.assets, instance=instance, raise_on_error=False,
        resources={"store": StoreResource(url=store_url),
                   "http": HttpResource(pacing_store_url=store_url, max_attempts=3),
                   "sync_policy": SyncPolicyResource(**policy)}, **selection)


def steps_of(store: Store, board: str) -> dict[str, object]:
    (sync,) = store.sync_history("site_crawl", board, limit=1)
    return {s.name: s for s in store.steps.steps(sync.id)}


def test_a_successful_crawl_lands_its_jobs_and_records_every_step(instance, store_url):
    store = Store(store_url)
    with local_site() as (server, config):
        store.sites.add(config)
        result = crawl(instance, store_url, [SITE_NAME])
    assert result.success
    (sync,) = store.sync_history("site_crawl", SITE_NAME)
    assert sync.status == "success" and sync.counts["found"] > 0 and sync.counts["new"] == sync.counts["found"] - \
        sync.counts["already_expired"]
    assert sync.counts["already_expired"] == 1  # the posting past its validThrough is found, not added
    assert sync.counts["bad"] >= 3  # no posting, malformed JSON-LD, another language: each with its reason
    reasons = {r for (r,) in query(store_url, "SELECT reason FROM bad_records WHERE source = 'site_crawl'")}
    assert any("no JobPosting" in r for r in reasons) and any("malformed JSON-LD" in r for r in reasons)
    assert any("language" in r for r in reasons)

    steps = steps_of(store, SITE_NAME)
    assert list(steps) == list(CRAWL_STEPS.all())
    assert steps["start_browser"].status == "skipped"
    assert {s.status for n, s in steps.items() if n != "start_browser"} == {"completed"}
    crawl_step = steps["crawl"]
    assert crawl_step.done == crawl_step.total and crawl_step.counts["jobs_found"] > 0
    assert crawl_step.counts["disallowed"] == 1  # robots.txt kept one job page out
    assert steps["generate_urls"].counts["pages"] >= 2
    assert steps["save"].counts["added"] == sync.counts["new"]
    assert steps["process"].counts["found"] == sync.counts["found"]
    for step in steps.values():
        if step.status != "skipped":
            assert step.started_at is not None and step.finished_at >= step.started_at

    # the step's metadata lands on the board's partition, numbers the UI plots
    (raw,) = result.asset_materializations_for_node("site_crawl__raw_snapshot")
    assert raw.partition == SITE_NAME and "steps" in raw.metadata and raw.metadata["step_crawl_seconds"].value >= 0
    (applied,) = result.asset_materializations_for_node("site_crawl__job_diff")
    assert applied.metadata["new"].value == sync.counts["new"] and "steps" in applied.metadata
    # a structured line per step change in the run's log
    lines = [r.user_message for r in instance.all_logs(result.run_id) if f"sync {sync.id} step " in r.user_message]
    assert any("step crawl: completed" in line and '"jobs_found"' in line for line in lines)
    assert any("step save: completed" in line for line in lines)


def test_a_site_that_cannot_be_reached_fails_at_its_availability_check(instance, store_url):
    store = Store(store_url)
    with LocalServer({}) as down:
        unreachable = site_config(down, name="gone")
    store.sites.add(unreachable)  # the port is closed once the server stops
    result = crawl(instance, store_url, ["gone"])
    assert not result.success
    (sync,) = store.sync_history("site_crawl", "gone")
    assert sync.status == "failed" and sync.error
    steps = steps_of(store, "gone")
    assert steps["initialize"].status == "completed"
    assert steps["check_availability"].status == "failed" and steps["check_availability"].error
    assert {steps[n].status for n in CRAWL_STEPS.all()[2:]} == {"skipped"}
    assert query(store_url, "SELECT count(*) FROM jobs WHERE source = 'site_crawl'") == [(0,)]


def test_one_site_failing_leaves_the_other_synced_and_both_recorded(instance, store_url):
    store = Store(store_url)
    with LocalServer({}) as down:
        store.sites.add(site_config(down, name="aaa-gone"))
    with local_site() as (server, config):
        store.sites.add(config)
        result = crawl(instance, store_url, ["aaa-gone", SITE_NAME])
    assert not result.success  # the run names the failed site; the good one is applied
    statuses = {s.board: s.status for s in store.sync_history("site_crawl")}
    assert statuses == {"aaa-gone": "failed", SITE_NAME: "success"}
    assert steps_of(store, SITE_NAME)["cleanup"].status == "completed"
    assert steps_of(store, "aaa-gone")["save"].status == "skipped"
    assert query(store_url, "SELECT count(*) FROM jobs WHERE source = 'site_crawl' AND board = 'aaa-gone'") == [(0,)]


def test_a_second_crawl_expires_nothing_by_absence_and_keeps_step_history_within_its_limit(instance, store_url):
    store = Store(store_url)
    with local_site() as (server, config):
        store.sites.add(config)
        assert crawl(instance, store_url, [SITE_NAME]).success
        store.sites.set(SITE_NAME, {"keywords": ["python"]})  # the java results are not crawled this time
        assert crawl(instance, store_url, [SITE_NAME], step_history_syncs=1).success
    latest, first = store.sync_history("site_crawl", SITE_NAME)
    assert latest.counts["expired"] == 0  # a crawl lists some of a site's jobs: absence is not expiry
    assert store.steps.steps(first.id) == [] and store.steps.steps(latest.id)


def test_the_schedule_crawls_active_sites_stalest_first_never_an_inactive_one(store_url):
    with dg.instance_for_test() as instance:  # evaluate_tick reopens the instance from its ref
        stalest_first_ticks(instance, store_url)


def stalest_first_ticks(instance, store_url: str) -> None:
    store = Store(store_url)
    with LocalServer({}) as server:
        for name in ("alpha", "beta", "gamma"):
            store.sites.add(site_config(server, name=name))
    store.sites.set("beta", {}, active=False)
    store.boards.attempted("site_crawl", ["alpha"], at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    instance.add_dynamic_partitions(SITE_CRAWL.partitions_name, ["alpha", "beta", "gamma"])
    schedule = build_stalest_first_schedule(SITE_CRAWL, LANE.jobs[0], SITE_CRAWL.partitions_def())

    def tick(batch_size: int) -> set[str]:
        with dg.build_schedule_context(
                instance=instance, scheduled_execution_time=datetime(2026, 12, 5, 3, 20, tzinfo=timezone.utc),
                resources={"store": StoreResource(url=store_url),
                           "sync_policy": SyncPolicyResource(batch_size=batch_size)}) as context:
            data = schedule.evaluate_tick(context)
        return {tag for r in data.run_requests for tag in (r.tags["dagster/asset_partition_range_start"],
                                                            r.tags["dagster/asset_partition_range_end"])}

    assert tick(1) == {"gamma"}  # never synced: the stalest
    assert tick(5) == {"alpha", "gamma"}  # beta is inactive


@pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="no Chromium at /usr/bin/chromium (apt-get install chromium)")
def test_a_site_crawled_in_the_browser_lands_the_same_jobs(instance, sqlite_url):
    store = Store(sqlite_url)
    with local_site(browser=True) as (server, config):
        store.sites.add(config)
        assert crawl(instance, sqlite_url, [SITE_NAME]).success
    (sync,) = store.sync_history("site_crawl", SITE_NAME)
    assert sync.counts["new"] == 9 and sync.counts["already_expired"] == 1
    started = steps_of(store, SITE_NAME)["start_browser"]
    assert started.status == "completed" and started.seconds > 0
