"""Retention: what the store keeps, and for how long. Never removed: each board's latest raw snapshot, a
snapshot a running sync reads, the steps of a running sync, and an expired job an unsent notification
still names (with its events)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from jobsync_pipeline.core.status import SyncStatus
from jobsync_pipeline.store.steps import DEFAULT_KEEP_SYNCS, StepStore
from jobsync_pipeline.store.tables import (bad_records, job_events, jobs, notifications, possible_duplicates,
                                           raw_snapshots, syncs)
from jobsync_pipeline.store.time import utcnow

UNSENT = ("pending", "sending", "failed")  # a failed notification may still be retried


@dataclass(frozen=True)
class RetentionPolicy:
    raw_snapshots: timedelta = timedelta(days=14)
    job_events: timedelta = timedelta(days=180)
    bad_records: timedelta = timedelta(days=30)
    step_syncs: int = DEFAULT_KEEP_SYNCS  # completed syncs per board that keep their steps
    expired_jobs: timedelta = timedelta(days=365)


class Retention:
    def __init__(self, engine: sa.Engine, policy: RetentionPolicy = RetentionPolicy()):
        self.engine, self.policy = engine, policy

    def run(self, now: datetime | None = None) -> dict[str, int]:
        """Remove what is past its limit; returns the rows removed, by what they were."""
        now = now or utcnow()
        return {"bad_records": self.old_bad_records(now), "raw_snapshots": self.old_raw_snapshots(now),
                "job_events": self.old_job_events(now), "sync_steps": self.old_steps(),
                "expired_jobs": self.old_expired_jobs(now)}

    def old_bad_records(self, now: datetime) -> int:
        old = sa.select(raw_snapshots.c.id).where(raw_snapshots.c.fetched_at < now - self.policy.bad_records)
        with self.engine.begin() as conn:
            return conn.execute(bad_records.delete().where(bad_records.c.raw_snapshot_id.in_(old))).rowcount

    def old_raw_snapshots(self, now: datetime) -> int:
        """Snapshots past the limit but each board's latest and any a running sync reads, with the bad
        records set aside from them (one transaction)."""
        latest = sa.select(sa.func.max(raw_snapshots.c.id)).group_by(raw_snapshots.c.source, raw_snapshots.c.board)
        in_use = sa.select(syncs.c.raw_snapshot_id).where(syncs.c.status == SyncStatus.RUNNING,
                                                           syncs.c.raw_snapshot_id.is_not(None))
        old = sa.select(raw_snapshots.c.id).where(raw_snapshots.c.fetched_at < now - self.policy.raw_snapshots,
                                                  raw_snapshots.c.id.not_in(latest), raw_snapshots.c.id.not_in(in_use))
        with self.engine.begin() as conn:
            ids = list(conn.scalars(old))
            removed = 0
            for start in range(0, len(ids), 1000):
                chunk = ids[start:start + 1000]
                conn.execute(bad_records.delete().where(bad_records.c.raw_snapshot_id.in_(chunk)))
                removed += conn.execute(raw_snapshots.delete().where(raw_snapshots.c.id.in_(chunk))).rowcount
            return removed

    def old_job_events(self, now: datetime) -> int:
        with self.engine.begin() as conn:
            return conn.execute(job_events.delete().where(job_events.c.at < now - self.policy.job_events)).rowcount

    def old_steps(self) -> int:
        """Step details beyond each board's latest `step_syncs` completed syncs (a running sync keeps its)."""
        return StepStore(self.engine).keep_latest(None, None, self.policy.step_syncs)

    def old_expired_jobs(self, now: datetime) -> int:
        """Jobs expired for longer than the limit, their events and duplicate pairs first, in one
        transaction; a job an unsent notification names stays."""
        named = sa.select(notifications.c.job_id).where(notifications.c.status.in_(UNSENT))
        old = sa.select(jobs.c.id).where(jobs.c.expired_at < now - self.policy.expired_jobs, jobs.c.id.not_in(named))
        with self.engine.begin() as conn:
            ids = list(conn.scalars(old))
            removed = 0
            for start in range(0, len(ids), 1000):
                chunk = ids[start:start + 1000]
                conn.execute(job_events.delete().where(job_events.c.job_id.in_(chunk)))
                conn.execute(possible_duplicates.delete().where(sa.or_(possible_duplicates.c.job_id_a.in_(chunk),
                                                                       possible_duplicates.c.job_id_b.in_(chunk))))
                removed += conn.execute(jobs.delete().where(jobs.c.id.in_(chunk))).rowcount
            return removed
