"""The Dagster instance configurations we ship: the embedded SQLite one and the PostgreSQL one."""
from __future__ import annotations

import shutil

import dagster as dg

from jobsync_pipeline.store.engine import upgrade

from jobsync_pipeline_tests.conftest import PROJECT_ROOT
from jobsync_pipeline_tests.conftest import SAMPLE_BUCKET
from jobsync_pipeline_tests.lane_helpers import query, run_lane


def run_on_instance(home, store_url, bucket):
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = run_lane(instance, store_url, bucket, ["marisol-hoteles"])
        assert result.success
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(["company_files", "job_diff"]),
                                  asset_partitions=["marisol-hoteles"]), limit=10).records
        assert [r.asset_materialization.metadata["new"].value for r in records] == [3]
        assert instance.get_run_by_id(result.run_id).is_success
        return instance.get_concurrency_config().pool_config.default_pool_limit


def test_embedded_instance_runs_the_lane(tmp_path, sqlite_url):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").symlink_to(PROJECT_ROOT / "dagster.yaml")
    assert run_on_instance(home, sqlite_url, SAMPLE_BUCKET / "snapshot_1") == 1
    assert (home / "storage").exists() or (home / "history").exists()


def test_postgres_instance_runs_the_lane(tmp_path, new_postgres_database, monkeypatch):
    """Instance and store on one server, in two databases: both have a table named `jobs`."""
    instance_url, store_url = new_postgres_database(), new_postgres_database()
    upgrade(store_url)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", instance_url)
    assert run_on_instance(home, store_url, SAMPLE_BUCKET / "snapshot_1") == 1
    assert query(instance_url, "select count(*) from runs") == [(1,)]
    assert query(store_url, "select count(*) from jobs where expired_at is null") == [(3,)]
