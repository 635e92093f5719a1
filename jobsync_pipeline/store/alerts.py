"""Users' alerts: their state and digest settings, their channels, and the delayed follow-ups of an
alert confirmation (a queue of `followups` rows).

Alerts move `stopped → unconfirmed` (start) `→ active` (confirm) and `⇄ paused` (pause, resume).
Starting queues two follow-ups: a reminder at +24 h for a user who has not confirmed, and a pause
check at +48 h that pauses the alerts of a user who still has not. At most one follow-up per user
and kind is pending (a partial unique index). A pass claims due rows atomically (PostgreSQL
`FOR UPDATE SKIP LOCKED` in one UPDATE; SQLite one writer transaction), with a lease, so a pass that
dies leaves its rows due again after the lease; each row is acted on only if the user's state still
calls for it, else it ends `skipped`.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from jobsync_pipeline.core.digest import DigestSettings
from jobsync_pipeline.notify.channels import parse_channel
from jobsync_pipeline.store.searches import NotFound, SearchStore, User, token_hash
from jobsync_pipeline.store.tables import channels, followups, users
from jobsync_pipeline.store.time import as_utc, utcnow

STOPPED, UNCONFIRMED, ACTIVE, PAUSED = "stopped", "unconfirmed", "active", "paused"
RECEIVING = (UNCONFIRMED, ACTIVE)  # the first digests carry the confirmation token
REMINDER, PAUSE_CHECK = "reminder_24h", "pause_check_48h"
PENDING, PROCESSING, PROCESSED, SKIPPED = "pending", "processing", "processed", "skipped"
CONFIRM_PREFIX = "jsc_"


@dataclass(frozen=True)
class FollowupTimings:
    """When the follow-ups of a started alert fall due, and how long a pass may hold a claimed row."""

    reminder_after: timedelta = timedelta(hours=24)
    pause_check_after: timedelta = timedelta(hours=48)
    lease: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class Followup:
    id: int
    user_id: int
    email: str
    kind: str
    scheduled_at: datetime
    status: str
    created_at: datetime
    processed_at: datetime | None
    error: str | None

    def as_json(self) -> dict:
        at = lambda value: value.isoformat(timespec="seconds") if value else None  # noqa: E731
        return {"id": self.id, "user": self.email, "kind": self.kind, "scheduled_at": at(self.scheduled_at),
                "status": self.status, "created_at": at(self.created_at), "processed_at": at(self.processed_at),
                "error": self.error}


@dataclass(frozen=True)
class ChannelRow:
    id: int
    user_id: int
    scheme: str
    masked_url: str
    created_at: datetime

    def as_json(self) -> dict:
        return {"id": self.id, "scheme": self.scheme, "url": self.masked_url,
                "created_at": self.created_at.isoformat(timespec="seconds")}


class AlertStore:
    def __init__(self, engine: sa.Engine, timings: FollowupTimings | None = None):
        self.engine = engine
        self.people = SearchStore(engine)
        self.timings = timings or FollowupTimings()

    # --- digest settings ---------------------------------------------------------------------------
    def configure(self, email: str, *, digest: str | None = None, digest_hour: int | None = None,
                  quiet_hours: str | None = None, timezone: str | None = None) -> User:
        """Change a user's digest settings; the whole result is validated before anything is written.
        `quiet_hours=""` clears them."""
        user = self.people.user(email)
        current = {"digest": user.digest, "digest_hour": user.digest_hour, "quiet_hours": user.quiet_hours,
                   "timezone": user.timezone}
        asked = {"digest": digest, "digest_hour": digest_hour, "timezone": timezone,
                 "quiet_hours": (quiet_hours or None) if quiet_hours is not None else user.quiet_hours}
        settings = DigestSettings(**{**current, **{k: v for k, v in asked.items() if v is not None},
                                     "quiet_hours": asked["quiet_hours"]})
        with self.engine.begin() as conn:
            conn.execute(users.update().where(users.c.id == user.id).values(
                digest=settings.digest, digest_hour=settings.digest_hour, quiet_hours=settings.quiet_hours,
                timezone=settings.timezone))
        return self.people.user(email)

    # --- alert state -------------------------------------------------------------------------------
    def start(self, email: str, now: datetime | None = None) -> User:
        """Start a user's alerts: unconfirmed until confirmed, with the two follow-ups queued. Starting
        alerts that are already on changes nothing."""
        now = now or utcnow()
        user = self.people.user(email)
        if user.alert_status in RECEIVING:
            return user
        with self.engine.begin() as conn:
            confirmed = conn.scalar(sa.select(users.c.alerts_confirmed_at).where(users.c.id == user.id))
            status = ACTIVE if confirmed else UNCONFIRMED
            conn.execute(users.update().where(users.c.id == user.id).values(alert_status=status, alerts_started_at=now))
            if status == UNCONFIRMED:
                _queue(conn, user.id, REMINDER, now + self.timings.reminder_after, now)
                _queue(conn, user.id, PAUSE_CHECK, now + self.timings.pause_check_after, now)
        return self.people.user(email)

    def confirm(self, email: str, now: datetime | None = None) -> User:
        """Confirm a user's started alerts (their pending follow-ups will find nothing to do)."""
        user = self.people.user(email)
        if user.alert_status == STOPPED:
            raise ValueError(f"{user.email} has not started alerts: `jobsync alerts start --user {user.email}` first")
        return self._set(user, ACTIVE, alerts_confirmed_at=now or utcnow(), confirm_token_hash=None)

    def confirm_token(self, token: str, now: datetime | None = None) -> User | None:
        """Confirm the alerts of the user a one-time token (from a digest) belongs to; None for any other
        string, also a token already used."""
        if not token or not token.startswith(CONFIRM_PREFIX) or len(token) > 200:
            return None
        with self.engine.connect() as conn:
            email = conn.scalar(sa.select(users.c.email).where(users.c.confirm_token_hash == token_hash(token)))
        return self.confirm(email, now) if email else None

    def keep_confirm_token(self, user_id: int, token: str) -> None:
        """Make `token` (from `new_confirm_token`) the user's one confirmation token, once a digest carrying
        it reached them; only its hash is kept, and it voids the one before."""
        with self.engine.begin() as conn:
            conn.execute(users.update().where(users.c.id == user_id).values(confirm_token_hash=token_hash(token)))

    def pause(self, email: str) -> User:
        user = self.people.user(email)
        if user.alert_status not in RECEIVING:
            raise ValueError(f"{user.email}'s alerts are {user.alert_status}: nothing to pause")
        return self._set(user, PAUSED)

    def resume(self, email: str, now: datetime | None = None) -> User:
        """Resume paused alerts: active again if ever confirmed, else unconfirmed with fresh follow-ups."""
        user = self.people.user(email)
        if user.alert_status != PAUSED:
            raise ValueError(f"{user.email}'s alerts are {user.alert_status}, not paused")
        return self.start(email, now)

    def _set(self, user: User, status: str, **values) -> User:
        with self.engine.begin() as conn:
            conn.execute(users.update().where(users.c.id == user.id).values(alert_status=status, **values))
        return self.people.user(user.email)

    # --- channels ----------------------------------------------------------------------------------
    def add_channel(self, email: str, url: str, allow: str = "", now: datetime | None = None) -> ChannelRow:
        """Add a channel after checking it (apprise can parse it; its host is not private unless allowed)."""
        user = self.people.user(email)
        channel = parse_channel(url, allow=allow)
        with self.engine.begin() as conn:
            new_id = conn.execute(channels.insert().values(
                user_id=user.id, scheme=channel.scheme, url=url.strip(), masked_url=channel.masked_url,
                created_at=now or utcnow())).inserted_primary_key[0]
        return self.channels(email, only=new_id)[0]

    def channels(self, email: str, only: int | None = None) -> list[ChannelRow]:
        user = self.people.user(email)
        query = sa.select(channels).where(channels.c.user_id == user.id, channels.c.removed_at.is_(None))
        if only is not None:
            query = query.where(channels.c.id == only)
        with self.engine.connect() as conn:
            return [ChannelRow(id=r.id, user_id=r.user_id, scheme=r.scheme, masked_url=r.masked_url,
                               created_at=as_utc(r.created_at)) for r in conn.execute(query.order_by(channels.c.id))]

    def remove_channel(self, email: str, channel_id: int, now: datetime | None = None) -> None:
        """Remove a user's channel; its credentials go with it (only the masked URL stays, for the
        deliveries that name it). Another user's channel is NotFound, like one that does not exist."""
        user = self.people.user(email)
        with self.engine.begin() as conn:
            removed = conn.execute(channels.update().where(
                channels.c.id == channel_id, channels.c.user_id == user.id, channels.c.removed_at.is_(None))
                .values(removed_at=now or utcnow(), url=channels.c.masked_url)).rowcount
        if not removed:
            raise NotFound(f"{user.email} has no channel {channel_id}")

    # --- follow-ups --------------------------------------------------------------------------------
    def followups(self, status: str | None = None, limit: int = 100) -> list[Followup]:
        query = sa.select(followups, users.c.email).join(users, users.c.id == followups.c.user_id)
        if status:
            query = query.where(followups.c.status == status)
        with self.engine.connect() as conn:
            return [_followup(r) for r in conn.execute(query.order_by(followups.c.scheduled_at, followups.c.id)
                                                        .limit(limit))]

    def _due(self, now: datetime) -> sa.ColumnElement[bool]:
        return sa.or_(sa.and_(followups.c.status == PENDING, followups.c.scheduled_at <= now),
                      sa.and_(followups.c.status == PROCESSING, followups.c.claimed_until < now))

    def due_followups(self, now: datetime | None = None) -> int:
        with self.engine.connect() as conn:
            return conn.scalar(sa.select(sa.func.count()).where(self._due(now or utcnow())))

    def claim_followups(self, now: datetime | None = None, limit: int = 10) -> list[Followup]:
        """Claim at most `limit` due follow-ups (pending and due, or processing past their lease) for
        this pass alone."""
        now = now or utcnow()
        pick = sa.select(followups.c.id).where(self._due(now)).order_by(followups.c.scheduled_at, followups.c.id).limit(limit)
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # SQLite: BEGIN IMMEDIATE already holds the writer lock
                pick = pick.with_for_update(skip_locked=True)
            ids = list(conn.scalars(pick))
            if not ids:
                return []
            conn.execute(followups.update().where(followups.c.id.in_(ids)).values(
                status=PROCESSING, claimed_until=now + self.timings.lease))
            rows = conn.execute(sa.select(followups, users.c.email).join(users, users.c.id == followups.c.user_id)
                                .where(followups.c.id.in_(ids)).order_by(followups.c.scheduled_at, followups.c.id))
            return [_followup(r) for r in rows]

    def run_followups(self, send: Callable[[int, str, str, str], str | None], now: datetime | None = None,
                      limit: int = 10) -> dict[str, int]:
        """One pass: claim due follow-ups and act on each as the user's state now calls for. `send(user_id,
        email, title, body)` sends a message to the user's channels and returns an error or None. Returns
        the counts by outcome."""
        now = now or utcnow()
        counts = {PROCESSED: 0, SKIPPED: 0, "failed": 0}
        for row in self.claim_followups(now, limit):
            with self.engine.connect() as conn:
                status = conn.scalar(sa.select(users.c.alert_status).where(users.c.id == row.user_id))
            if status != UNCONFIRMED:  # confirmed, paused or stopped meanwhile: nothing left to do
                self._finish(row.id, SKIPPED, now, f"alerts are {status}")
                counts[SKIPPED] += 1
                continue
            if row.kind == REMINDER:
                with self.engine.connect() as conn:
                    checks = [as_utc(at) for at in conn.scalars(sa.select(followups.c.scheduled_at).where(
                        followups.c.user_id == row.user_id, followups.c.kind == PAUSE_CHECK,
                        followups.c.status.in_((PENDING, PROCESSING))))]
                pause_at = min(checks, default=now + self.timings.pause_check_after - self.timings.reminder_after)
                if pause_at <= now:  # a pass that comes late: the pause is due, a reminder would promise time
                    self._finish(row.id, SKIPPED, now, "the pause check is due already")
                    counts[SKIPPED] += 1
                    continue
                error = send(row.user_id, row.email, "Confirm your job alerts",
                             f"You started job alerts but have not confirmed them. Confirm with "
                             f"`jobsync alerts confirm --user {row.email}` or the token in your digest; "
                             f"unconfirmed alerts pause at {pause_at:%Y-%m-%d %H:%M} UTC.")
                if error:  # a later pass tries again: back to pending once the lease ends
                    self._release(row.id, error)
                    counts["failed"] += 1
                    continue
                if not checks:  # the reminder queues the pause check (start queued one: it stands)
                    with self.engine.begin() as conn:
                        _queue(conn, row.user_id, PAUSE_CHECK, pause_at, now)
            else:
                with self.engine.begin() as conn:
                    conn.execute(users.update().where(users.c.id == row.user_id, users.c.alert_status == UNCONFIRMED)
                                 .values(alert_status=PAUSED))
            self._finish(row.id, PROCESSED, now, None)
            counts[PROCESSED] += 1
        return counts

    def _finish(self, followup_id: int, status: str, now: datetime, error: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(followups.update().where(followups.c.id == followup_id, followups.c.status == PROCESSING)
                         .values(status=status, processed_at=now, claimed_until=None, error=error))

    def _release(self, followup_id: int, error: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(followups.update().where(followups.c.id == followup_id, followups.c.status == PROCESSING)
                         .values(error=error))


def _queue(conn: sa.Connection, user_id: int, kind: str, at: datetime, now: datetime) -> bool:
    """A pending follow-up of this kind for the user, unless one is pending already (the partial unique
    index decides under races); whether one was added."""
    try:
        with conn.begin_nested():
            conn.execute(followups.insert().values(user_id=user_id, kind=kind, scheduled_at=at, status=PENDING,
                                                   created_at=now))
        return True
    except sa.exc.IntegrityError:
        return False


def _followup(row) -> Followup:
    return Followup(id=row.id, user_id=row.user_id, email=row.email, kind=row.kind,
                    scheduled_at=as_utc(row.scheduled_at), status=row.status, created_at=as_utc(row.created_at),
                    processed_at=as_utc(row.processed_at), error=row.error)


def new_confirm_token() -> str:
    """A one-time confirmation token for a digest to carry; it counts once `keep_confirm_token` kept it."""
    return CONFIRM_PREFIX + secrets.token_urlsafe(24)

