"""The company-files lane materialized in-process, on SQLite and PostgreSQL stores."""
from __future__ import annotations

import dagster as dg
import pytest

from jobsync_pipeline_tests.conftest import FIXTURES, SAMPLE_BUCKET
from jobsync_pipeline_tests.lane_helpers import BOARDS, fill_bucket, partition_metadata, query, run_lane

BAD = FIXTURES / "company_files" / "bad"


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def snapshot(n: int):
    return sorted((SAMPLE_BUCKET / f"snapshot_{n}").glob("*.json"))


def test_two_snapshots_land_in_the_store_with_events(instance, store_url, tmp_path):
    bucket = tmp_path / "bucket"
    fill_bucket(bucket, *snapshot(1))
    first = run_lane(instance, store_url, bucket, BOARDS)
    assert first.success
    assert partition_metadata(first, "job_diff")["brightwave-energy"]["new"] == 3

    fill_bucket(bucket, *snapshot(2))
    second = run_lane(instance, store_url, bucket, BOARDS)
    assert second.success
    per_board = partition_metadata(second, "job_diff")
    assert {k: per_board["brightwave-energy"][k] for k in ("found", "new", "changed", "unchanged", "expired")} == \
        {"found": 3, "new": 1, "changed": 1, "unchanged": 1, "expired": 1}
    assert per_board["nordlicht-games"]["expired"] == 1  # ng-18 listed with isActive false
    assert query(store_url, "select count(*) from jobs where expired_at is null") == [(7,)]
    assert sorted(query(store_url, "select external_id, expired_reason from jobs where expired_at is not null")) == \
        [("KM-2026-034", "absent"), ("bw-103", "absent"), ("ng-18", "absent")]
    events = query(store_url, "select e.kind, j.external_id from job_events e join jobs j on j.id = e.job_id "
                              "join syncs s on s.id = e.sync_id where s.run_id = :run", run=second.run_id)
    assert sorted(events) == [("changed", "bw-102"), ("expired", "KM-2026-034"), ("expired", "bw-103"),
                              ("expired", "ng-18"), ("new", "bw-104"), ("new", "ng-21")]
    assert sorted(query(store_url, "select board, status, found from syncs where run_id = :run",
                        run=second.run_id)) == [("brightwave-energy", "success", 3),
                                                ("kaito-mobility", "success", 2), ("nordlicht-games", "success", 2)]


def test_unchanged_bucket_writes_no_job_rows(instance, sqlite_url, tmp_path):
    bucket = tmp_path / "bucket"
    fill_bucket(bucket, *snapshot(1))
    run_lane(instance, sqlite_url, bucket, BOARDS)
    before = query(sqlite_url, "select id, updated_at, last_seen_at from jobs order by id")
    again = run_lane(instance, sqlite_url, bucket, BOARDS)
    assert again.success
    assert query(sqlite_url, "select id, updated_at, last_seen_at from jobs order by id") == before
    assert {m["unchanged"] for m in partition_metadata(again, "job_diff").values()} == {3, 2}
    assert partition_metadata(again, "raw_snapshot")["kaito-mobility"]["identical_payload"] == 1
    assert query(sqlite_url, "select count(*) from raw_snapshots") == [(3,)]


def test_a_broken_file_fails_its_board_only_and_expires_nothing(instance, store_url, tmp_path):
    bucket = tmp_path / "bucket"
    fill_bucket(bucket, *snapshot(1))
    assert run_lane(instance, store_url, bucket, BOARDS).success
    (bucket / "brightwave-energy.json").write_bytes((BAD / "truncated.json").read_bytes())
    fill_bucket(bucket, *[f for f in snapshot(2) if f.name != "brightwave-energy.json"])

    result = run_lane(instance, store_url, bucket, BOARDS)

    assert not result.success
    failure = result.get_run_failure_event().message + str(
        [e.step_failure_data.error.message for e in result.all_events if e.is_step_failure])
    assert "brightwave-energy.json" in failure and "not valid JSON" in failure
    assert query(store_url, "select count(*) from jobs where board = 'brightwave-energy' and expired_at is null") \
        == [(3,)]
    statuses = dict(query(store_url, "select board, status from syncs where run_id = :run", run=result.run_id))
    assert statuses == {"brightwave-energy": "failed", "kaito-mobility": "success", "nordlicht-games": "success"}
    error = query(store_url, "select error from syncs where run_id = :run and board = 'brightwave-energy'",
                  run=result.run_id)[0][0]
    assert "brightwave-energy.json" in error and "not valid JSON" in error
    assert query(store_url, "select count(*) from jobs where board = 'kaito-mobility' and expired_at is not null") \
        == [(1,)]


@pytest.mark.parametrize("fixture, problem", [("truncated.json", "not valid JSON"),
                                              ("wrong-shape.json", "expected an object")])
def test_a_single_bad_partition_fails_with_the_file_and_the_problem(instance, sqlite_url, tmp_path, fixture, problem):
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    (bucket / "halcyon-bakery.json").write_bytes((BAD / fixture).read_bytes())
    result = run_lane(instance, sqlite_url, bucket, ["halcyon-bakery"])
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "company_files__postings"
    assert "halcyon-bakery.json" in failure.step_failure_data.error.message
    assert problem in failure.step_failure_data.error.message
    assert query(sqlite_url, "select status from syncs") == [("failed",)]


def test_bad_records_are_counted_and_kept_aside(instance, store_url, tmp_path):
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    (bucket / "halcyon-bakery.json").write_bytes((BAD / "missing-title.json").read_bytes())
    result = run_lane(instance, store_url, bucket, ["halcyon-bakery"])
    assert result.success
    assert partition_metadata(result, "postings")["halcyon-bakery"]["bad"] == 1
    assert partition_metadata(result, "job_diff")["halcyon-bakery"]["new"] == 1
    ((position, external_id, reason, record),) = query(
        store_url, "select position, external_id, reason, record from bad_records")
    assert (position, external_id) == (1, "hb-3") and "title" in reason and "York" in record
    assert query(store_url, "select bad from syncs") == [(1,)]


def test_a_late_snapshot_is_recorded_stale_and_never_rolls_back(instance, sqlite_url, tmp_path):
    bucket = tmp_path / "bucket"
    fill_bucket(bucket, *snapshot(2))
    assert run_lane(instance, sqlite_url, bucket, BOARDS).success
    before = query(sqlite_url, "select external_id, expired_at, content_hash from jobs order by id")
    fill_bucket(bucket, *snapshot(1))  # the scraper re-uploads older files

    result = run_lane(instance, sqlite_url, bucket, BOARDS)

    assert result.success
    assert query(sqlite_url, "select external_id, expired_at, content_hash from jobs order by id") == before
    stale = query(sqlite_url, "select board, error from syncs where run_id = :run and status = 'stale'",
                  run=result.run_id)
    assert sorted(b for b, _ in stale) == BOARDS
    assert all("older than the applied" in error for _, error in stale)


def test_an_oversized_file_is_refused(instance, sqlite_url, tmp_path):
    bucket = tmp_path / "bucket"
    fill_bucket(bucket, *snapshot(1))
    result = run_lane(instance, sqlite_url, bucket, ["kaito-mobility"], max_file_bytes=200)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "company_files__raw_snapshot"
    assert "over the 200-byte limit" in failure.step_failure_data.error.message
    assert query(sqlite_url, "select count(*) from raw_snapshots") == [(0,)]
