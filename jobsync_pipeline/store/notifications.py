"""Notifications: the new jobs of a window matched against users' saved searches, and their delivery,
exactly once per saved search × job.

Building a window is SQL: the window's new and reactivated canonical jobs (from `job_events`) go into
a key table, and each saved search of a user whose alerts are on runs the product's own search over
them (`store.searches`, full text in the database) as one INSERT … SELECT that skips pairs already
notified (the unique constraint on saved search × job). So a window built twice, or backfilled,
creates nothing twice.

Delivering moves a notification `pending → sending → sent`, or `→ failed` with `retry_count + 1` and a
later `scheduled_for` while retries are left (a failed one with retries left is due again then). A
pass claims, per user, at most `per_user` due notifications in one UPDATE (PostgreSQL: `FOR UPDATE
SKIP LOCKED`, so concurrent passes take disjoint rows; SQLite: one writer transaction), tagged with the
pass's claim key and a lease. Only the holder of the claim can finish it; a claim whose lease ran out
(its process died) goes back to due. A notification's digest is sent once per claim, so it reaches a
channel twice only if a process dies between the channel accepting it and the `sent` write.
"""
from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from jobsync_pipeline.core.digest import DigestSettings, next_delivery, retry_at
from jobsync_pipeline.core.search import SearchParameters
from jobsync_pipeline.store.alerts import RECEIVING
from jobsync_pipeline.store.searches import NEWEST_FIRST, _search_tiers
from jobsync_pipeline.store.tables import (channels, deliveries, followups, job_events, jobs, notifications,
                                           saved_searches, users)
from jobsync_pipeline.store.time import as_utc, utcnow

PENDING, SENDING, SENT, FAILED, SKIPPED = "pending", "sending", "sent", "failed", "skipped"
STATUSES = (PENDING, SENDING, SENT, FAILED, SKIPPED)
MAX_RETRIES = 3
FRESH_KINDS = ("new", "reactivated")

_tmp = sa.MetaData()
_window_jobs = sa.Table("jobsync_window_jobs", _tmp, sa.Column("job_id", sa.BigInteger, primary_key=True),
                        prefixes=["TEMPORARY"])


@dataclass(frozen=True)
class Claim:
    """One user's due notifications, held by one pass: what one digest tells."""

    key: str
    user_id: int
    email: str
    alert_status: str
    notification_ids: tuple[int, ...]
    items: tuple[dict[str, Any], ...]  # the jobs, newest first, each with the saved search it matched


@dataclass
class BuildResult:
    window_start: datetime
    window_end: datetime
    jobs: int = 0
    searches: int = 0
    created: int = 0
    users: int = 0
    totals: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Notification:
    id: int
    user: str
    saved_search_id: int
    job_id: int
    batch_key: str
    status: str
    scheduled_for: datetime
    retry_count: int
    error: str | None
    created_at: datetime
    sent_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        at = lambda value: value.isoformat(timespec="seconds") if value else None  # noqa: E731
        return {"id": self.id, "user": self.user, "saved_search_id": self.saved_search_id, "job_id": self.job_id,
                "batch_key": self.batch_key, "status": self.status, "scheduled_for": at(self.scheduled_for),
                "retry_count": self.retry_count, "error": self.error, "created_at": at(self.created_at),
                "sent_at": at(self.sent_at)}


class NotificationStore:
    def __init__(self, engine: sa.Engine, max_retries: int = MAX_RETRIES, lease: timedelta = timedelta(minutes=10)):
        self.engine = engine
        self.max_retries = max_retries
        self.lease = lease

    # --- building a window -------------------------------------------------------------------------
    def build(self, window_start: datetime, window_end: datetime, now: datetime | None = None) -> BuildResult:
        """Notifications for the new and reactivated canonical jobs of [window_start, window_end) that
        match a saved search of a user whose alerts are on; one transaction."""
        now = now or utcnow()
        result = BuildResult(window_start, window_end)
        batch = window_start.strftime("%Y-%m-%dT%H:%MZ")
        with self.engine.begin() as conn:
            _window_jobs.drop(conn, checkfirst=True)
            _window_jobs.create(conn)
            fresh = (sa.select(job_events.c.job_id).distinct()
                     .where(job_events.c.kind.in_(FRESH_KINDS), job_events.c.at >= window_start,
                            job_events.c.at < window_end))
            conn.execute(_window_jobs.insert().from_select(["job_id"], fresh))
            result.jobs = conn.scalar(sa.select(sa.func.count()).select_from(_window_jobs))
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("ANALYZE jobsync_window_jobs")
            searches = conn.execute(
                sa.select(saved_searches.c.id, saved_searches.c.user_id, saved_searches.c.parameters, users.c.digest,
                          users.c.digest_hour, users.c.quiet_hours, users.c.timezone)
                .join(users, users.c.id == saved_searches.c.user_id)
                .where(saved_searches.c.removed_at.is_(None), users.c.alert_status.in_(RECEIVING))
                .order_by(saved_searches.c.user_id, saved_searches.c.id)).all() if result.jobs else []
            result.searches = len(searches)
            insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(notifications)
            touched = set()
            for search in searches:
                settings = DigestSettings(digest=search.digest, digest_hour=search.digest_hour,
                                          quiet_hours=search.quiet_hours, timezone=search.timezone)
                due = next_delivery(settings, now)
                parameters = SearchParameters.model_validate_json(search.parameters)
                matched = sa.union(*(tier.with_only_columns(jobs.c.id).where(
                    jobs.c.id.in_(sa.select(_window_jobs.c.job_id))) for _, tier in
                    _search_tiers(conn.dialect.name, parameters, now))).subquery()
                rows = sa.select(sa.literal(search.user_id, sa.BigInteger), sa.literal(search.id, sa.BigInteger),
                                 matched.c.id, sa.literal(f"{batch}/u{search.user_id}"), sa.literal(PENDING),
                                 sa.literal(due, notifications.c.scheduled_for.type),
                                 sa.literal(now, notifications.c.created_at.type)).where(sa.true())
                created = conn.execute(insert.from_select(
                    ["user_id", "saved_search_id", "job_id", "batch_key", "status", "scheduled_for", "created_at"],
                    rows).on_conflict_do_nothing()).rowcount
                if created:
                    result.created += created
                    touched.add(search.user_id)
            result.users = len(touched)
            _window_jobs.drop(conn)
            result.totals = self._totals(conn, batch)
        return result

    def fresh_windows(self, after_event_id: int | None, now: datetime,
                      lookback: timedelta = timedelta(hours=2)) -> tuple[list[tuple[datetime, str]], int | None]:
        """The hour windows (UTC starts) holding new or reactivated jobs' events after `after_event_id` or
        of the last `lookback`, each with a key that changes whenever the window's events do (their
        count and newest id), and the newest event id of all (None: no event yet).

        The lookback is what catches an apply that committed after a later one: its events have lower
        ids than events already seen, but its `at` (when it started) is recent."""
        fresh = job_events.c.kind.in_(FRESH_KINDS)
        recent = job_events.c.at >= now - lookback
        new = sa.or_(job_events.c.id > after_event_id, recent) if after_event_id is not None else recent
        with self.engine.connect() as conn:
            newest = conn.scalar(sa.select(sa.func.max(job_events.c.id)))
            first, last = conn.execute(sa.select(sa.func.min(job_events.c.at), sa.func.max(job_events.c.at))
                                       .where(fresh, new)).one()
            windows = []
            start = None if first is None else as_utc(first).replace(minute=0, second=0, microsecond=0)
            while start is not None and start <= as_utc(last):
                end = start + timedelta(hours=1)
                count, top = conn.execute(sa.select(sa.func.count(), sa.func.max(job_events.c.id)).where(
                    fresh, job_events.c.at >= start, job_events.c.at < end)).one()
                if count:
                    windows.append((start, f"{count}-{top}"))
                start = end
        return windows, newest

    def _totals(self, conn: sa.Connection, batch: str) -> dict[str, int]:
        counts = dict(conn.execute(sa.select(notifications.c.status, sa.func.count()).where(
            notifications.c.batch_key.like(f"{batch}/%")).group_by(notifications.c.status)).all())
        return {status: counts.get(status, 0) for status in STATUSES}

    # --- delivering --------------------------------------------------------------------------------
    def release_expired(self, now: datetime | None = None) -> int:
        """Claims whose lease ran out (their pass died) go back to due: `pending` again."""
        with self.engine.begin() as conn:
            return conn.execute(notifications.update().where(_lease_ran_out(now or utcnow())).values(
                status=PENDING, claim_key=None, claimed_until=None)).rowcount

    def _due(self, now: datetime) -> sa.ColumnElement[bool]:
        """Due: pending, or failed with retries left, at or past scheduled_for, of a user whose alerts are
        on (a paused user's notifications wait)."""
        receiving = sa.select(users.c.id).where(users.c.alert_status.in_(RECEIVING))
        return sa.and_(notifications.c.scheduled_for <= now, notifications.c.user_id.in_(receiving), sa.or_(
            notifications.c.status == PENDING,
            sa.and_(notifications.c.status == FAILED, notifications.c.retry_count < self.max_retries)))

    def due_count(self, now: datetime | None = None) -> int:
        """How many notifications are due (claims past their lease included)."""
        now = now or utcnow()
        with self.engine.connect() as conn:
            return conn.scalar(sa.select(sa.func.count()).where(sa.or_(self._due(now), _lease_ran_out(now))))

    def claim(self, now: datetime | None = None, per_user: int = 100, users_per_pass: int = 100) -> list[Claim]:
        """Claims for up to `users_per_pass` users at once (a pass sends each claim as it takes it:
        `deliver_pass`)."""
        now = now or utcnow()
        self.release_expired(now)
        return [claim for user_id in self.waiting_users(now, users_per_pass)
                if (claim := self.claim_user(user_id, now, per_user)) is not None]

    def waiting_users(self, now: datetime, limit: int) -> list[int]:
        """Users with due notifications, those waiting longest first."""
        with self.engine.connect() as conn:
            return list(conn.scalars(
                sa.select(notifications.c.user_id).where(self._due(now)).group_by(notifications.c.user_id)
                .order_by(sa.func.min(notifications.c.scheduled_for), notifications.c.user_id).limit(limit)))

    def claim_user(self, user_id: int, now: datetime, per_user: int = 100) -> Claim | None:
        """At most `per_user` of the user's due notifications, oldest due first, held by a new claim
        (sending, its key, a lease) in one transaction; None when there are none or another pass is
        claiming this user's right now (so two passes never split one user's digest)."""
        key = str(uuid.uuid4())
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # SQLite: BEGIN IMMEDIATE holds the writer lock already
                if not conn.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(
                        sa.func.hashtextextended(f"jobsync:notify:{user_id}", 0)))):
                    return None
            pick = (sa.select(notifications.c.id).where(self._due(now), notifications.c.user_id == user_id)
                    .order_by(notifications.c.scheduled_for, notifications.c.id).limit(per_user))
            if conn.dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            ids = list(conn.scalars(pick))
            if not ids:
                return None
            conn.execute(notifications.update().where(notifications.c.id.in_(ids)).values(
                status=SENDING, claim_key=key, claimed_until=now + self.lease))
            user = conn.execute(sa.select(users.c.email, users.c.alert_status).where(users.c.id == user_id)).one()
            items = conn.execute(
                sa.select(notifications.c.id.label("notification_id"), notifications.c.saved_search_id,
                          saved_searches.c.parameters, jobs.c.id.label("job_id"), jobs.c.title, jobs.c.company,
                          jobs.c.location, jobs.c.workplace, jobs.c.url, jobs.c.posted_date,
                          jobs.c.salary_annual_min, jobs.c.salary_annual_max, jobs.c.salary_currency,
                          jobs.c.description_html)
                .join(jobs, jobs.c.id == notifications.c.job_id)
                .join(saved_searches, saved_searches.c.id == notifications.c.saved_search_id)
                .where(notifications.c.id.in_(ids)).order_by(*NEWEST_FIRST)).mappings().all()
        return Claim(key=key, user_id=user_id, email=user.email, alert_status=user.alert_status,
                     notification_ids=tuple(ids), items=tuple(dict(item) for item in items))

    def channel_urls(self, user_id: int) -> list[tuple[int, str, str]]:
        """The user's channels as (id, url with its credentials, masked url): for sending only."""
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(
                sa.select(channels.c.id, channels.c.url, channels.c.masked_url)
                .where(channels.c.user_id == user_id, channels.c.removed_at.is_(None)).order_by(channels.c.id))]

    def record(self, claim: Claim, outcomes: Sequence[tuple[int | None, str | None]],
               now: datetime | None = None, failure: str | None = None) -> str | None:
        """Finish a claim after its digest went to the user's channels: `outcomes` are (channel id, or None
        for the dev outbox; error or None), each written to `deliveries` as it happened. The claim's
        notifications are sent when a channel accepted it; else failed with the errors (or `failure`:
        the digest could not be sent at all) and a later retry while retries are left; skipped when
        there was nowhere to send it. Returns that status, or None when the claim was no longer this
        pass's (its lease ran out and another pass took it): then nothing of the claim changes."""
        now = now or utcnow()
        with self.engine.begin() as conn:
            for channel_id, error in outcomes:
                conn.execute(deliveries.insert().values(
                    user_id=claim.user_id, channel_id=channel_id, message_key=claim.key,
                    notifications=len(claim.notification_ids), outcome=SENT if error is None else FAILED,
                    error=error, at=now))
            mine = sa.and_(notifications.c.claim_key == claim.key, notifications.c.status == SENDING)
            common = {"claim_key": None, "claimed_until": None}
            if not outcomes and failure is None:
                done = conn.execute(notifications.update().where(mine).values(
                    status=SKIPPED, error="the user has no channel", **common)).rowcount
                return SKIPPED if done else None
            if any(error is None for _, error in outcomes):
                done = conn.execute(notifications.update().where(mine).values(
                    status=SENT, sent_at=now, error=None, **common)).rowcount
                return SENT if done else None
            errors = "; ".join(error for _, error in outcomes if error) or failure
            # a retry waits for the end of the user's quiet hours like any digest
            user = conn.execute(sa.select(users.c.quiet_hours, users.c.timezone).where(users.c.id == claim.user_id)).one()
            quiet = DigestSettings(digest="asap", quiet_hours=user.quiet_hours, timezone=user.timezone)
            rows = conn.execute(sa.select(notifications.c.id, notifications.c.retry_count).where(mine)).all()
            for notification_id, retries in rows:
                conn.execute(notifications.update().where(notifications.c.id == notification_id, mine).values(
                    status=FAILED, error=errors[:2000], retry_count=retries + 1,
                    scheduled_for=next_delivery(quiet, retry_at(now, retries + 1)), **common))
            return FAILED if rows else None

    def skip(self, claim: Claim, reason: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(notifications.update().where(notifications.c.claim_key == claim.key,
                                                      notifications.c.status == SENDING)
                         .values(status=SKIPPED, error=reason, claim_key=None, claimed_until=None))

    # --- reading and operating ---------------------------------------------------------------------
    def list(self, status: str | None = None, email: str | None = None, limit: int = 100) -> list[Notification]:
        query = sa.select(notifications, users.c.email).join(users, users.c.id == notifications.c.user_id)
        if status:
            query = query.where(notifications.c.status == status)
        if email:
            query = query.where(users.c.email == email.strip().lower())
        with self.engine.connect() as conn:
            return [_notification(r) for r in conn.execute(query.order_by(notifications.c.id.desc()).limit(limit))]

    def retry(self, notification_id: int, now: datetime | None = None) -> Notification:
        """A failed (or skipped) notification due again now, with its retries counted afresh."""
        with self.engine.begin() as conn:
            status = conn.scalar(sa.select(notifications.c.status).where(notifications.c.id == notification_id))
            if status is None:
                raise LookupError(f"no notification {notification_id}")
            if status not in (FAILED, SKIPPED):
                raise ValueError(f"notification {notification_id} is {status}: only a failed or skipped one is retried")
            conn.execute(notifications.update().where(notifications.c.id == notification_id).values(
                status=PENDING, retry_count=0, error=None, scheduled_for=now or utcnow()))
        with self.engine.connect() as conn:
            return _notification(conn.execute(sa.select(notifications, users.c.email)
                                              .join(users, users.c.id == notifications.c.user_id)
                                              .where(notifications.c.id == notification_id)).one())

    def cleanup(self, older_than: timedelta, now: datetime | None = None) -> dict[str, int]:
        """Remove sent and skipped notifications, deliveries and processed or skipped follow-ups older
        than `older_than`; pending, sending and failed ones stay. Returns how many of each went."""
        before = (now or utcnow()) - older_than
        with self.engine.begin() as conn:
            return {
                "notifications": conn.execute(notifications.delete().where(
                    notifications.c.status.in_((SENT, SKIPPED)),
                    sa.func.coalesce(notifications.c.sent_at, notifications.c.created_at) < before)).rowcount,
                "deliveries": conn.execute(deliveries.delete().where(deliveries.c.at < before)).rowcount,
                "followups": conn.execute(followups.delete().where(
                    followups.c.status.in_(("processed", "skipped")), followups.c.processed_at < before)).rowcount,
            }


def deliver_pass(store: NotificationStore,
                 send: Callable[[Claim, list[tuple[int, str, str]]], list[tuple[int | None, str | None]]],
                 now: datetime | None = None, per_user: int = 100, users_per_pass: int = 100) -> dict[str, int]:
    """One delivery pass: for each waiting user in turn, claim, send the claim's digest with `send(claim,
    channels)` (which returns one (channel id or None for the dev outbox, error or None) per message it
    sent; none: skipped), record. A claim is taken just before its digest goes, so its lease covers one
    user's sends, not the whole pass. A `send` that raises fails that claim alone. Returns the
    notifications by outcome, the digests, and the claims that were no longer this pass's."""
    now = now or utcnow()
    store.release_expired(now)
    counts = {SENT: 0, FAILED: 0, SKIPPED: 0, "digests": 0, "void_claims": 0}
    waiting = store.waiting_users(now, users_per_pass)
    # concurrent passes start at different users, so they serve different users instead of queueing
    # for the same user's lock; every waiting user is still served in this pass
    start = random.randrange(len(waiting)) if waiting else 0
    for user_id in waiting[start:] + waiting[:start]:
        claim = store.claim_user(user_id, now, per_user)
        if claim is None:
            continue
        try:
            outcome = store.record(claim, send(claim, store.channel_urls(user_id)), now)
        except Exception as exc:  # noqa: BLE001 - one user's failure is theirs alone
            outcome = store.record(claim, [], now, failure=f"the digest could not be sent: {type(exc).__name__}: {exc}"[:500])
        if outcome is None:
            counts["void_claims"] += 1
            continue
        counts[outcome] += len(claim.notification_ids)
        counts["digests"] += 1
    return counts


def _lease_ran_out(now: datetime) -> sa.ColumnElement[bool]:
    """A `sending` claim whose pass died: its lease ended before `now`."""
    return sa.and_(notifications.c.status == SENDING, notifications.c.claimed_until < now)


def _notification(row) -> Notification:
    return Notification(id=row.id, user=row.email, saved_search_id=row.saved_search_id, job_id=row.job_id,
                        batch_key=row.batch_key, status=row.status, scheduled_for=as_utc(row.scheduled_for),
                        retry_count=row.retry_count, error=row.error, created_at=as_utc(row.created_at),
                        sent_at=as_utc(row.sent_at))
