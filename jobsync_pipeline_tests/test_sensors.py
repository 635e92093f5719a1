"""The bucket sensor, evaluated with `build_sensor_context` on a real bucket folder."""
from __future__ import annotations

import json
import os
import shutil

import dagster as dg
import pytest

from jobsync_pipeline.defs.resources import BucketResource, StoreResource
from jobsync_pipeline.store import Store
from jobsync_pipeline_tests.conftest import SAMPLE_BUCKET
from jobsync_pipeline_tests.lane_helpers import LANE

(SENSOR,) = LANE.sensors
PARTITIONS = "company_files_boards"


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def tick(instance, sqlite_url):
    """One evaluation of the sensor on `bucket`, its new partitions added as the daemon would."""
    def evaluate(bucket, cursor=None) -> dg.SensorResult:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={
            "bucket": BucketResource(url=str(bucket)), "store": StoreResource(url=sqlite_url)})
        result = SENSOR(context)
        for request in result.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        return result

    return evaluate


def test_new_files_become_partitions_and_runs(instance, tmp_path, tick):
    shutil.copytree(SAMPLE_BUCKET / "snapshot_1", tmp_path / "bucket")
    result = tick(tmp_path / "bucket")
    (request,) = result.dynamic_partitions_requests
    assert sorted(request.partition_keys) == ["amberline-freight", "marisol-hoteles", "tessellate-studio"]
    assert sorted(r.partition_key for r in result.run_requests) == sorted(request.partition_keys)
    assert all(r.run_key.startswith(f"company_files:{r.partition_key}:") for r in result.run_requests)
    assert sorted(json.loads(result.cursor)) == ["amberline-freight.json", "marisol-hoteles.json",
                                                 "tessellate-studio.json"]


def test_an_unchanged_bucket_requests_nothing(instance, tmp_path, tick):
    shutil.copytree(SAMPLE_BUCKET / "snapshot_1", tmp_path / "bucket")
    first = tick(tmp_path / "bucket")
    again = tick(tmp_path / "bucket", cursor=first.cursor)
    assert again.run_requests == []
    assert not again.dynamic_partitions_requests
    assert again.cursor == first.cursor


def test_exactly_the_changed_and_added_files_are_requested(instance, tmp_path, tick):
    bucket = tmp_path / "bucket"
    shutil.copytree(SAMPLE_BUCKET / "snapshot_1", bucket)
    first = tick(bucket)
    changed = bucket / "marisol-hoteles.json"
    shutil.copy(SAMPLE_BUCKET / "snapshot_2" / "marisol-hoteles.json", changed)
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # a later upload
    shutil.copy(SAMPLE_BUCKET / "snapshot_1" / "tessellate-studio.json", bucket / "wickham-cycles.json")

    result = tick(bucket, cursor=first.cursor)

    assert sorted(r.partition_key for r in result.run_requests) == ["marisol-hoteles", "wickham-cycles"]
    (request,) = result.dynamic_partitions_requests
    assert list(request.partition_keys) == ["wickham-cycles"]


def test_unsafe_file_names_are_refused_not_requested(instance, tmp_path, tick):
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    for name in ("..hidden.json", "bad name.json", "tab\there.json", "ok-board.json"):
        shutil.copy(SAMPLE_BUCKET / "snapshot_1" / "marisol-hoteles.json", bucket / name)
    result = tick(bucket)
    assert [r.partition_key for r in result.run_requests] == ["ok-board"]
    assert instance.get_dynamic_partitions(PARTITIONS) == ["ok-board"]
    again = tick(bucket, cursor=result.cursor)
    assert again.run_requests == []


def test_a_removed_company_is_not_synced_again_when_its_file_changes(tmp_path, tick, sqlite_url):
    shutil.copytree(SAMPLE_BUCKET / "snapshot_1", tmp_path / "bucket")
    first = tick(tmp_path / "bucket")
    store = Store(sqlite_url)
    store.ensure_boards("company_files", ["marisol-hoteles"])
    store.boards.remove("company_files", "marisol-hoteles", "removed by an operator")
    shutil.copytree(SAMPLE_BUCKET / "snapshot_2", tmp_path / "bucket", dirs_exist_ok=True)
    later = tick(tmp_path / "bucket", first.cursor)
    assert sorted(r.partition_key for r in later.run_requests) == ["amberline-freight", "tessellate-studio"]
