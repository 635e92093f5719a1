"""Users' alert state and the follow-up queue of alert confirmations, on SQLite and on PostgreSQL."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from jobsync_pipeline.store.alerts import (ACTIVE, PAUSE_CHECK, PAUSED, PENDING, PROCESSED, REMINDER, SKIPPED, STOPPED,
                                           UNCONFIRMED, AlertStore, FollowupTimings, _queue, new_confirm_token)
from jobsync_pipeline.store.repo import Store
from jobsync_pipeline_tests.test_searches import ANN, BOB, T0


def started(store_url: str, *emails: str) -> AlertStore:
    store = Store(store_url)
    for email in emails:
        store.searches.add_user(email, None, "Europe/London", now=T0)
        store.alerts().start(email, now=T0)
    return store.alerts()


def pending(alerts: AlertStore) -> list[tuple[str, str, object]]:
    return sorted((f.email, f.kind, f.scheduled_at) for f in alerts.followups(PENDING))


def recorder(error: str | None = None):
    sent = []

    def send(user_id, email, title, body):
        sent.append((user_id, title))
        return error
    return send, sent


def test_starting_alerts_queues_a_reminder_and_a_pause_check_once(store_url):
    alerts = started(store_url, ANN)
    assert alerts.people.user(ANN).alert_status == UNCONFIRMED
    assert pending(alerts) == [(ANN, PAUSE_CHECK, T0 + timedelta(hours=48)), (ANN, REMINDER, T0 + timedelta(hours=24))]
    alerts.start(ANN, now=T0 + timedelta(hours=1))  # started again: nothing more
    assert len(pending(alerts)) == 2


def test_the_reminder_goes_to_an_unconfirmed_user_and_the_pause_check_pauses_them(store_url):
    alerts = started(store_url, ANN)
    send, sent = recorder()
    assert alerts.run_followups(send, T0 + timedelta(hours=23)) == {PROCESSED: 0, SKIPPED: 0, "failed": 0}
    assert alerts.run_followups(send, T0 + timedelta(hours=24))[PROCESSED] == 1
    assert sent and sent[0][1] == "Confirm your job alerts"
    assert [kind for _, kind, _ in pending(alerts)] == [PAUSE_CHECK]  # the reminder queued it: still one
    assert alerts.run_followups(send, T0 + timedelta(hours=48))[PROCESSED] == 1
    assert alerts.people.user(ANN).alert_status == PAUSED
    assert {(f.kind, f.status) for f in alerts.followups()} == {(REMINDER, PROCESSED), (PAUSE_CHECK, PROCESSED)}


def test_a_confirmed_user_s_follow_ups_end_skipped(store_url):
    alerts = started(store_url, ANN)
    alerts.confirm(ANN, now=T0 + timedelta(hours=2))
    send, sent = recorder()
    assert alerts.run_followups(send, T0 + timedelta(hours=49))[SKIPPED] == 2
    assert sent == [] and alerts.people.user(ANN).alert_status == ACTIVE
    assert {f.error for f in alerts.followups()} == {"alerts are active"}


def test_a_confirmation_token_confirms_once(store_url):
    alerts = started(store_url, ANN)
    token = new_confirm_token()
    alerts.keep_confirm_token(alerts.people.user(ANN).id, token)
    assert alerts.confirm_token("jsc_wrong") is None
    assert alerts.confirm_token(token).alert_status == ACTIVE
    assert alerts.confirm_token(token) is None  # used


def test_a_reminder_that_cannot_be_sent_is_tried_again_after_its_lease(store_url):
    alerts = started(store_url, ANN)
    send, sent = recorder("HTTP 503")
    due = T0 + timedelta(hours=24)
    assert alerts.run_followups(send, due)["failed"] == 1
    assert alerts.run_followups(send, due + timedelta(minutes=1))["failed"] == 0  # held by its lease
    assert alerts.run_followups(recorder()[0], due + alerts.timings.lease + timedelta(seconds=1))[PROCESSED] == 1


def test_a_pass_processes_at_most_its_limit_and_timings_are_configuration(store_url):
    store = Store(store_url)
    alerts = store.alerts(FollowupTimings(reminder_after=timedelta(hours=1), pause_check_after=timedelta(hours=2)))
    for i in range(12):
        store.searches.add_user(f"u{i}@example.com", None, "Europe/London", now=T0)
        alerts.start(f"u{i}@example.com", now=T0)
    send, sent = recorder()
    assert alerts.run_followups(send, T0 + timedelta(hours=1), limit=10)[PROCESSED] == 10
    assert alerts.run_followups(send, T0 + timedelta(hours=1), limit=10)[PROCESSED] == 2


def test_at_most_one_pending_follow_up_per_user_and_kind_under_concurrent_inserts(store_url):
    alerts = started(store_url, ANN)
    user_id = alerts.people.user(ANN).id
    barrier = threading.Barrier(8)
    added = []

    def insert():
        barrier.wait()
        with alerts.engine.begin() as conn:
            added.append(_queue(conn, user_id, "reminder_24h", T0, T0))

    threads = [threading.Thread(target=insert) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert added == [False] * 8  # start() queued it already
    with alerts.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM followups"))
    added.clear()
    threads = [threading.Thread(target=insert) for _ in range(8)]
    barrier.reset()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(added) == [False] * 7 + [True]
    with alerts.engine.connect() as conn:
        # the index itself refuses a second pending row, whatever the code does
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(sa.text("INSERT INTO followups (user_id, kind, scheduled_at, status, created_at) "
                                 "VALUES (:u, 'reminder_24h', :t, 'pending', :t)"), {"u": user_id, "t": T0})


def test_pause_resume_and_bad_moves(store_url):
    alerts = started(store_url, ANN)
    Store(store_url).searches.add_user(BOB, None, "Europe/London", now=T0)
    with pytest.raises(ValueError, match="nothing to pause"):
        alerts.pause(BOB)
    with pytest.raises(ValueError, match="not started"):
        alerts.confirm(BOB)
    assert alerts.people.user(BOB).alert_status == STOPPED
    alerts.confirm(ANN, now=T0)
    assert alerts.pause(ANN).alert_status == PAUSED
    assert alerts.resume(ANN, now=T0).alert_status == ACTIVE  # confirmed once: active again


def test_digest_settings_are_validated_before_anything_is_written(store_url):
    alerts = started(store_url, ANN)
    for bad in ({"digest": "weekly"}, {"digest_hour": 24}, {"quiet_hours": "25:00-07:00"}, {"timezone": "Mars/Base"}):
        with pytest.raises(ValueError):
            alerts.configure(ANN, **bad)
    user = alerts.people.user(ANN)
    assert (user.digest, user.digest_hour, user.quiet_hours, user.timezone) == ("daily", 8, None, "Europe/London")
    user = alerts.configure(ANN, digest="hourly", quiet_hours="22:00-7:00", timezone="America/New_York")
    assert (user.digest, user.quiet_hours, user.timezone) == ("hourly", "22:00-07:00", "America/New_York")
    assert alerts.configure(ANN, quiet_hours="").quiet_hours is None


def test_a_pass_that_comes_late_pauses_without_a_reminder_that_promises_time(store_url):
    alerts = started(store_url, ANN)
    send, sent = recorder()
    counts = alerts.run_followups(send, T0 + timedelta(hours=60))  # both due: the pass was down a day
    assert counts == {PROCESSED: 1, SKIPPED: 1, "failed": 0} and sent == []
    assert alerts.people.user(ANN).alert_status == PAUSED
    assert alerts.followups(PENDING) == []  # no second pause check queued
    assert {(f.kind, f.status, f.error) for f in alerts.followups()} == {
        (REMINDER, SKIPPED, "the pause check is due already"), (PAUSE_CHECK, PROCESSED, None)}
