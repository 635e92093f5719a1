"""Notification batches and their delivery queue, on SQLite and on PostgreSQL: matching a window's new
jobs, building a window twice, the claim / deliver / retry state machine, leases, fairness, retention."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from jobsync_pipeline.core.search import SearchParameters
from jobsync_pipeline.store.notifications import FAILED, PENDING, SENDING, SENT, SKIPPED, deliver_pass
from jobsync_pipeline.store.repo import Store
from jobsync_pipeline.store.tables import deliveries, notifications
from jobsync_pipeline.store.time import as_utc
from jobsync_pipeline_tests.test_searches import ANN, BOB, CATALOG, T0, catalog, posting

WINDOW = (T0.replace(minute=0), T0.replace(minute=0) + timedelta(hours=1))
LATER = T0 + timedelta(hours=3)


def alerting(store: Store, *emails: str, digest: str = "asap") -> None:
    """Users with alerts started and the given digest."""
    for email in emails:
        store.searches.add_user(email, None, "Europe/London", now=T0)
        store.alerts().configure(email, digest=digest)
        store.alerts().start(email, now=T0)


def search(store: Store, email: str, **parameters) -> int:
    return store.searches.add_search(email, SearchParameters(**parameters), now=T0).id


def rows(store: Store, *columns) -> list[tuple]:
    with store.engine.connect() as conn:
        return [tuple(as_utc(v) if isinstance(v, datetime) else v for v in r)
                for r in conn.execute(sa.select(*(notifications.c[c] for c in columns)).order_by(notifications.c.id))]


def test_a_window_notifies_each_matching_saved_search_once_per_job(store_url):
    store = catalog(store_url)  # five jobs, new at T0
    alerting(store, ANN, BOB)
    python = search(store, ANN, keywords="python")
    berlin = search(store, ANN, locations=("Berlin",))
    search(store, BOB, keywords="figma")
    built = store.notifications().build(*WINDOW, now=T0 + timedelta(minutes=5))
    assert (built.jobs, built.searches, built.created, built.users) == (5, 3, 5, 2)
    assert built.totals[PENDING] == 5
    per_search = {}
    for saved_search_id, job_id in rows(store, "saved_search_id", "job_id"):
        per_search.setdefault(saved_search_id, set()).add(job_id)
    assert len(per_search[python]) == 3 and len(per_search[berlin]) == 1
    # built again (a re-materialization, a backfill): nothing twice
    again = store.notifications().build(*WINDOW, now=T0 + timedelta(minutes=50))
    assert again.created == 0 and len(rows(store, "id")) == 5
    # another window holds none of these jobs
    assert store.notifications().build(WINDOW[1], WINDOW[1] + timedelta(hours=1)).jobs == 0


def test_only_users_whose_alerts_are_on_are_notified(store_url):
    store = catalog(store_url)
    alerting(store, ANN)
    store.searches.add_user(BOB, None, "Europe/London", now=T0)  # alerts never started
    search(store, ANN, keywords="python")
    search(store, BOB, keywords="python")
    store.alerts().pause(ANN)
    assert store.notifications().build(*WINDOW, now=T0).created == 0
    store.alerts().resume(ANN, now=T0)
    assert store.notifications().build(*WINDOW, now=T0).created == 3


def test_a_digest_is_due_on_the_users_schedule(store_url):
    store = catalog(store_url)
    alerting(store, ANN, digest="daily")
    store.alerts().configure(ANN, digest_hour=18, quiet_hours="22:00-07:00")
    search(store, ANN, keywords="python")
    store.notifications().build(*WINDOW, now=T0)  # 09:00 UTC = 09:00 London in December
    assert {due for (due,) in rows(store, "scheduled_for")} == {datetime(2026, 12, 1, 18, 0, tzinfo=timezone.utc)}
    # nothing is claimed before it is due
    assert store.notifications().claim(T0 + timedelta(hours=8)) == []
    assert len(store.notifications().claim(T0 + timedelta(hours=9))[0].notification_ids) == 3


def delivered_to(*accepting: bool):
    """A `send` that answers for each channel in turn (True: accepted) and remembers what it got."""
    got = []

    def send(claim, channels):
        got.append(claim)
        return [(channel_id, None if accepting[i % len(accepting)] else "HTTP 500")
                for i, (channel_id, _, _) in enumerate(channels)]
    return send, got


def with_channel(store: Store, email: str, url: str = "json://93.184.216.34/hook") -> int:
    return store.alerts().add_channel(email, url, now=T0).id


def test_claim_deliver_sent_only_when_a_channel_accepted(store_url):
    store = catalog(store_url)
    alerting(store, ANN)
    with_channel(store, ANN)
    with_channel(store, ANN, "json://93.184.216.35/hook")
    search(store, ANN, keywords="python")
    queue = store.notifications()
    queue.build(*WINDOW, now=T0)
    send, got = delivered_to(False, True)  # the first channel fails, the second accepts
    counts = deliver_pass(queue, send, LATER)
    assert counts == {SENT: 3, FAILED: 0, SKIPPED: 0, "digests": 1, "void_claims": 0}
    assert len(got) == 1 and len(got[0].items) == 3  # one digest of the user's three jobs
    assert {(s, sent) for s, sent in rows(store, "status", "sent_at")} == {(SENT, LATER)}
    with store.engine.connect() as conn:
        outcomes = sorted(tuple(r) for r in conn.execute(sa.select(deliveries.c.outcome, deliveries.c.error)))
    assert outcomes == [(FAILED, "HTTP 500"), (SENT, None)]
    assert deliver_pass(queue, send, LATER + timedelta(hours=1))["digests"] == 0  # sent: never again


def test_a_failed_delivery_is_retried_with_backoff_until_max_retries(store_url):
    store = catalog(store_url)
    alerting(store, ANN)
    with_channel(store, ANN)
    search(store, ANN, keywords="figma")
    queue = store.notifications(max_retries=3)
    queue.build(*WINDOW, now=T0)
    send, got = delivered_to(False)
    now = LATER
    for attempt in (1, 2, 3):
        assert deliver_pass(queue, send, now)[FAILED] == 1
        [(status, retries, due, error)] = rows(store, "status", "retry_count", "scheduled_for", "error")
        assert (status, retries, error) == (FAILED, attempt, "HTTP 500")
        assert due > now
        assert deliver_pass(queue, send, due - timedelta(seconds=1))["digests"] == 0  # not before its time
        now = due
    assert deliver_pass(queue, send, now + timedelta(days=1))["digests"] == 0  # out of retries: stays failed
    assert len(got) == 3
    # an operator's retry makes it due again, retries counted afresh
    queue.retry(rows(store, "id")[0][0], now=now)
    assert rows(store, "status", "retry_count") == [(PENDING, 0)]
    assert deliver_pass(queue, delivered_to(True)[0], now)[SENT] == 1


def test_a_claim_whose_pass_died_is_due_again_after_its_lease_and_the_dead_pass_cannot_finish_it(store_url):
    store = catalog(store_url)
    alerting(store, ANN)
    with_channel(store, ANN)
    search(store, ANN, keywords="python")
    queue = store.notifications()
    queue.build(*WINDOW, now=T0)
    [dead] = queue.claim(LATER)  # its process dies here
    assert {s for (s,) in rows(store, "status")} == {SENDING}
    assert queue.claim(LATER + timedelta(minutes=5)) == []  # held
    [second] = queue.claim(LATER + queue.lease + timedelta(seconds=1))
    assert set(second.notification_ids) == set(dead.notification_ids) and second.key != dead.key
    assert queue.record(dead, [(None, None)], LATER) is None  # the dead pass wakes up: its claim is void
    assert {s for (s,) in rows(store, "status")} == {SENDING}
    assert queue.record(second, [(None, None)], LATER + timedelta(minutes=11)) == SENT
    assert {s for (s,) in rows(store, "status")} == {SENT}


def test_claims_are_fair_one_users_backlog_never_starves_the_others(store_url):
    many = [posting(100 + i, f"Python Engineer {i}") for i in range(30)]
    store = catalog(store_url, [*CATALOG, *many])
    alerting(store, ANN, BOB)
    search(store, ANN, keywords="python")  # 33 matches
    search(store, BOB, keywords="figma")  # 1 match
    queue = store.notifications()
    queue.build(*WINDOW, now=T0)
    claims = queue.claim(LATER, per_user=10)
    assert sorted(len(c.notification_ids) for c in claims) == [1, 10]
    assert {c.email for c in claims} == {ANN, BOB}


def test_a_user_without_channels_is_skipped_and_a_paused_users_notifications_wait(store_url):
    store = catalog(store_url)
    alerting(store, ANN, BOB)
    search(store, ANN, keywords="figma")
    search(store, BOB, keywords="figma")
    with_channel(store, BOB)
    queue = store.notifications()
    queue.build(*WINDOW, now=T0)
    store.alerts().pause(BOB)
    send, got = delivered_to(True)
    counts = deliver_pass(queue, send, LATER)
    assert counts[SKIPPED] == 1 and counts[SENT] == 0  # Ann: no channel; Bob: paused, waits
    assert sorted(rows(store, "status")) == [(PENDING,), (SKIPPED,)]
    store.alerts().resume(BOB, now=LATER)
    assert deliver_pass(queue, send, LATER)[SENT] == 1


def test_cleanup_removes_what_was_delivered_days_ago_and_keeps_the_rest(store_url):
    store = catalog(store_url)
    alerting(store, ANN)
    with_channel(store, ANN)
    search(store, ANN, keywords="python")
    search(store, ANN, keywords="figma")
    queue = store.notifications(max_retries=1)
    queue.build(*WINDOW, now=T0)
    deliver_pass(queue, delivered_to(True)[0], LATER)
    [(first,)] = rows(store, "id")[:1]
    assert queue.cleanup(timedelta(days=3), now=LATER + timedelta(days=2))["notifications"] == 0
    removed = queue.cleanup(timedelta(days=3), now=LATER + timedelta(days=4))
    assert removed["notifications"] == 4 and removed["deliveries"] == 1
    assert rows(store, "id") == []
    assert first


@pytest.mark.parametrize("bad", ["", "nope://x", "json://127.0.0.1/hook", "json://10.1.2.3/hook"])
def test_a_bad_channel_is_refused_and_nothing_is_written(sqlite_url, bad):
    store = Store(sqlite_url)
    store.searches.add_user(ANN, None, "Europe/London", now=T0)
    with pytest.raises(ValueError):
        store.alerts().add_channel(ANN, bad)
    assert store.alerts().channels(ANN) == []


def test_channels_are_shown_masked_and_removed_with_their_credentials(store_url):
    store = Store(store_url)
    store.searches.add_user(ANN, None, "Europe/London", now=T0)
    store.searches.add_user(BOB, None, "Europe/London", now=T0)
    channel = store.alerts().add_channel(ANN, "json://user:s3cretpass@93.184.216.34/hook")
    assert "s3cretpass" not in channel.masked_url
    with pytest.raises(LookupError):
        store.alerts().remove_channel(BOB, channel.id)  # another user's: as if it did not exist
    store.alerts().remove_channel(ANN, channel.id)
    assert store.alerts().channels(ANN) == []
    with store.engine.connect() as conn:
        assert "s3cretpass" not in conn.scalar(sa.text("SELECT url FROM channels"))


def test_a_retry_due_in_quiet_hours_waits_for_their_end(store_url):
    store = catalog(store_url)
    alerting(store, ANN)
    store.alerts().configure(ANN, quiet_hours="09:00-12:00")  # London = UTC in December
    with_channel(store, ANN)
    search(store, ANN, keywords="figma")
    queue = store.notifications()
    queue.build(*WINDOW, now=T0 - timedelta(hours=2))  # 07:00: due at once
    deliver_pass(queue, delivered_to(False)[0], T0 - timedelta(minutes=1))  # 08:59: fails, retry at 09:04
    assert rows(store, "status", "scheduled_for") == [(FAILED, datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc))]


def test_a_send_that_raises_fails_that_users_digest_alone(store_url):
    store = catalog(store_url)
    alerting(store, ANN, BOB)
    with_channel(store, ANN)
    with_channel(store, BOB)
    search(store, ANN, keywords="figma")
    search(store, BOB, keywords="figma")
    queue = store.notifications()
    queue.build(*WINDOW, now=T0)

    def send(claim, channels):
        if claim.email == ANN:
            raise RuntimeError("renderer broke")
        return [(channel_id, None) for channel_id, _, _ in channels]

    counts = deliver_pass(queue, send, LATER)
    assert (counts[SENT], counts[FAILED]) == (1, 1)
    failed = [n for n in queue.list() if n.status == FAILED]
    assert [n.user for n in failed] == [ANN] and "renderer broke" in failed[0].error
