"""The company-files lane materialized in-process, on SQLite and PostgreSQL stores."""
from __future__ import annotations

import dagster as dg
import pytest

from jobsync_pipeline_tests.conftest import FIXTURES, SAMPLE_BUCKET
from jobsync_pipeline.defs.resources import BucketResource, StoreResource, SyncPolicyResource
from jobsync_pipeline.store.repo import Store
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
    assert partition_metadata(first, "job_diff")["amberline-freight"]["new"] == 3

    fill_bucket(bucket, *snapshot(2))
    second = run_lane(instance, store_url, bucket, BOARDS)
    assert second.success
    per_board = partition_metadata(second, "job_diff")
    assert {k: per_board["amberline-freight"][k] for k in ("found", "new", "changed", "unchanged", "expired")} == \
        {"found": 3, "new": 1, "changed": 1, "unchanged": 1, "expired": 1}
    assert per_board["tessellate-studio"]["expired"] == 1  # ts-0043 listed with isActive false
    assert query(store_url, "select count(*) from jobs where expired_at is null") == [(7,)]
    assert sorted(query(store_url, "select external_id, expired_reason from jobs where expired_at is not null")) == \
        [("MH-124", "absent"), ("af-3103", "absent"), ("ts-0043", "absent")]
    events = query(store_url, "select e.kind, j.external_id from job_events e join jobs j on j.id = e.job_id "
                              "join syncs s on s.id = e.sync_id where s.run_id = :run", run=second.run_id)
    assert sorted(events) == [("changed", "af-3102"), ("expired", "MH-124"), ("expired", "af-3103"),
                              ("expired", "ts-0043"), ("new", "af-3107"), ("new", "ts-0049")]
    assert sorted(query(store_url, "select board, status, found from syncs where run_id = :run",
                        run=second.run_id)) == [("amberline-freight", "success", 3),
                                                ("marisol-hoteles", "success", 2), ("tessellate-studio", "success", 2)]


def test_unchanged_bucket_writes_no_job_rows(instance, sqlite_url, tmp_path):
    bucket = tmp_path / "bucket"
    fill_bucket(bucket, *snapshot(1))
    run_lane(instance, sqlite_url, bucket, BOARDS)
    before = query(sqlite_url, "select id, updated_at, last_seen_at from jobs order by id")
    again = run_lane(instance, sqlite_url, bucket, BOARDS)
    assert again.success
    assert query(sqlite_url, "select id, updated_at, last_seen_at from jobs order by id") == before
    assert {m["unchanged"] for m in partition_metadata(again, "job_diff").values()} == {3, 2}
    assert partition_metadata(again, "raw_snapshot")["marisol-hoteles"]["identical_payload"] == 1
    assert query(sqlite_url, "select count(*) from raw_snapshots") == [(3,)]


def test_a_broken_file_fails_its_board_only_and_expires_nothing(instance, store_url, tmp_path):
    bucket = tmp_path / "bucket"
    fill_bucket(bucket, *snapshot(1))
    assert run_lane(instance, store_url, bucket, BOARDS).success
    (bucket / "amberline-freight.json").write_bytes((BAD / "truncated.json").read_bytes())
    fill_bucket(bucket, *[f for f in snapshot(2) if f.name != "amberline-freight.json"])

    result = run_lane(instance, store_url, bucket, BOARDS)

    assert not result.success
    failure = result.get_run_failure_event().message + str(
        [e.step_failure_data.error.message for e in result.all_events if e.is_step_failure])
    assert "amberline-freight.json" in failure and "not valid JSON" in failure
    assert query(store_url, "select count(*) from jobs where board = 'amberline-freight' and expired_at is null") \
        == [(3,)]
    statuses = dict(query(store_url, "select board, status from syncs where run_id = :run", run=result.run_id))
    assert statuses == {"amberline-freight": "failed", "marisol-hoteles": "success", "tessellate-studio": "success"}
    error = query(store_url, "select error from syncs where run_id = :run and board = 'amberline-freight'",
                  run=result.run_id)[0][0]
    assert "amberline-freight.json" in error and "not valid JSON" in error
    assert query(store_url, "select count(*) from jobs where board = 'marisol-hoteles' and expired_at is not null") \
        == [(1,)]


@pytest.mark.parametrize("fixture, problem", [("truncated.json", "not valid JSON"),
                                              ("wrong-shape.json", "expected an object")])
def test_a_single_bad_partition_fails_with_the_file_and_the_problem(instance, sqlite_url, tmp_path, fixture, problem):
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    (bucket / "wickham-cycles.json").write_bytes((BAD / fixture).read_bytes())
    result = run_lane(instance, sqlite_url, bucket, ["wickham-cycles"])
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "company_files__postings"
    assert "wickham-cycles.json" in failure.step_failure_data.error.message
    assert problem in failure.step_failure_data.error.message
    assert query(sqlite_url, "select status from syncs") == [("failed",)]


def test_bad_records_are_counted_and_kept_aside(instance, store_url, tmp_path):
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    (bucket / "wickham-cycles.json").write_bytes((BAD / "missing-title.json").read_bytes())
    result = run_lane(instance, store_url, bucket, ["wickham-cycles"])
    assert result.success
    assert partition_metadata(result, "postings")["wickham-cycles"]["bad"] == 1
    assert partition_metadata(result, "job_diff")["wickham-cycles"]["new"] == 1
    ((position, external_id, reason, record),) = query(
        store_url, "select position, external_id, reason, record from bad_records")
    assert (position, external_id) == (1, "wc-8") and "title" in reason and "Bath" in record
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
    result = run_lane(instance, sqlite_url, bucket, ["marisol-hoteles"], max_file_bytes=200)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "company_files__raw_snapshot"
    assert "over the 200-byte limit" in failure.step_failure_data.error.message
    assert query(sqlite_url, "select count(*) from raw_snapshots") == [(0,)]


def test_a_late_file_keeps_the_boards_latest_diff_numbers(instance, sqlite_url, tmp_path):
    """The asset page plots each board's job_diff numbers: a skipped late file adds no empty point."""
    bucket = tmp_path / "bucket"
    fill_bucket(bucket, *snapshot(2))
    applied = run_lane(instance, sqlite_url, bucket, BOARDS)
    fill_bucket(bucket, *snapshot(1))  # older files again

    late = run_lane(instance, sqlite_url, bucket, BOARDS)

    assert late.success
    key = dg.AssetKey(["company_files", "job_diff"])
    for board in BOARDS:
        (latest,) = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[board]), limit=1).records
        assert latest.run_id == applied.run_id
        assert {"found", "new", "changed", "unchanged", "expired", "reactivated", "bad"} <= \
            set(latest.asset_materialization.metadata)
    stale_checks = {e.partition: (e.passed, e.description) for e in late.get_asset_check_evaluations()
                    if e.asset_key == key and e.check_name == "board_outcome"}
    assert set(stale_checks) == set(BOARDS)
    assert all(passed and "older than the applied" in text for passed, text in stale_checks.values())


def test_an_expected_board_failure_is_printed_without_dagster_stack_traces(sqlite_url, tmp_path, capfd):
    from jobsync_pipeline.definitions import defs
    from jobsync_pipeline.defs.console import RUN_CONFIG  # as the schedules, sensors and CLI launch runs
    from jobsync_pipeline.defs.run_tags import range_tags

    bucket = tmp_path / "bucket"
    fill_bucket(bucket, *snapshot(1))
    (bucket / "wickham-cycles.json").write_bytes((BAD / "truncated.json").read_bytes())
    boards = [*BOARDS, "wickham-cycles"]
    job = defs.resolve_job_def("company_files_sync")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("company_files_boards", boards)
        result = job.execute_in_process(
            instance=instance, raise_on_error=False, tags=range_tags(boards[0], boards[-1]), run_config=RUN_CONFIG,
            resources={"store": StoreResource(url=sqlite_url), "bucket": BucketResource(url=str(bucket)),
                       "sync_policy": SyncPolicyResource()})
    assert not result.success
    printed = capfd.readouterr().err
    assert "1 board(s) did not sync" in printed and "wickham-cycles.json: not valid JSON" in printed
    assert "Stack Trace" not in printed and "Traceback" not in printed


def synced_then_titles_refused(instance, store_url, bucket, refused: slice) -> dg.ExecuteInProcessResult:
    """amberline-freight synced, then a later file of it whose jobs in `refused` have no title."""
    import json

    fill_bucket(bucket, *snapshot(1))
    assert run_lane(instance, store_url, bucket, ["amberline-freight"]).success
    document = json.loads((bucket / "amberline-freight.json").read_text())
    document["scrapedAt"] = "2026-12-01T08:00:00Z"
    for job in document["jobs"][refused]:
        job["title"] = None  # still listed, its id readable, its record refused
    (bucket / "amberline-freight.json").write_text(json.dumps(document))
    return run_lane(instance, store_url, bucket, ["amberline-freight"])


def test_a_file_whose_every_record_is_refused_fails_and_expires_nothing(instance, store_url, tmp_path):
    result = synced_then_titles_refused(instance, store_url, tmp_path / "bucket", slice(None))

    assert not result.success
    assert query(store_url, "select count(*) from jobs where board = 'amberline-freight' and expired_at is null") \
        == [(3,)]
    ((status, error),) = query(store_url, "select status, error from syncs where run_id = :run", run=result.run_id)
    assert status == "failed" and "every one of its 3 record(s) was refused" in error
    assert query(store_url, "select count(*) from bad_records where board = 'amberline-freight'") == [(3,)]


def test_a_listed_but_malformed_posting_is_not_expired(instance, store_url, tmp_path):
    result = synced_then_titles_refused(instance, store_url, tmp_path / "bucket", slice(0, 1))

    assert result.success
    numbers = partition_metadata(result, "job_diff")["amberline-freight"]
    assert (numbers["found"], numbers["bad"], numbers["expired"]) == (2, 1, 0)
    assert query(store_url, "select count(*) from jobs where board = 'amberline-freight' and expired_at is null") \
        == [(3,)]


def steps_by_board(url: str, run_id: str) -> dict[str, dict[str, tuple]]:
    """Each board's steps in the run: name → (status, counts JSON, error)."""
    rows = query(url, "select s.board, t.name, t.status, t.counts, t.error from sync_steps t join syncs s "
                      "on s.id = t.sync_id where s.run_id = :run order by s.board, t.position", run=run_id)
    found: dict[str, dict[str, tuple]] = {}
    for board, name, status, counts, error in rows:
        found.setdefault(board, {})[name] = (status, counts, error)
    return found


def test_every_board_records_its_steps_and_a_failed_one_says_where_it_stopped(instance, store_url, tmp_path):
    bucket = tmp_path / "bucket"
    fill_bucket(bucket, *snapshot(1))
    (bucket / "amberline-freight.json").write_bytes((BAD / "truncated.json").read_bytes())
    result = run_lane(instance, store_url, bucket, BOARDS)
    assert not result.success
    steps = steps_by_board(store_url, result.run_id)
    good = steps["marisol-hoteles"]
    assert list(good) == ["fetch", "archive", "parse", "apply", "cleanup"]
    assert {status for status, _, _ in good.values()} == {"completed"}
    assert '"found": 3' in good["parse"][1] and '"added": 3' in good["apply"][1]
    bad = steps["amberline-freight"]
    assert (bad["fetch"][0], bad["archive"][0]) == ("completed", "completed")
    assert bad["parse"][0] == "failed" and "not valid JSON" in bad["parse"][2]
    assert (bad["apply"][0], bad["cleanup"][0]) == ("skipped", "skipped")


def test_a_batch_whose_archive_fails_is_archived_board_by_board(instance, store_url, tmp_path, monkeypatch):
    """The fetched boards are archived together; when that fails, each is archived alone, and the one
    whose archive fails too fails alone, saying so."""
    bucket = tmp_path / "bucket"
    fill_bucket(bucket, *snapshot(1))
    archive_raw = Store.archive_raw

    def batch_fails(self, source, payloads):
        raise RuntimeError("the batch's statement failed")

    def one_fails(self, source, payload):
        if payload.board == "marisol-hoteles":
            raise RuntimeError("disk full")
        return archive_raw(self, source, payload)

    monkeypatch.setattr(Store, "archive_raws", batch_fails)
    monkeypatch.setattr(Store, "archive_raw", one_fails)
    result = run_lane(instance, store_url, bucket, BOARDS)
    assert not result.success
    assert sorted(query(store_url, "select board, status, error from syncs where run_id = :run", run=result.run_id)) == [
        ("amberline-freight", "success", None),
        ("marisol-hoteles", "failed", "archiving its payload failed: RuntimeError: disk full"),
        ("tessellate-studio", "success", None)]
    steps = steps_by_board(store_url, result.run_id)["marisol-hoteles"]
    assert [steps[name][0] for name in ("fetch", "archive", "parse", "apply")] == \
        ["completed", "failed", "skipped", "skipped"]
    assert "disk full" in steps["archive"][2]
    assert query(store_url, "select count(*) from jobs where board = 'marisol-hoteles'") == [(0,)]


def test_a_late_file_skips_its_parse_step(instance, sqlite_url, tmp_path):
    bucket = tmp_path / "bucket"
    fill_bucket(bucket, *snapshot(2))
    assert run_lane(instance, sqlite_url, bucket, ["marisol-hoteles"]).success
    fill_bucket(bucket, *snapshot(1))
    result = run_lane(instance, sqlite_url, bucket, ["marisol-hoteles"])
    steps = steps_by_board(sqlite_url, result.run_id)["marisol-hoteles"]
    assert steps["parse"][0] == "skipped" and "older than the applied" in steps["parse"][2]
    assert steps["apply"][0] == "skipped"


def test_a_run_of_the_fetch_alone_ends_its_syncs_partial(instance, sqlite_url, tmp_path):
    from jobsync_pipeline.defs.lanes import build_source_lane
    from jobsync_pipeline.defs.source_specs import COMPANY_FILES

    bucket = tmp_path / "bucket"
    fill_bucket(bucket, *snapshot(1))
    instance.add_dynamic_partitions(COMPANY_FILES.partitions_name, ["marisol-hoteles"])
    result = dg.materialize(
        build_source_lane(COMPANY_FILES).assets, selection="company_files/raw_snapshot", instance=instance,
        partition_key="marisol-hoteles",
        resources={"store": StoreResource(url=sqlite_url), "bucket": BucketResource(url=str(bucket)),
                   "sync_policy": SyncPolicyResource()})
    assert result.success
    assert query(sqlite_url, "select status, error from syncs") == [
        ("partial", "the run selected no step after raw_snapshot: nothing applied")]
    steps = steps_by_board(sqlite_url, result.run_id)["marisol-hoteles"]
    assert steps["fetch"][0] == "completed" and steps["parse"][0] == "skipped"
    assert query(sqlite_url, "select count(*) from jobs") == [(0,)]


def test_a_backfill_splits_into_runs_of_the_configured_number_of_boards(monkeypatch):
    from jobsync_pipeline import settings
    from jobsync_pipeline.defs.lanes import build_source_lane
    from jobsync_pipeline.defs.source_specs import GREENHOUSE

    monkeypatch.delenv(settings.BACKFILL_BOARDS_PER_RUN_VAR, raising=False)
    lane = build_source_lane(GREENHOUSE)
    assert {a.backfill_policy for a in lane.assets} == {dg.BackfillPolicy.multi_run(1000)}
    monkeypatch.setenv(settings.BACKFILL_BOARDS_PER_RUN_VAR, "2_500")
    lane = build_source_lane(GREENHOUSE)
    assert {a.backfill_policy for a in lane.assets} == {dg.BackfillPolicy.multi_run(2500)}
    monkeypatch.setenv(settings.BACKFILL_BOARDS_PER_RUN_VAR, "lots")
    with pytest.raises(settings.ConfigError, match="JOBSYNC_BACKFILL_BOARDS_PER_RUN='lots' is not a number"):
        build_source_lane(GREENHOUSE)


def test_a_resynced_file_recognises_its_unchanged_jobs_by_the_state_its_apply_reads(
        instance, store_url, tmp_path, monkeypatch):
    from jobsync_pipeline.store.repo import Store

    bucket = tmp_path / "bucket"
    fill_bucket(bucket, *snapshot(1))
    first = run_lane(instance, store_url, bucket, BOARDS)
    assert {m["recognised"] for m in partition_metadata(first, "job_diff").values()} == {0}
    amberline = Store(store_url).known_records("company_files", "amberline-freight")
    fill_bucket(bucket, *snapshot(2))
    second = run_lane(instance, store_url, bucket, BOARDS)
    numbers = partition_metadata(second, "job_diff")["amberline-freight"]
    # af-3101 is the same record; af-3102 changed; af-3107 is new
    assert (numbers["recognised"], numbers["unchanged"], numbers["changed"], numbers["new"]) == (1, 1, 1, 1)

    # snapshot 1 again while the store's known records are those from before snapshot 2 (as if a second
    # sync of the board had applied snapshot 2 since they were read): job_diff does not use them, but the
    # known records of the state its apply reads under its lock
    first_file = SAMPLE_BUCKET / "snapshot_1" / "amberline-freight.json"
    text = first_file.read_text(encoding="utf-8")
    (bucket / first_file.name).write_text(text.replace(_scraped_at(text), "2026-11-25T06:00:00Z"), encoding="utf-8")
    stale = Store.known_records
    monkeypatch.setattr(Store, "known_records", lambda self, source, board: (
        amberline if board == "amberline-freight" else stale(self, source, board)))
    third = run_lane(instance, store_url, bucket, ["amberline-freight"])
    assert third.success
    numbers = partition_metadata(third, "job_diff")["amberline-freight"]
    # af-3101 recognised; af-3102 back to its first text; af-3107 gone; the job snapshot 2 dropped is back
    assert (numbers["recognised"], numbers["changed"], numbers["new"], numbers["reactivated"],
            numbers["expired"]) == (1, 1, 0, 1, 1)
    assert query(store_url, "select count(*) from jobs where board = 'amberline-freight' and expired_at is null "
                            "and record_hash is not null") == [(3,)]


def _scraped_at(text: str) -> str:
    import json

    return json.loads(text)["scrapedAt"]
