"""The figures of the catalog's health: per source and board from `syncs`, `boards` and `jobs`, and the
depth and age of the queues (search runs, notifications, follow-ups). Judged by `core/health.py`."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from jobsync_pipeline.core.health import QueueFigures, SourceFigures, error_kind
from jobsync_pipeline.core.status import SYNCABLE, BoardStatus, SyncStatus
from jobsync_pipeline.store.tables import boards, followups, jobs, notifications, search_runs, syncs
from jobsync_pipeline.store.time import as_utc, utcnow

WINDOW = timedelta(days=7)
# The statuses a success rate counts: a late file (stale) or a fetch-only run (partial) is neither.
RATED = (SyncStatus.SUCCESS, SyncStatus.FAILED, SyncStatus.GUARDED, SyncStatus.RETIRED)


class HealthStore:
    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def recent_syncs(self, now: datetime | None = None, window: timedelta = WINDOW) -> pd.DataFrame:
        """The ended syncs that started within the window: source, board, status, duration, found, error."""
        since = (now or utcnow()) - window
        query = sa.select(syncs.c.id, syncs.c.source, syncs.c.board, syncs.c.status, syncs.c.duration_seconds,
                          syncs.c.found, syncs.c.error, syncs.c.started_at).where(
            syncs.c.started_at >= since, syncs.c.status != SyncStatus.RUNNING)
        with self.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).all(), columns=["id", "source", "board", "status", "duration",
                                                                      "found", "error", "started_at"])
        frame["kind"] = [error_kind(e) if s in (SyncStatus.FAILED, SyncStatus.GUARDED, SyncStatus.RETIRED) else None
                         for s, e in zip(frame["status"], frame["error"])]
        return frame

    def sources(self, intervals: Mapping[str, timedelta], now: datetime | None = None,
                window: timedelta = WINDOW, recent: pd.DataFrame | None = None) -> list[SourceFigures]:
        """Each source's figures (`intervals`: every source to report, with its sync interval); `recent`:
        the window's `recent_syncs` when the caller has read them already."""
        now = now or utcnow()
        recent = self.recent_syncs(now, window) if recent is None else recent
        with self.engine.connect() as conn:
            board_counts = conn.execute(sa.select(boards.c.source, boards.c.status, sa.func.count())
                                        .group_by(boards.c.source, boards.c.status)).all()
            last_success = dict(conn.execute(sa.select(syncs.c.source, sa.func.max(syncs.c.finished_at))
                                             .where(syncs.c.status == SyncStatus.SUCCESS).group_by(syncs.c.source)).all())
            last_sync = dict(conn.execute(sa.select(syncs.c.source, sa.func.max(syncs.c.finished_at))
                                          .where(syncs.c.status != SyncStatus.RUNNING).group_by(syncs.c.source)).all())
            latest = (sa.select(sa.func.max(syncs.c.id).label("id")).where(syncs.c.status == SyncStatus.SUCCESS)
                      .group_by(syncs.c.source, syncs.c.board).subquery())
            found = dict(conn.execute(sa.select(syncs.c.source, sa.func.sum(syncs.c.found))
                                      .join(latest, latest.c.id == syncs.c.id).group_by(syncs.c.source)).all())
            open_jobs = {source: (count, newest) for source, count, newest in conn.execute(
                sa.select(jobs.c.source, sa.func.count(), sa.func.max(jobs.c.first_seen_at))
                .where(jobs.c.expired_at.is_(None)).group_by(jobs.c.source))}
        figures = []
        for source, interval in intervals.items():
            mine = recent[recent["source"] == source]
            rated = mine[mine["status"].isin(RATED)]
            statuses = {status: count for src, status, count in board_counts if src == source}
            durations = mine["duration"].dropna()
            count, newest = open_jobs.get(source, (0, None))
            figures.append(SourceFigures(
                source=source, interval=interval,
                boards=sum(c for s, c in statuses.items() if s in SYNCABLE),
                boards_failing=statuses.get(BoardStatus.FAILING, 0), boards_retired=statuses.get(BoardStatus.RETIRED, 0),
                syncs=len(rated), successes=int((rated["status"] == SyncStatus.SUCCESS).sum()),
                last_success=as_utc(last_success.get(source)), last_sync=as_utc(last_sync.get(source)),
                duration_median=_round(durations.median()) if len(durations) else None,
                duration_p95=_round(durations.quantile(0.95)) if len(durations) else None,
                jobs_found=int(found.get(source) or 0), active_jobs=int(count), newest_posting=as_utc(newest),
                errors={str(k): int(v) for k, v in mine["kind"].dropna().value_counts().items()}))
        return figures

    def worst_boards(self, now: datetime | None = None, window: timedelta = WINDOW, limit: int = 20,
                     recent: pd.DataFrame | None = None) -> pd.DataFrame:
        """The boards with the most failed syncs in the window, lowest success rate first, with their last
        error."""
        recent = self.recent_syncs(now, window) if recent is None else recent
        rated = recent[recent["status"].isin(RATED)].sort_values("id")
        if rated.empty:
            return pd.DataFrame(columns=["source", "board", "syncs", "failed", "success_rate", "last_status",
                                         "last_error"])
        grouped = rated.groupby(["source", "board"])
        table = pd.DataFrame({
            "syncs": grouped.size(),
            "failed": grouped["status"].apply(lambda s: int((s != SyncStatus.SUCCESS).sum())),
            "last_status": grouped["status"].last(),
            "last_error": grouped["error"].last(),
        }).reset_index()
        table["success_rate"] = ((table["syncs"] - table["failed"]) / table["syncs"]).round(3)
        table = table[table["failed"] > 0].sort_values(["success_rate", "failed"], ascending=[True, False])
        return table[["source", "board", "syncs", "failed", "success_rate", "last_status", "last_error"]].head(limit)

    def held_by_guard(self) -> list[tuple[str, str, str]]:
        """The boards whose latest ended sync the expiry guard held back: (source, board, reason)."""
        latest = (sa.select(sa.func.max(syncs.c.id).label("id")).where(syncs.c.status != SyncStatus.RUNNING)
                  .group_by(syncs.c.source, syncs.c.board).subquery())
        with self.engine.connect() as conn:
            return [(r.source, r.board, r.error or "no reason recorded") for r in conn.execute(
                sa.select(syncs.c.source, syncs.c.board, syncs.c.error).join(latest, latest.c.id == syncs.c.id)
                .where(syncs.c.status == SyncStatus.GUARDED).order_by(syncs.c.source, syncs.c.board))]

    def queues(self, now: datetime | None = None) -> list[QueueFigures]:
        """Pending search runs, and the notifications and follow-ups already due."""
        now = now or utcnow()
        with self.engine.connect() as conn:
            def depth(name: str, since: sa.Column, *where) -> QueueFigures:
                count, oldest = conn.execute(sa.select(sa.func.count(), sa.func.min(since)).where(*where)).one()
                return QueueFigures(name, int(count), as_utc(oldest))

            return [
                depth("search_runs", search_runs.c.created_at, search_runs.c.status == "pending"),
                depth("notifications", notifications.c.scheduled_for,
                      notifications.c.status == "pending", notifications.c.scheduled_for <= now),
                depth("followups", followups.c.scheduled_at, followups.c.status == "pending",
                      followups.c.scheduled_at <= now),
            ]


def _round(value: float) -> float:
    return round(float(value), 3)
