"""The bucket sensor, evaluated with `build_sensor_context` on a real bucket folder."""
from __future__ import annotations

import json
import os
import shutil

import dagster as dg
import pytest

from jobsync_pipeline.defs.resources import BucketResource
from jobsync_pipeline_tests.conftest import SAMPLE_BUCKET
from jobsync_pipeline_tests.lane_helpers import LANE

(SENSOR,) = LANE.sensors
PARTITIONS = "company_files_boards"


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def tick(instance, bucket, cursor=None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"bucket": BucketResource(url=str(bucket))})
    result = SENSOR(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def test_new_files_become_partitions_and_runs(instance, tmp_path):
    shutil.copytree(SAMPLE_BUCKET / "snapshot_1", tmp_path / "bucket")
    result = tick(instance, tmp_path / "bucket")
    (request,) = result.dynamic_partitions_requests
    assert sorted(request.partition_keys) == ["brightwave-energy", "kaito-mobility", "nordlicht-games"]
    assert sorted(r.partition_key for r in result.run_requests) == sorted(request.partition_keys)
    assert all(r.run_key.startswith(f"company_files:{r.partition_key}:") for r in result.run_requests)
    assert sorted(json.loads(result.cursor)) == ["brightwave-energy.json", "kaito-mobility.json",
                                                 "nordlicht-games.json"]


def test_an_unchanged_bucket_requests_nothing(instance, tmp_path):
    shutil.copytree(SAMPLE_BUCKET / "snapshot_1", tmp_path / "bucket")
    first = tick(instance, tmp_path / "bucket")
    again = tick(instance, tmp_path / "bucket", cursor=first.cursor)
    assert again.run_requests == []
    assert not again.dynamic_partitions_requests
    assert again.cursor == first.cursor


def test_exactly_the_changed_and_added_files_are_requested(instance, tmp_path):
    bucket = tmp_path / "bucket"
    shutil.copytree(SAMPLE_BUCKET / "snapshot_1", bucket)
    first = tick(instance, bucket)
    changed = bucket / "kaito-mobility.json"
    shutil.copy(SAMPLE_BUCKET / "snapshot_2" / "kaito-mobility.json", changed)
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # a later upload
    shutil.copy(SAMPLE_BUCKET / "snapshot_1" / "nordlicht-games.json", bucket / "halcyon-bakery.json")

    result = tick(instance, bucket, cursor=first.cursor)

    assert sorted(r.partition_key for r in result.run_requests) == ["halcyon-bakery", "kaito-mobility"]
    (request,) = result.dynamic_partitions_requests
    assert list(request.partition_keys) == ["halcyon-bakery"]


def test_unsafe_file_names_are_refused_not_requested(instance, tmp_path):
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    for name in ("..hidden.json", "bad name.json", "tab\there.json", "ok-board.json"):
        shutil.copy(SAMPLE_BUCKET / "snapshot_1" / "kaito-mobility.json", bucket / name)
    result = tick(instance, bucket)
    assert [r.partition_key for r in result.run_requests] == ["ok-board"]
    assert instance.get_dynamic_partitions(PARTITIONS) == ["ok-board"]
    again = tick(instance, bucket, cursor=result.cursor)
    assert again.run_requests == []
