"""store/retention.py and the `retention` job: each limit removes what is past it, on SQLite and
PostgreSQL, and never what a running sync or an unsent notification still needs."""
from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg

from jobsync_pipeline.core.models import RawPayload
from jobsync_pipeline.core.status import SyncStatus
from jobsync_pipeline.core.steps import API_STEPS
from jobsync_pipeline.definitions import defs
from jobsync_pipeline.store.repo import Store
from jobsync_pipeline.store.retention import Retention, RetentionPolicy
from jobsync_pipeline.store.tables import bad_records, job_events, jobs, notifications
from jobsync_pipeline.store.time import utcnow
from jobsync_pipeline_tests.lane_helpers import query
from jobsync_pipeline_tests.test_notification_defs import alerting, catalog_at
from jobsync_pipeline_tests.test_searches import ANN

DAY = timedelta(days=1)


def archive(store: Store, board: str, body: bytes, at: datetime) -> int:
    snapshot_id, _ = store.archive_raw("greenhouse", RawPayload(board=board, location=f"{board}.json", body=body,
                                                                fetched_at=at))
    with store.engine.begin() as conn:
        conn.execute(bad_records.insert().values(raw_snapshot_id=snapshot_id, source="greenhouse", board=board,
                                                 position=0, reason="title: missing", record="{}"))
    return snapshot_id


def test_raw_snapshots_and_bad_records_past_their_limits_go_but_the_latest_and_those_in_use_stay(store_url):
    store, now = Store(store_url), utcnow()
    old = archive(store, "a", b"1", now - 20 * DAY)
    in_use = archive(store, "a", b"2", now - 19 * DAY)
    latest_a = archive(store, "a", b"3", now - 18 * DAY)  # old, but the board's latest
    recent = archive(store, "b", b"4", now - 20 * DAY)
    latest_b = archive(store, "b", b"5", now - DAY)
    store.start_sync("greenhouse", "a", run_id="running", raw_snapshot_id=in_use)
    removed = Retention(store.engine).run(now)
    assert (removed["raw_snapshots"], removed["bad_records"]) == (2, 0)  # bad records went with their snapshots
    kept = {r for (r,) in query(store_url, "select id from raw_snapshots")}
    assert kept == {in_use, latest_a, latest_b} and old not in kept and recent not in kept
    assert {r for (r,) in query(store_url, "select raw_snapshot_id from bad_records")} == kept
    # a shorter bad-record limit removes the bad records of snapshots it keeps
    assert Retention(store.engine, RetentionPolicy(bad_records=10 * DAY)).old_bad_records(now) == 2


def test_old_events_and_long_expired_jobs_go_but_not_one_an_unsent_notification_names(store_url):
    now = utcnow()
    store = catalog_at(store_url, now - 400 * DAY)  # five jobs, their `new` events 400 days old
    with store.engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.external_id.in_(["1", "2", "3"])).values(expired_at=now - 380 * DAY))
        conn.execute(jobs.update().where(jobs.c.external_id == "4").values(expired_at=now - 10 * DAY))
    named = query(store_url, "select id from jobs where external_id = '1'")[0][0]
    alerting(store, ANN)
    from jobsync_pipeline.core.search import SearchParameters

    saved = store.searches.add_search(ANN, SearchParameters(keywords="python"))
    user_id = query(store_url, "select id from users")[0][0]
    with store.engine.begin() as conn:
        conn.execute(notifications.insert().values(user_id=user_id, saved_search_id=saved.id, job_id=named,
                                                   batch_key="k", status="pending", scheduled_for=now, created_at=now))
        conn.execute(job_events.insert().values(job_id=named, sync_id=1, kind="changed", at=now - DAY))
    removed = Retention(store.engine).run(now)
    assert removed["expired_jobs"] == 2  # jobs 2 and 3; job 1 waits for its notification, 4 expired lately
    assert sorted(e for (e,) in query(store_url, "select external_id from jobs")) == ["1", "4", "5"]
    assert removed["job_events"] == 5  # every 400-day-old `new` event; job 1's recent one stays
    assert query(store_url, "select kind from job_events") == [("changed",)]


def test_step_details_beyond_the_latest_syncs_of_each_board_go(store_url):
    store = Store(store_url)
    ids = {board: [] for board in ("a", "b")}
    for n in range(4):
        for board in ids:
            sync_id = store.steps.open_syncs("lever", [board], run_id=f"r{n}", plan=API_STEPS.all())[board]
            store.finish_sync(sync_id, SyncStatus.SUCCESS)
            ids[board].append(sync_id)
    running = store.steps.open_syncs("lever", ["a"], run_id="now", plan=API_STEPS.all())["a"]
    assert Retention(store.engine, RetentionPolicy(step_syncs=2)).old_steps() == 4 * len(API_STEPS.all())
    kept = set(store.steps.for_syncs([i for board in ids.values() for i in board] + [running]))
    assert kept == {*ids["a"][2:], *ids["b"][2:], running}
    assert len(store.sync_history("lever")) == 9


def test_the_retention_job_reports_each_count_and_limit_and_deletes_old_runs(sqlite_url, monkeypatch):
    monkeypatch.setenv("JOBSYNC_DATABASE_URL", sqlite_url)  # the store the definitions' resource reads
    store, now = Store(sqlite_url), utcnow()
    job = defs.resolve_job_def("retention")
    with dg.instance_for_test() as instance:
        earlier = job.execute_in_process(instance=instance)
        archive(store, "a", b"1", now - 20 * DAY)
        archive(store, "a", b"2", now - DAY)
        result = job.execute_in_process(
            instance=instance, run_config={"ops": {"apply_retention": {"config": {"dagster_run_days": 1e-9}}}})
        assert result.success
        (output,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
        metadata = {k: v.value for k, v in output.event_specific_data.metadata.items()}
        assert metadata["removed_raw_snapshots"] == 1 and metadata["limit_raw_snapshot_days"] == 14
        assert metadata["removed_dagster_runs"] == 1
        assert instance.get_run_by_id(earlier.run_id) is None and instance.get_run_by_id(result.run_id) is not None
