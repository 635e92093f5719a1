"""defs/operations.py: the catalog and sync_health assets materialized on a real store, the sensor that
refreshes them after syncs, and `jobsync status`."""
from __future__ import annotations

import json

import dagster as dg

from jobsync_pipeline.core.status import SyncStatus
from jobsync_pipeline.definitions import defs
from jobsync_pipeline.defs.operations import catalog, sync_health, sync_health_sensor
from jobsync_pipeline.defs.resources import StoreResource
from jobsync_pipeline.store.engine import upgrade
from jobsync_pipeline.store.repo import Store
from jobsync_pipeline_tests.lane_helpers import BOARDS, fill_bucket, run_lane
from jobsync_pipeline_tests.conftest import SAMPLE_BUCKET
from jobsync_pipeline_tests.test_cli import env, jobsync  # noqa: F401 - the fixture


def synced_store(store_url: str, tmp_path) -> Store:
    """The sample bucket synced once, and one Greenhouse board that failed."""
    bucket = tmp_path / "bucket"
    fill_bucket(bucket, *sorted((SAMPLE_BUCKET / "snapshot_1").glob("*.json")))
    with dg.instance_for_test() as instance:
        assert run_lane(instance, store_url, bucket, BOARDS).success
    store = Store(store_url)
    store.boards.add("greenhouse", ["acme"], "cli")
    store.record_sync("greenhouse", "acme", SyncStatus.FAILED, run_id="r", error="GET … answered 404 Not Found")
    return store


def metadata(result, key: str) -> dict:
    (materialization,) = result.asset_materializations_for_node(key)
    return {k: v.value for k, v in materialization.metadata.items()}


def test_catalog_and_sync_health_record_what_the_store_holds(store_url, tmp_path):
    synced_store(store_url, tmp_path)
    result = dg.materialize([catalog, sync_health], resources={"store": StoreResource(url=store_url)})
    assert result.success
    numbers = metadata(result, "catalog")
    assert (numbers["active"], numbers["expired"], numbers["active_company_files"]) == (8, 0, 8)
    assert numbers["dagster/row_count"] == 8 and numbers["canonical_active"] == 8
    columns = {c.name for c in numbers["dagster/column_schema"].columns}
    assert {"source", "board", "external_id", "title", "expired_at", "dedupe_key"} <= columns

    health = metadata(result, "operations__sync_health")
    assert health["company_files_status"] == "healthy" and health["company_files_success_rate_7d"] == 1.0
    assert health["company_files_jobs_found"] == 8
    assert health["greenhouse_status"].startswith("failing: never synced successfully")
    assert health["sources_failing"] == 1 and health["queue_search_runs_pending"] == 0
    (worst,) = health["worst_boards"].records
    assert (worst.data["source"], worst.data["board"], worst.data["success_rate"]) == ("greenhouse", "acme", 0.0)


def test_the_sensor_refreshes_after_a_sync_ends_and_only_then(store_url, tmp_path):
    store = Store(store_url)
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"store": StoreResource(url=store_url)})
        assert isinstance(sync_health_sensor(context), dg.SkipReason)  # nothing synced yet
        store.record_sync("lever", "x", SyncStatus.SUCCESS, run_id="r")
        first = sync_health_sensor(context)
        assert isinstance(first, dg.RunRequest) and first.run_key.startswith("health:1@")
        context = dg.build_sensor_context(instance=instance, cursor=context.cursor,
                                          resources={"store": StoreResource(url=store_url)})
        assert isinstance(sync_health_sensor(context), dg.SkipReason)
        store.record_sync("lever", "y", SyncStatus.FAILED, run_id="r", error="x")
        assert sync_health_sensor(context).run_key.startswith("health:2@")


def test_lineage_runs_from_each_source_to_the_catalog_to_notifications():
    graph = {spec.key.to_user_string(): {d.asset_key.to_user_string() for d in spec.deps}
             for spec in defs.resolve_all_asset_specs()}
    assert {f"{source}/job_diff" for source in ("company_files", "greenhouse", "lever", "remoteok", "himalayas",
                                                "site_crawl")} == graph["catalog"]
    assert "catalog" in graph["notifications/notification_batches"]
    assert graph["operations/sync_health"] == {"catalog"}


def test_status_prints_a_line_per_source_then_the_queues(env, tmp_path):
    url = env["JOBSYNC_DATABASE_URL"]
    upgrade(url)
    synced_store(url, tmp_path)
    done = jobsync(env, "status")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("company_files  healthy") and "8 open job(s)" in lines[0]
    (greenhouse,) = [line for line in lines if line.startswith("greenhouse")]
    assert greenhouse.split()[1] == "failing" and ": never synced successfully; success rate 0%" in greenhouse
    assert "queue search_runs: 0 pending" in lines
    report = json.loads(jobsync(env, "status", "--json").stdout)
    assert [row["source"] for row in report["sources"]][:2] == ["company_files", "greenhouse"]
    assert set(report) == {"at", "sources", "queues", "worst_boards"}
