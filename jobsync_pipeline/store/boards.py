"""The board registry: which boards each source syncs, their lifecycle, and discovery's candidates.

A board moves `active → failing → retired`: a 404 makes it failing, N consecutive 404s retire it
(its jobs expire once, with reason `board_retired`, and a `syncs` row says why), any good answer
makes it active again. Retired boards are re-probed by discovery later.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from jobsync_pipeline.core.normalize import match_text
from jobsync_pipeline.core.status import DIFF_COUNTS, SYNCABLE, BoardStatus, SyncStatus
from jobsync_pipeline.store.steps import StepStore
from jobsync_pipeline.store.tables import boards, job_events, jobs, potential_companies, syncs
from jobsync_pipeline.store.time import as_utc, utcnow

COUNTS = (*DIFF_COUNTS, "duplicates")
# jobs.expired_reason of a board's jobs when the board goes: 404s in a row, or an operator
BOARD_RETIRED, BOARD_REMOVED = "board_retired", "board_removed"


@dataclass(frozen=True)
class BoardInfo:
    source: str
    board: str
    status: str
    origin: str | None
    added_at: datetime
    display_name: str | None
    last_synced_at: datetime | None
    status_reason: str | None
    last_sync_status: str | None
    last_sync_counts: dict[str, int] | None
    last_sync_error: str | None


@dataclass(frozen=True)
class Candidate:
    id: int
    name: str
    origin: str


class BoardRegistry:
    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def add(self, source: str, names: Iterable[str], origin: str,
            display_names: Mapping[str, str] | None = None) -> list[str]:
        """Register boards (a retired one comes back active); returns the ones that are new or revived.

        `display_names`: the company a board belongs to, by board, as people write it ("Idealist
        Consulting" for the Lever site `idealistconsulting`); set for new boards and for known ones
        that have none, never replacing one already set."""
        names = list(dict.fromkeys(names))
        if not names:
            return []
        display_names = {n: d.strip() for n, d in (display_names or {}).items() if d and d.strip()}
        now = utcnow()
        with self.engine.begin() as conn:
            existing = dict(conn.execute(sa.select(boards.c.board, boards.c.status).where(
                boards.c.source == source, boards.c.board.in_(names))).all())
            fresh = [n for n in names if n not in existing]
            revived = [n for n in names if existing.get(n) == BoardStatus.RETIRED]
            if fresh:
                conn.execute(boards.insert(), [{"source": source, "board": n, "added_at": now, "origin": origin,
                                                "status": BoardStatus.ACTIVE, "status_changed_at": now,
                                                "display_name": display_names.get(n)} for n in fresh])
            for name, display in display_names.items():
                if name in existing:
                    conn.execute(boards.update().where(boards.c.source == source, boards.c.board == name,
                                                       boards.c.display_name.is_(None)).values(display_name=display))
            if revived:
                conn.execute(boards.update().where(boards.c.source == source, boards.c.board.in_(revived)).values(
                    status=BoardStatus.ACTIVE, consecutive_not_found=0, status_changed_at=now,
                    status_reason=f"added again ({origin})"))
        return fresh + revived

    def display_name(self, source: str, board: str) -> str | None:
        """The company name the registry knows the board by, or None."""
        return self.display_names(source, [board]).get(board)

    def display_names(self, source: str, names: Iterable[str]) -> dict[str, str]:
        """The company names the registry knows, by board, for those of `names` that have one."""
        names = list(names)
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(names), 1000):  # bounded IN lists, whatever the backfill's size
                found.update(conn.execute(sa.select(boards.c.board, boards.c.display_name).where(
                    boards.c.source == source, boards.c.board.in_(names[start:start + 1000]),
                    boards.c.display_name.is_not(None))).all())
        return found

    def syncable(self, source: str) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.scalars(sa.select(boards.c.board).where(
                boards.c.source == source, boards.c.status.in_(SYNCABLE)).order_by(boards.c.added_at, boards.c.board)))

    def stalest(self, source: str, limit: int) -> list[str]:
        """Syncable boards, least recently attempted first (never attempted before all others)."""
        with self.engine.connect() as conn:
            return list(conn.scalars(sa.select(boards.c.board).where(
                boards.c.source == source, boards.c.status.in_(SYNCABLE)).order_by(
                boards.c.last_synced_at.is_not(None), boards.c.last_synced_at, boards.c.added_at,
                boards.c.board).limit(limit)))

    def attempted(self, source: str, names: Iterable[str], at: datetime | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(boards.update().where(boards.c.source == source, boards.c.board.in_(list(names)))
                         .values(last_synced_at=at or utcnow()))

    def answered(self, source: str, *names: str) -> None:
        """The boards answered: whatever they were, they are active again."""
        names_list = list(names)
        if not names_list:
            return
        with self.engine.begin() as conn:
            for start in range(0, len(names_list), 1000):
                conn.execute(boards.update().where(boards.c.source == source, boards.c.board.in_(names_list[start:start + 1000]),
                                                   boards.c.status != BoardStatus.ACTIVE).values(
                    status=BoardStatus.ACTIVE, consecutive_not_found=0, status_changed_at=utcnow(), status_reason=None))

    def not_found(self, source: str, board: str, error: str, *, retire_after: int,
                  run_id: str | None = None, sync_id: int | None = None) -> tuple[str, int]:
        """Count a 404; returns the board's status after it and how many jobs a retirement expired.
        `sync_id`: the board's sync already started in this run, which a retirement ends."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(boards.c.status, boards.c.consecutive_not_found).where(
                boards.c.source == source, boards.c.board == board)).first()
            misses = (row.consecutive_not_found if row else 0) + 1
            if row is not None and row.status == BoardStatus.RETIRED:
                # already retired (its jobs expired once): a 404 from a hand-run partition changes nothing
                conn.execute(boards.update().where(boards.c.source == source, boards.c.board == board).values(
                    consecutive_not_found=misses))
                return BoardStatus.RETIRED, 0
            if misses < retire_after:
                conn.execute(boards.update().where(boards.c.source == source, boards.c.board == board).values(
                    status=BoardStatus.FAILING, consecutive_not_found=misses, status_changed_at=utcnow(),
                    status_reason=f"{misses} consecutive not-found answers: {error}"))
                return BoardStatus.FAILING, 0
            reason = f"retired after {misses} consecutive not-found answers: {error}"
            expired = self._retire(conn, source, board, reason, run_id=run_id, misses=misses, sync_id=sync_id)
            return BoardStatus.RETIRED, expired

    def status(self, source: str, board: str) -> str | None:
        """The board's lifecycle status, or None for a board the registry does not know."""
        with self.engine.connect() as conn:
            return conn.scalar(sa.select(boards.c.status).where(boards.c.source == source, boards.c.board == board))

    def remove(self, source: str, board: str, reason: str, *, run_id: str | None = None) -> int:
        """Retire a board on purpose (an operator); its jobs expire once, as `board_removed`. Returns how many."""
        with self.engine.begin() as conn:
            return self._retire(conn, source, board, reason, run_id=run_id, expired_reason=BOARD_REMOVED)

    @staticmethod
    def _retire(conn: sa.Connection, source: str, board: str, reason: str, *, run_id: str | None,
                misses: int | None = None, expired_reason: str = BOARD_RETIRED, sync_id: int | None = None) -> int:
        now = utcnow()
        where_active = (jobs.c.source == source, jobs.c.board == board, jobs.c.expired_at.is_(None))
        expiring = conn.scalar(sa.select(sa.func.count()).select_from(jobs).where(*where_active))
        ended = dict(status=SyncStatus.RETIRED, finished_at=now, error=reason,
                     **{**{c: 0 for c in COUNTS}, "expired": expiring})
        if sync_id is None:
            sync_id = conn.execute(syncs.insert().values(
                source=source, board=board, run_id=run_id, started_at=now, duration_seconds=0.0, **ended)
            ).inserted_primary_key[0]
        else:
            conn.execute(syncs.update().where(syncs.c.id == sync_id).values(**ended))
            StepStore.end(conn, sync_id, reason)
        conn.execute(job_events.insert().from_select(
            ["job_id", "sync_id", "kind", "at"],
            sa.select(jobs.c.id, sa.literal(sync_id, sa.BigInteger), sa.literal("expired"),
                      sa.literal(now, jobs.c.updated_at.type)).where(*where_active)))
        conn.execute(jobs.update().where(*where_active).values(
            expired_at=now, expired_reason=expired_reason, updated_at=now))
        values = dict(status=BoardStatus.RETIRED, status_changed_at=now, status_reason=reason)
        if misses is not None:
            values["consecutive_not_found"] = misses
        conn.execute(boards.update().where(boards.c.source == source, boards.c.board == board).values(**values))
        return expiring

    def retired_due(self, source: str, older_than: timedelta, limit: int) -> list[str]:
        """Retired boards whose retirement, and last re-probe (`attempted`), are old enough to ask again.

        A re-probe that finds the board still gone calls `attempted`, so the same oldest boards are not
        asked every tick while the others wait forever.
        """
        cutoff = utcnow() - older_than
        with self.engine.connect() as conn:
            return list(conn.scalars(sa.select(boards.c.board).where(
                boards.c.source == source, boards.c.status == BoardStatus.RETIRED, boards.c.status_changed_at < cutoff,
                sa.or_(boards.c.last_synced_at.is_(None), boards.c.last_synced_at < cutoff)).order_by(
                boards.c.last_synced_at.is_not(None), boards.c.last_synced_at, boards.c.status_changed_at,
                boards.c.board).limit(limit)))

    def describe(self, source: str | None = None, *, retired: bool = True) -> list[BoardInfo]:
        """Every board with its last sync (the `boards list` view); `retired=False` leaves retired ones out."""
        last = (sa.select(syncs.c.source, syncs.c.board, sa.func.max(syncs.c.id).label("id"))
                .group_by(syncs.c.source, syncs.c.board).subquery())
        query = (sa.select(boards, syncs.c.status.label("sync_status"), syncs.c.error.label("sync_error"),
                           *(syncs.c[c].label(f"sync_{c}") for c in COUNTS))
                 .select_from(boards.outerjoin(last, sa.and_(last.c.source == boards.c.source,
                                                             last.c.board == boards.c.board))
                              .outerjoin(syncs, syncs.c.id == last.c.id))
                 .order_by(boards.c.source, boards.c.board))
        if source:
            query = query.where(boards.c.source == source)
        if not retired:
            query = query.where(boards.c.status != BoardStatus.RETIRED)
        with self.engine.connect() as conn:
            return [BoardInfo(
                source=r.source, board=r.board, status=r.status, origin=r.origin, added_at=as_utc(r.added_at),
                display_name=r.display_name, last_synced_at=as_utc(r.last_synced_at), status_reason=r.status_reason,
                last_sync_status=r.sync_status, last_sync_error=r.sync_error,
                last_sync_counts=None if r.sync_status is None else {c: getattr(r, f"sync_{c}") for c in COUNTS})
                for r in conn.execute(query)]

    def add_candidates(self, names: Iterable[str], origin: str) -> int:
        """Companies to probe for public boards; a name already known is not added twice."""
        keyed: dict[str, str] = {}
        for name in names:
            if name and match_text(name):
                keyed.setdefault(match_text(name)[:255], name.strip())  # the first spelling is kept
        if not keyed:
            return 0
        with self.engine.begin() as conn:
            known = set(conn.scalars(sa.select(potential_companies.c.name_key).where(
                potential_companies.c.name_key.in_(list(keyed)))))
            fresh = [{"name": name, "name_key": key, "origin": origin, "added_at": utcnow()}
                     for key, name in keyed.items() if key not in known]
            if fresh:
                conn.execute(potential_companies.insert(), fresh)
            return len(fresh)

    def companies_in_postings(self, sources: Iterable[str]) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.scalars(sa.select(jobs.c.company).distinct().where(
                jobs.c.source.in_(list(sources)), jobs.c.company != "")))

    def due_candidates(self, limit: int, reprobe_after: timedelta) -> list[Candidate]:
        """Never-probed candidates first, then those not found longest ago (boards open over time)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(potential_companies).where(sa.or_(
                potential_companies.c.last_probed_at.is_(None),
                sa.and_(potential_companies.c.probe_status != "found",
                        potential_companies.c.last_probed_at < utcnow() - reprobe_after)))
                .order_by(potential_companies.c.last_probed_at.is_not(None), potential_companies.c.last_probed_at,
                          potential_companies.c.id).limit(limit))
            return [Candidate(id=r.id, name=r.name, origin=r.origin) for r in rows]

    def record_probe(self, candidate_id: int, status: str, result: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(potential_companies.update().where(potential_companies.c.id == candidate_id).values(
                last_probed_at=utcnow(), probe_status=status, probe_result=result))
