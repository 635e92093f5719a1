"""Alerts in Dagster (defs/notifications.py): the hourly `notification_batches` asset, the delivery sensor,
the follow-up and window schedules, and the delivery, follow-up and cleanup jobs, over a real SQLite store.

The asset and the jobs read the real clock, so their windows are the last hours before now; where a test
needs a fixed instant (the clocks going back) the store's clock is set."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
import sqlalchemy as sa

from jobsync_pipeline.core.models import postings_frame
from jobsync_pipeline.core.search import SearchParameters
from jobsync_pipeline.definitions import defs
from jobsync_pipeline.defs import notifications as notification_defs
from jobsync_pipeline.defs.notifications import (delivery_sensor, followups_schedule, notification_batches,
                                                 notification_batches_sensor)
from jobsync_pipeline.defs.resources import NotifyResource, StoreResource
from jobsync_pipeline.store.apply import Expiry
from jobsync_pipeline.store.repo import Store
from jobsync_pipeline.store.tables import job_events, notifications
from jobsync_pipeline.store.time import as_utc, utcnow
from jobsync_pipeline_tests.test_searches import ANN, BOB, CATALOG, posting

ASSET = "notifications__notification_batches"
# a closed window of the last hours (a partition whatever the day the tests run), its jobs new at 10 past
WINDOW = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
KEY = WINDOW.strftime("%Y-%m-%d-%H:%M")
NEW_AT = WINDOW + timedelta(minutes=10)


def catalog_at(store_url: str, at: datetime, postings=CATALOG) -> Store:
    """A greenhouse board whose `postings` are new at `at`."""
    store = Store(store_url)
    store.ensure_boards("greenhouse", ["acme"])
    sync_id = store.start_sync("greenhouse", "acme", run_id=None, started_at=at)
    store.apply_snapshot("greenhouse", "acme", [postings_frame(postings)], sync_id=sync_id, now=at,
                         expiry=Expiry(complete=True, max_age=timedelta(days=30)))
    return store


def alerting(store: Store, email: str, *, timezone_: str = "Europe/London", started: datetime | None = None,
             **settings) -> None:
    store.searches.add_user(email, None, timezone_, now=started)
    store.alerts().configure(email, **({"digest": "asap"} | settings))
    store.alerts().start(email, now=started)


def resources(store_url: str, outbox=None, **notify) -> dict:
    return {"store": StoreResource(url=store_url),
            "notify": NotifyResource(outbox_folder=str(outbox) if outbox else "", **notify)}


def build(store_url: str, key: str = KEY) -> dict:
    """Materialize one window; its metadata."""
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([notification_batches], partition_key=key, resources=resources(store_url),
                                instance=instance)
    assert result.success
    (materialization,) = result.asset_materializations_for_node(ASSET)
    assert materialization.partition == key
    return {name: value.value for name, value in materialization.metadata.items()}


def stored(store: Store, *columns: str) -> list[tuple]:
    with store.engine.connect() as conn:
        return [tuple(as_utc(v) if isinstance(v, datetime) else v for v in row) for row in
                conn.execute(sa.select(*(notifications.c[c] for c in columns)).order_by(notifications.c.id))]


# --- the asset -----------------------------------------------------------------------------------

def test_a_window_is_built_into_notifications_once(sqlite_url):
    store = catalog_at(sqlite_url, NEW_AT)  # five jobs
    alerting(store, ANN)
    store.searches.add_user(BOB, None, "Europe/London")  # alerts never started: nothing for him
    store.searches.add_search(ANN, SearchParameters(keywords="python"))
    store.searches.add_search(BOB, SearchParameters(keywords="python"))
    first = build(sqlite_url)
    assert (first["window_jobs"], first["saved_searches"], first["matches"], first["users"]) == (5, 1, 3, 1)
    assert (first["pending"], first["sent"]) == (3, 0)
    assert {(user, status) for user, status in stored(store, "user_id", "status")} == \
        {(store.searches.user(ANN).id, "pending")}
    again = build(sqlite_url)  # the same partition again: nothing twice
    assert (again["matches"], again["users"], again["pending"]) == (0, 0, 3)
    assert len(stored(store, "id")) == 3
    other = build(sqlite_url, (WINDOW - timedelta(hours=1)).strftime("%Y-%m-%d-%H:%M"))
    assert (other["window_jobs"], other["matches"]) == (0, 0)


def test_a_daily_digest_across_the_clocks_going_back_is_due_at_the_users_local_hour(sqlite_url, monkeypatch):
    """Europe/London leaves summer time on 2026-10-25 at 02:00 BST. Built on the 24th at 22:30 BST,
    a daily digest at 08:00 is due at 08:00 GMT = 08:00 UTC (not 07:00 UTC, 08:00 BST); an hourly
    one whose next hour falls in quiet hours waits for their end, 07:30 GMT."""
    built_at = datetime(2026, 10, 24, 21, 30, tzinfo=timezone.utc)  # 22:30 BST
    store = catalog_at(sqlite_url, datetime(2026, 10, 24, 21, 10, tzinfo=timezone.utc))
    alerting(store, ANN, digest="daily", digest_hour=8, quiet_hours="22:00-07:00", started=built_at)
    alerting(store, BOB, digest="hourly", quiet_hours="22:00-07:30", started=built_at)
    store.searches.add_search(ANN, SearchParameters(keywords="python"))
    store.searches.add_search(BOB, SearchParameters(keywords="figma"))
    monkeypatch.setattr("jobsync_pipeline.store.notifications.utcnow", lambda: built_at)
    metadata = build(sqlite_url, "2026-10-24-21:00")
    assert (metadata["matches"], metadata["users"]) == (4, 2)
    due = {(user, scheduled_for) for user, scheduled_for in stored(store, "user_id", "scheduled_for")}
    assert due == {(store.searches.user(ANN).id, datetime(2026, 10, 25, 8, 0, tzinfo=timezone.utc)),
                   (store.searches.user(BOB).id, datetime(2026, 10, 25, 7, 30, tzinfo=timezone.utc))}
    # nothing goes before then
    queue = store.notifications()
    assert queue.due_count(datetime(2026, 10, 25, 7, 29, tzinfo=timezone.utc)) == 0
    assert queue.due_count(datetime(2026, 10, 25, 7, 59, tzinfo=timezone.utc)) == 1  # Bob's
    assert queue.due_count(datetime(2026, 10, 25, 8, 0, tzinfo=timezone.utc)) == 4


# --- the delivery sensor -------------------------------------------------------------------------

def evaluate_sensor(store_url: str, now: datetime, monkeypatch):
    monkeypatch.setattr(notification_defs, "utcnow", lambda: now)
    with dg.build_sensor_context(resources=resources(store_url)) as context:
        return delivery_sensor(context)


def test_the_delivery_sensor_requests_a_run_only_while_notifications_are_due(sqlite_url, monkeypatch):
    store = catalog_at(sqlite_url, NEW_AT)
    nothing = evaluate_sensor(sqlite_url, NEW_AT, monkeypatch)
    assert isinstance(nothing, dg.SkipReason) and nothing.skip_message == "no notification is due"

    alerting(store, ANN, digest="hourly")
    store.searches.add_search(ANN, SearchParameters(keywords="python"))
    store.notifications().build(WINDOW, WINDOW + timedelta(hours=1), now=NEW_AT)  # due at the next hour
    next_hour = WINDOW + timedelta(hours=1)
    early = evaluate_sensor(sqlite_url, next_hour - timedelta(minutes=1), monkeypatch)
    assert isinstance(early, dg.SkipReason)

    due = evaluate_sensor(sqlite_url, next_hour + timedelta(minutes=2, seconds=30), monkeypatch)
    assert isinstance(due, dg.RunRequest)
    assert due.run_key == f"deliver-{next_hour + timedelta(minutes=2):%Y%m%dT%H%M}"
    assert due.tags["jobsync/due_notifications"] == "3"

    store.alerts().pause(ANN)  # a paused user's notifications wait
    assert isinstance(evaluate_sensor(sqlite_url, next_hour + timedelta(minutes=3), monkeypatch), dg.SkipReason)


# --- the schedules -------------------------------------------------------------------------------

def test_the_followups_schedule_runs_only_when_a_followup_is_due(sqlite_url):
    store = Store(sqlite_url)
    started = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)

    def tick(at: datetime):
        with dg.build_schedule_context(scheduled_execution_time=at,
                                       resources={"store": StoreResource(url=sqlite_url)}) as context:
            return followups_schedule(context)

    assert isinstance(tick(started), dg.SkipReason)  # nobody started alerts
    alerting(store, ANN, started=started)
    skipped = tick(started + timedelta(hours=23, minutes=59))
    assert isinstance(skipped, dg.SkipReason) and skipped.skip_message == "no follow-up is due"
    assert isinstance(tick(started + timedelta(hours=24)), dg.RunRequest)  # the reminder


def evaluate_window_sensor(store_url: str, cursor: str | None):
    """One tick of the window sensor: what it asked for, and its cursor after the tick."""
    with dg.build_sensor_context(cursor=cursor, resources={"store": StoreResource(url=store_url)}) as context:
        result = notification_batches_sensor(context)
        return result, context.cursor


def window_key(store: Store, start: datetime) -> str:
    """The sensor's run key of a window: its new and reactivated events' count and newest id."""
    with store.engine.connect() as conn:
        count, top = conn.execute(sa.select(sa.func.count(), sa.func.max(job_events.c.id)).where(
            job_events.c.kind.in_(("new", "reactivated")), job_events.c.at >= start,
            job_events.c.at < start + timedelta(hours=1))).one()
    return f"{start:%Y-%m-%d-%H:%M}@{count}-{top}"


def test_the_window_sensor_builds_each_window_once_per_state_of_its_new_jobs(sqlite_url):
    skipped, cursor = evaluate_window_sensor(sqlite_url, None)
    assert isinstance(skipped, dg.SkipReason) and cursor is None  # no job event at all

    arrived = utcnow() - timedelta(minutes=30)  # within the look back
    hour = arrived.replace(minute=0, second=0, microsecond=0)
    store = catalog_at(sqlite_url, arrived)
    requests, cursor = evaluate_window_sensor(sqlite_url, None)
    assert [(r.partition_key, r.run_key) for r in requests] == [(f"{hour:%Y-%m-%d-%H:%M}", window_key(store, hour))]
    assert cursor == str(max(ids_of_job_events(store)))

    # nothing new: the same run key, which Dagster launches once
    again, same = evaluate_window_sensor(sqlite_url, cursor)
    assert [r.run_key for r in again] == [r.run_key for r in requests] and same == cursor

    # more jobs in this window and the one before: both windows, with keys of what they hold now
    more = [*CATALOG, posting(6, "Python Tutor"), posting(7, "Figma Illustrator")]
    catalog_at(sqlite_url, arrived - timedelta(minutes=40), more[:6])
    catalog_at(sqlite_url, arrived + timedelta(minutes=1), more)
    later, cursor = evaluate_window_sensor(sqlite_url, cursor)
    hours = sorted({(arrived - timedelta(minutes=40)).replace(minute=0, second=0, microsecond=0), hour})
    assert [r.run_key for r in later] == [window_key(store, h) for h in hours]
    assert later[-1].run_key != requests[0].run_key


def test_the_window_sensor_sees_an_apply_that_committed_after_a_later_one(sqlite_url):
    """Two boards apply at once on PostgreSQL: the one that started first takes lower event ids but may
    commit last, after the sensor's cursor passed them. Its events are recent: the look back sees them,
    and the window's key changes, so it is built again."""
    arrived = utcnow() - timedelta(minutes=20)
    hour = arrived.replace(minute=0, second=0, microsecond=0)
    store = catalog_at(sqlite_url, arrived)
    first, cursor = evaluate_window_sensor(sqlite_url, None)
    with store.engine.begin() as conn:  # the late commit: an event below the cursor, in the same window
        job_id = conn.scalar(sa.select(sa.func.min(job_events.c.job_id)))
        conn.execute(job_events.insert().values(id=int(cursor) - 1000, job_id=job_id, sync_id=1, kind="reactivated",
                                                at=arrived))
    late, _ = evaluate_window_sensor(sqlite_url, cursor)
    assert [r.partition_key for r in late] == [f"{hour:%Y-%m-%d-%H:%M}"]
    assert late[0].run_key == window_key(store, hour) != first[0].run_key


def ids_of_job_events(store: Store) -> list[int]:
    with store.engine.connect() as conn:
        return list(conn.scalars(sa.select(job_events.c.id)))


# --- the jobs ------------------------------------------------------------------------------------

def op_metadata(result, op: str) -> dict:
    (output,) = [e for e in result.all_events if e.is_successful_output and e.step_key == op]
    return {name: value.value for name, value in output.step_output_data.metadata.items()}


def test_the_delivery_job_writes_each_users_digest_to_the_outbox(sqlite_url, tmp_path):
    store = catalog_at(sqlite_url, NEW_AT)
    alerting(store, ANN)
    store.searches.add_search(ANN, SearchParameters(keywords="python"))
    build(sqlite_url)  # asap: due now
    job = defs.resolve_job_def("deliver_notifications")
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(resources=resources(sqlite_url, tmp_path / "outbox"), instance=instance)
    assert result.success
    assert result.output_for_node("deliver_notifications_op") == {"sent": 3, "failed": 0, "skipped": 0, "digests": 1,
                                                                  "void_claims": 0}
    metadata = op_metadata(result, "deliver_notifications_op")
    assert (metadata["sent"], metadata["failed"], metadata["digests"]) == (3, 0, 1)
    [digest] = (tmp_path / "outbox").iterdir()
    assert digest.name.endswith(".md") and "-ann_example.com-" in digest.name
    text = digest.read_text()
    assert text.startswith("# 3 new jobs for your saved search\n\nTo: ann@example.com\n")
    assert "Senior Python Engineer" in text and "jobsync alerts confirm --token jsc_" in text
    assert {status for (status,) in stored(store, "status")} == {"sent"}
    with dg.DagsterInstance.ephemeral() as instance:  # nothing due any more: a pass sends nothing
        again = job.execute_in_process(resources=resources(sqlite_url, tmp_path / "outbox"), instance=instance)
    assert again.output_for_node("deliver_notifications_op")["digests"] == 0
    assert len(list((tmp_path / "outbox").iterdir())) == 1


def test_the_followups_job_reminds_an_unconfirmed_user_and_skips_a_confirmed_one(sqlite_url, tmp_path):
    store = Store(sqlite_url)
    alerting(store, ANN, started=utcnow() - timedelta(hours=25))  # the reminder is due, the pause check not yet
    alerting(store, BOB, started=utcnow() - timedelta(hours=49))
    store.alerts().confirm(BOB)
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("alert_followups").execute_in_process(
            resources=resources(sqlite_url, tmp_path / "outbox"), instance=instance)
    assert result.success
    assert op_metadata(result, "followups_op") == {"processed": 1, "skipped": 2, "failed": 0}
    assert store.searches.user(ANN).alert_status == "unconfirmed" and store.searches.user(BOB).alert_status == "active"
    [reminder] = (tmp_path / "outbox").iterdir()
    assert "Confirm your job alerts" in reminder.read_text() and "ann_example.com" in reminder.name


def test_the_cleanup_job_removes_what_was_delivered_days_ago(sqlite_url, tmp_path):
    store = catalog_at(sqlite_url, NEW_AT)
    alerting(store, ANN)
    store.searches.add_search(ANN, SearchParameters(keywords="python"))
    store.searches.add_search(ANN, SearchParameters(keywords="figma"))
    store.notifications().build(WINDOW, WINDOW + timedelta(hours=1), now=NEW_AT - timedelta(days=5))
    notify = NotifyResource(outbox_folder=str(tmp_path / "outbox"))
    notification_defs.deliver_due(store, notify, now=NEW_AT - timedelta(days=5))  # sent five days ago
    store.searches.add_search(ANN, SearchParameters(keywords="scientist"))
    store.notifications().build(WINDOW, WINDOW + timedelta(hours=1), now=utcnow() + timedelta(days=1))
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("notifications_cleanup").execute_in_process(
            resources=resources(sqlite_url, tmp_path / "outbox"), instance=instance)
    assert op_metadata(result, "notifications_cleanup_op") == {"removed_notifications": 4, "removed_deliveries": 1,
                                                              "removed_followups": 0}
    assert [status for (status,) in stored(store, "status")] == ["pending"]  # the one not yet delivered stays


def test_every_alerting_definition_is_in_the_project():
    assert {"build_notification_batches", "deliver_notifications", "alert_followups",
            "notifications_cleanup"} <= {job.name for job in defs.resolve_all_job_defs()}
    assert defs.resolve_sensor_def("delivery_sensor").job_name == "deliver_notifications"
    assert defs.resolve_sensor_def("notification_batches_sensor").job_name == "build_notification_batches"
    assert defs.resolve_schedule_def("followups_schedule").cron_schedule == "* * * * *"
