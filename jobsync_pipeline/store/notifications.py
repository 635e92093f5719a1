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

    def _totals(self, conn: sa.Connection, batch: str) -> dict[str, int]:
        counts = dict(conn.execute(sa.select(notifications.c.status, sa.func.count()).where(
            notifications.c.batch_key.like(f"{batch}/%")).group_by(notifications.c.status)).all())
        return {status: counts.get(status, 0) for status in STATUSES}

    # --- delivering --------------------------------------------------------------------------------
    def release_expired(self, now: datetime | None = None) -> int:
        """Claims whose lease ran out (their pass died) go back to due: `pending` again."""
        now = now or utcnow()
        with self.engine.begin() as conn:
            return conn.execute(notifications.update().where(
                notifications.c.status == SENDING, notifications.c.claimed_until < now).values(
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
        expired = sa.and_(notifications.c.status == SENDING, notifications.c.claimed_until < now)
        with self.engine.connect() as conn:
            return conn.scalar(sa.select(sa.func.count()).where(sa.or_(self._due(now), expired)))

    def claim(self, now: datetime | None = None, per_user: int = 100, users_per_pass: int = 100) -> list[Claim]:
        """This pass's claims: for each of up to `users_per_pass` users with due notifications (their alerts
        on), at most `per_user` of them, oldest due first, so no user's backlog starves the others."""
        now = now or utcnow()
        self.release_expired(now)
        due = self._due(now)
        claims = []
        with self.engine.connect() as conn:
            waiting = list(conn.scalars(sa.select(notifications.c.user_id).where(due).distinct()
                                        .order_by(notifications.c.user_id).limit(users_per_pass)))
        for user_id in waiting:
            key = str(uuid.uuid4())
            with self.engine.begin() as conn:
                pick = (sa.select(notifications.c.id).where(due, notifications.c.user_id == user_id)
                        .order_by(notifications.c.scheduled_for, notifications.c.id).limit(per_user))
                if conn.dialect.name == "postgresql":  # SQLite: BEGIN IMMEDIATE holds the writer lock already
                    pick = pick.with_for_update(skip_locked=True)
                ids = list(conn.scalars(pick))
                if not ids:
                    continue  # another pass holds them
                conn.execute(notifications.update().where(notifications.c.id.in_(ids)).values(
                    status=SENDING, claim_key=key, claimed_until=now + self.lease))
                email = conn.scalar(sa.select(users.c.email).where(users.c.id == user_id))
                items = conn.execute(
                    sa.select(notifications.c.id.label("notification_id"), notifications.c.saved_search_id,
                              saved_searches.c.parameters, jobs.c.id.label("job_id"), jobs.c.title, jobs.c.company,
                              jobs.c.location, jobs.c.workplace, jobs.c.url, jobs.c.posted_date,
                              jobs.c.salary_annual_min, jobs.c.salary_annual_max, jobs.c.salary_currency,
                              jobs.c.description_html)
                    .join(jobs, jobs.c.id == notifications.c.job_id)
                    .join(saved_searches, saved_searches.c.id == notifications.c.saved_search_id)
                    .where(notifications.c.id.in_(ids)).order_by(*NEWEST_FIRST)).mappings().all()
            claims.append(Claim(key=key, user_id=user_id, email=email, notification_ids=tuple(ids),
                                items=tuple(dict(item) for item in items)))
        return claims

    def channel_urls(self, user_id: int) -> list[tuple[int, str, str]]:
        """The user's channels as (id, url with its credentials, masked url): for sending only."""
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(
                sa.select(channels.c.id, channels.c.url, channels.c.masked_url)
                .where(channels.c.user_id == user_id, channels.c.removed_at.is_(None)).order_by(channels.c.id))]

    def record(self, claim: Claim, outcomes: Sequence[tuple[int | None, str | None]],
               now: datetime | None = None) -> str:
        """Finish a claim after its digest went to the user's channels: `outcomes` are (channel id, error
        or None). Sent when a channel accepted it; else failed with the errors and a later retry (or
        for good past max_retries); skipped when the user had no channel. Returns the status."""
        now = now or utcnow()
        with self.engine.begin() as conn:
            for channel_id, error in outcomes:
                conn.execute(deliveries.insert().values(
                    user_id=claim.user_id, channel_id=channel_id, message_key=claim.key,
                    notifications=len(claim.notification_ids), outcome=SENT if error is None else FAILED,
                    error=error, at=now))
            mine = sa.and_(notifications.c.claim_key == claim.key, notifications.c.status == SENDING)
            common = {"claim_key": None, "claimed_until": None}
            if not outcomes:
                conn.execute(notifications.update().where(mine).values(
                    status=SKIPPED, error="the user has no channel", **common))
                return SKIPPED
            if any(error is None for _, error in outcomes):
                conn.execute(notifications.update().where(mine).values(status=SENT, sent_at=now, error=None, **common))
                return SENT
            errors = "; ".join(error for _, error in outcomes if error)
            # a retry waits for the end of the user's quiet hours like any digest
            user = conn.execute(sa.select(users.c.quiet_hours, users.c.timezone).where(users.c.id == claim.user_id)).one()
            quiet = DigestSettings(digest="asap", quiet_hours=user.quiet_hours, timezone=user.timezone)
            rows = conn.execute(sa.select(notifications.c.id, notifications.c.retry_count).where(mine)).all()
            for notification_id, retries in rows:
                conn.execute(notifications.update().where(notifications.c.id == notification_id, mine).values(
                    status=FAILED, error=errors[:2000], retry_count=retries + 1,
                    scheduled_for=next_delivery(quiet, retry_at(now, retries + 1)), **common))
            return FAILED

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
    """One delivery pass: claim, send each claim's digest with `send(claim, channels)` (which returns
    one (channel id or None for the dev outbox, error or None) per message it sent; none: skipped),
    record. Returns the notifications by outcome."""
    counts = {SENT: 0, FAILED: 0, SKIPPED: 0, "digests": 0}
    for claim in store.claim(now, per_user=per_user, users_per_pass=users_per_pass):
        outcome = store.record(claim, send(claim, store.channel_urls(claim.user_id)), now)
        counts[outcome] += len(claim.notification_ids)
        counts["digests"] += 1
    return counts


def _notification(row) -> Notification:
    return Notification(id=row.id, user=row.email, saved_search_id=row.saved_search_id, job_id=row.job_id,
                        batch_key=row.batch_key, status=row.status, scheduled_for=as_utc(row.scheduled_for),
                        retry_count=row.retry_count, error=row.error, created_at=as_utc(row.created_at),
                        sent_at=as_utc(row.sent_at))
