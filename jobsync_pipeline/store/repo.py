"""The store's reads and writes: raw snapshots, syncs and bad records, each atomic write in one
transaction. The snapshot apply is `store.apply`, engines and migrations `store.engine`."""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

import pandas as pd
import sqlalchemy as sa

from jobsync_pipeline.core.diff import SnapshotDiff
from jobsync_pipeline.core.expiry_guard import GuardDecision
from jobsync_pipeline.core.models import BadRecord, KnownRecords, RawPayload
from jobsync_pipeline.core.status import SYNC_COUNTS, SyncStatus
from jobsync_pipeline.store.apply import (Recognised, apply_snapshot, board_transaction, has_other_sources,
                                          try_advisory_locks)
from jobsync_pipeline.store.bulk import read_columns
from jobsync_pipeline.store.boards import BoardRegistry
from jobsync_pipeline.store.alerts import AlertStore, FollowupTimings
from jobsync_pipeline.store.notifications import MAX_RETRIES, NotificationStore
from jobsync_pipeline.store.searches import SearchStore
from jobsync_pipeline.store.sites import SiteStore
from jobsync_pipeline.store.steps import StepStore
from jobsync_pipeline.store.engine import check_schema, engine_for, upgrade
from jobsync_pipeline.store.tables import bad_records, boards, jobs, raw_snapshots, syncs
from jobsync_pipeline.store.tables import boards as boards_table
from jobsync_pipeline.store.time import as_utc, to_utc, utcnow


RAW_LOCKS = "jobsync-raw"  # the advisory lock namespace of boards' archives
_REVALIDATE = raw_snapshots.update().where(raw_snapshots.c.id == sa.bindparam("snapshot_id")).values(
    etag=sa.bindparam("new_etag"), last_modified=sa.bindparam("new_last_modified"))


@dataclass
class SyncResult:
    """One board's sync as the `syncs` table records it."""

    source: str
    board: str
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    expiry_guard: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    id: int | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class RawSnapshot:
    id: int
    source: str
    board: str
    location: str
    fetched_at: datetime
    etag: str | None
    last_modified: str | None
    sha256: str
    body: bytes

    def payload(self) -> RawPayload:
        return RawPayload(board=self.board, location=self.location, body=self.body,
                          fetched_at=self.fetched_at, etag=self.etag, last_modified=self.last_modified)


class Store:
    """The jobsync store on one database URL (SQLite file by default, PostgreSQL in production)."""

    def __init__(self, url: str, *, check: bool = True):
        """`check`: raise SchemaOutOfDate (naming `jobsync db upgrade`) unless the schema is current."""
        self.url = url
        self.engine = engine_for(url)
        if check:
            check_schema(url)

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (idempotent): what `jobsync db upgrade` runs."""
        upgrade(self.url)

    @property
    def boards(self) -> BoardRegistry:
        return BoardRegistry(self.engine)

    @property
    def steps(self) -> StepStore:
        return StepStore(self.engine)

    @property
    def sites(self) -> SiteStore:
        return SiteStore(self.engine)

    @property
    def searches(self) -> SearchStore:
        return SearchStore(self.engine)

    def alerts(self, timings: FollowupTimings | None = None) -> AlertStore:
        return AlertStore(self.engine, timings)

    def notifications(self, max_retries: int = MAX_RETRIES, lease: timedelta = timedelta(minutes=10)) -> NotificationStore:
        return NotificationStore(self.engine, max_retries=max_retries, lease=lease)

    def guard_histories(self, source: str, boards: list[str], limit: int = 5
                        ) -> dict[str, tuple[list[int], datetime | None]]:
        """The expiry guard's history of each of `boards`, in two queries: the found counts of its latest
        `limit` successful syncs, newest first, and when its current run of held empty answers began (None:
        its last sync held none; the run is the held-empty syncs since its last applied one, and a stale or
        failed sync in between neither starts nor ends it)."""
        found: dict[str, tuple[list[int], datetime | None]] = {board: ([], None) for board in boards}
        with self.engine.connect() as conn:
            ranked = sa.select(syncs.c.board, syncs.c.found, sa.func.row_number().over(
                partition_by=syncs.c.board, order_by=syncs.c.id.desc()).label("newest")).where(
                syncs.c.source == source, syncs.c.board.in_(boards), syncs.c.status == SyncStatus.SUCCESS).subquery()
            for row in conn.execute(sa.select(ranked.c.board, ranked.c.found).where(ranked.c.newest <= limit)
                                    .order_by(ranked.c.board, ranked.c.newest)):
                found[row.board][0].append(row.found)
            applied = sa.select(syncs.c.board, sa.func.max(syncs.c.id).label("last")).where(
                syncs.c.source == source, syncs.c.board.in_(boards), syncs.c.status == SyncStatus.SUCCESS
            ).group_by(syncs.c.board).subquery()
            for row in conn.execute(sa.select(syncs.c.board, sa.func.min(syncs.c.started_at).label("since"))
                                    .select_from(syncs.outerjoin(applied, applied.c.board == syncs.c.board))
                                    .where(syncs.c.source == source, syncs.c.board.in_(boards),
                                           syncs.c.expiry_guard == GuardDecision.EMPTY_HELD,
                                           syncs.c.id > sa.func.coalesce(applied.c.last, 0))
                                    .group_by(syncs.c.board)):
                found[row.board] = (found[row.board][0], as_utc(row.since))
        return found

    def ensure_boards(self, source: str, names: Iterable[str]) -> None:
        names = list(dict.fromkeys(names))
        if not names:
            return
        with self.engine.begin() as conn:
            known = set(conn.scalars(sa.select(boards.c.board).where(boards.c.source == source)))
            fresh = [{"source": source, "board": n, "added_at": utcnow()} for n in names if n not in known]
            if fresh:
                conn.execute(boards.insert(), fresh)

    def count_known(self, source: str, board: str, external_ids: Iterable[str]) -> int:
        """How many of `external_ids` the board already has in the catalog (open or expired)."""
        ids, known = list(external_ids), 0
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 1000):
                known += conn.scalar(sa.select(sa.func.count()).select_from(jobs).where(
                    jobs.c.source == source, jobs.c.board == board, jobs.c.external_id.in_(ids[start:start + 1000])))
        return known

    def known_records(self, source: str, board: str) -> KnownRecords:
        """The board's open jobs by the digest of the record each was last written from, for a collector
        to recognise unchanged records."""
        query = sa.select(jobs.c.external_id, jobs.c.record_hash, jobs.c.content_hash).where(
            jobs.c.source == source, jobs.c.board == board, jobs.c.expired_at.is_(None), jobs.c.record_hash.is_not(None))
        with self.engine.connect() as conn:
            ids, digests, hashes = read_columns(conn, query, 0, integers=2)
        return KnownRecords.of(digests, ids, hashes)

    def board_names(self, source: str) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.scalars(sa.select(boards.c.board).where(boards.c.source == source)
                                     .order_by(boards.c.board)))

    def last_snapshot_at(self, source: str, board: str) -> datetime | None:
        return self.last_snapshots(source, [board]).get(board)

    def archive_raw(self, source: str, payload: RawPayload) -> tuple[int, bool]:
        """Archive a fetched payload; an identical payload to the newest one is not stored twice.

        Returns the snapshot's id and whether it was already archived. Archives of one board are
        exclusive (`board_transaction`): two fetches of it at once store one payload, not two.
        """
        with board_transaction(self.engine, source, payload.board, namespace=RAW_LOCKS) as conn:
            return self._archive(conn, source, [payload])[0]

    def archive_raws(self, source: str, payloads: list[RawPayload]) -> list[tuple[int, bool]]:
        """`archive_raw` of several boards' payloads (one each), in one transaction: a batch of small boards
        costs a few statements and one commit instead of a transaction per board (on PostgreSQL five round
        trips a board). All of it is written or none. A board another archive holds is not waited for
        inside the batch: the batch then archives board by board, each waiting its turn."""
        if len(payloads) <= 1 or len({p.board for p in payloads}) < len(payloads):
            return [self.archive_raw(source, payload) for payload in payloads]
        with self.engine.connect() as conn:
            with conn.begin():
                if conn.dialect.name != "postgresql" or try_advisory_locks(
                        conn, [f"{RAW_LOCKS}:{source}:{p.board}" for p in payloads]):
                    return self._archive(conn, source, payloads)
        return [self.archive_raw(source, payload) for payload in payloads]

    @staticmethod
    def _archive(conn: sa.Connection, source: str, payloads: list[RawPayload]) -> list[tuple[int, bool]]:
        """Archive payloads of distinct boards whose archives this transaction holds."""
        digests = [hashlib.sha256(p.body).hexdigest() for p in payloads]
        latest = {row.board: row for row in conn.execute(
            sa.select(raw_snapshots.c.id, raw_snapshots.c.board, raw_snapshots.c.sha256, raw_snapshots.c.etag,
                      raw_snapshots.c.last_modified).where(
                raw_snapshots.c.id.in_(_newest_raw_ids(source, [p.board for p in payloads]))))}
        results: list[tuple[int, bool] | None] = [None] * len(payloads)
        fresh, revalidated = [], []
        for i, (payload, digest) in enumerate(zip(payloads, digests)):
            row = latest.get(payload.board)
            if row is None or row.sha256 != digest:
                fresh.append(i)
                continue
            results[i] = (row.id, True)
            if (row.etag, row.last_modified) != (payload.etag, payload.last_modified):
                # the same bytes under new validators: keep them, or every later GET is a full 200
                revalidated.append({"snapshot_id": row.id, "new_etag": payload.etag,
                                    "new_last_modified": payload.last_modified})
        if revalidated:
            conn.execute(_REVALIDATE, revalidated)
        if fresh:
            rows = [dict(source=source, board=payloads[i].board, location=payloads[i].location,
                         fetched_at=to_utc(payloads[i].fetched_at), etag=payloads[i].etag,
                         last_modified=payloads[i].last_modified, sha256=digests[i],
                         size_bytes=len(payloads[i].body), payload=payloads[i].body) for i in fresh]
            ids = conn.scalars(raw_snapshots.insert().returning(raw_snapshots.c.id, sort_by_parameter_order=True),
                               rows).all()
            for i, new_id in zip(fresh, ids):
                results[i] = (new_id, False)
        return results  # type: ignore[return-value]

    def latest_raw(self, source: str, board: str) -> RawSnapshot | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(raw_snapshots).where(raw_snapshots.c.source == source,
                                               raw_snapshots.c.board == board)
                .order_by(raw_snapshots.c.id.desc()).limit(1)).first()
        return None if row is None else _raw_snapshot(row)

    def latest_raws(self, source: str, boards: list[str], budget_bytes: int) -> tuple[dict[str, RawSnapshot], list[str]]:
        """The newest archived payload of `boards`, in their order, as long as their payloads added up fit
        in `budget_bytes` (the first board's always does), in two queries: the payloads by board (a board
        never archived has none), and the boards they cover (all of them, or those before the budget ran out)."""
        if not boards:
            return {}, []
        with self.engine.connect() as conn:
            sizes = {row.board: (row.id, row.size_bytes or 0) for row in conn.execute(sa.select(
                raw_snapshots.c.board, raw_snapshots.c.id, raw_snapshots.c.size_bytes).where(
                raw_snapshots.c.id.in_(_newest_raw_ids(source, boards))))}
            covered, chosen, used = [], [], 0
            for board in boards:
                if board in sizes:
                    used += sizes[board][1]
                    if covered and used > budget_bytes:
                        break
                    chosen.append(sizes[board][0])
                covered.append(board)
            rows = conn.execute(sa.select(raw_snapshots).where(raw_snapshots.c.id.in_(chosen))).all() if chosen else []
        return {row.board: _raw_snapshot(row) for row in rows}, covered

    def last_snapshots(self, source: str, boards: list[str]) -> dict[str, datetime | None]:
        """`last_snapshot_at` of each of `boards`."""
        with self.engine.connect() as conn:
            return {row.board: as_utc(row.last_snapshot_at) for row in conn.execute(
                sa.select(boards_table.c.board, boards_table.c.last_snapshot_at).where(
                    boards_table.c.source == source, boards_table.c.board.in_(boards)))}

    def keep_bad_records_of(self, source: str, kept: dict[int, tuple[str, list[BadRecord]]]) -> None:
        """Set the refused records of many snapshots aside (raw snapshot id -> board, records), replacing any
        from an earlier parse of them, in one transaction."""
        if not kept:
            return
        ids = list(kept)
        with self.engine.begin() as conn:
            for start in range(0, len(ids), 1000):
                conn.execute(bad_records.delete().where(bad_records.c.raw_snapshot_id.in_(ids[start:start + 1000])))
            rows = [{"raw_snapshot_id": raw_id, "source": source, "board": board, "position": r.position,
                     "external_id": r.external_id, "reason": r.reason, "record": r.record}
                    for raw_id, (board, records) in kept.items() for r in records]
            if rows:
                conn.execute(bad_records.insert(), rows)

    def keep_bad_records(self, raw_snapshot_id: int, source: str, board: str,
                         records: list[BadRecord]) -> None:
        """Set a snapshot's refused records aside (replacing any from an earlier parse of it)."""
        self.keep_bad_records_of(source, {raw_snapshot_id: (board, records)})

    def bad_records(self, source: str, board: str) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                sa.select(bad_records).where(bad_records.c.source == source, bad_records.c.board == board)
                .order_by(bad_records.c.id))]

    def start_sync(self, source: str, board: str, *, run_id: str | None, started_at: datetime | None = None,
                   raw_snapshot_id: int | None = None) -> int:
        with self.engine.begin() as conn:
            return conn.execute(syncs.insert().values(
                source=source, board=board, run_id=run_id, status=SyncStatus.RUNNING,
                started_at=to_utc(started_at) or utcnow(), raw_snapshot_id=raw_snapshot_id,
                **{c: 0 for c in SYNC_COUNTS})).inserted_primary_key[0]

    def finish_sync(self, sync_id: int, status: str, *, counts: dict[str, int] | None = None,
                    error: str | None = None, snapshot_at: datetime | None = None,
                    expiry_guard: str | None = None, raw_snapshot_id: int | None = None,
                    conn: sa.Connection | None = None) -> None:
        """End a sync. One that did not succeed ends its steps too: one still running fails with `error`,
        those never reached are skipped (a successful sync's steps are ended by the lane, which goes on
        after the apply)."""
        if conn is None:
            with self.engine.begin() as own:
                return self.finish_sync(sync_id, status, counts=counts, error=error, snapshot_at=snapshot_at,
                                        expiry_guard=expiry_guard, raw_snapshot_id=raw_snapshot_id, conn=own)
        values = {"status": status, "error": error, "snapshot_at": to_utc(snapshot_at), "expiry_guard": expiry_guard,
                  **({"raw_snapshot_id": raw_snapshot_id} if raw_snapshot_id is not None else {}),
                  **{c: v for c, v in (counts or {}).items() if c in SYNC_COUNTS}}
        conn.execute(_finish_statement(conn.dialect.name, tuple(values)),
                     {"ended_sync": sync_id, "finished": utcnow(), **{f"set_{c}": v for c, v in values.items()}})
        if status != SyncStatus.SUCCESS:
            StepStore.end(conn, sync_id, error)

    def record_sync(self, source: str, board: str, status: str, *, run_id: str | None,
                    counts: dict[str, int] | None = None, error: str | None = None,
                    started_at: datetime | None = None, raw_snapshot_id: int | None = None,
                    snapshot_at: datetime | None = None) -> int:
        """A sync that ended before its diff (refused file, stale snapshot): one row, in one go."""
        sync_id = self.start_sync(source, board, run_id=run_id, started_at=started_at,
                                  raw_snapshot_id=raw_snapshot_id)
        self.finish_sync(sync_id, status, counts=counts, error=error, snapshot_at=snapshot_at)
        return sync_id

    def interrupt_syncs(self, run_id: str, reason: str) -> int:
        """End the run's syncs still `running` as failed, `interrupted: reason` (its process is gone)."""
        with self.engine.begin() as conn:
            running = list(conn.scalars(sa.select(syncs.c.id).where(syncs.c.run_id == run_id,
                                                                     syncs.c.status == SyncStatus.RUNNING)))
            for sync_id in running:
                self.finish_sync(sync_id, SyncStatus.FAILED, error=f"interrupted: {reason}", conn=conn)
            return len(running)

    def previous_syncs(self, source: str, boards: list[str], run_id: str) -> dict[str, SyncResult]:
        """Each board's latest ended sync before this run (boards never synced are missing), for a run's
        boards in a few queries."""
        found: dict[str, SyncResult] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(boards), 500):
                latest = sa.select(sa.func.max(syncs.c.id)).where(
                    syncs.c.source == source, syncs.c.board.in_(boards[start:start + 500]),
                    sa.or_(syncs.c.run_id.is_(None), syncs.c.run_id != run_id),
                    syncs.c.status != SyncStatus.RUNNING).group_by(syncs.c.board)
                for row in conn.execute(sa.select(syncs).where(syncs.c.id.in_(latest))):
                    found[row.board] = _sync_result(row)
        return found

    def syncs_for_run(self, run_id: str, source: str | None = None) -> list[SyncResult]:
        query = sa.select(syncs).where(syncs.c.run_id == run_id).order_by(syncs.c.id)
        if source:
            query = query.where(syncs.c.source == source)
        with self.engine.connect() as conn:
            return [_sync_result(row) for row in conn.execute(query)]

    def sync_result(self, sync_id: int) -> SyncResult:
        with self.engine.connect() as conn:
            return _sync_result(conn.execute(sa.select(syncs).where(syncs.c.id == sync_id)).one())

    def sync_results(self, sync_ids: list[int]) -> dict[int, SyncResult]:
        found: dict[int, SyncResult] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(sync_ids), 1000):
                for row in conn.execute(sa.select(syncs).where(syncs.c.id.in_(sync_ids[start:start + 1000]))):
                    found[row.id] = _sync_result(row)
        return found

    def sync_history(self, source: str | None = None, board: str | None = None, limit: int = 50) -> list[SyncResult]:
        """Syncs newest first, of a source and a board when given."""
        query = sa.select(syncs).order_by(syncs.c.id.desc()).limit(limit)
        if source:
            query = query.where(syncs.c.source == source)
        if board:
            query = query.where(syncs.c.board == board)
        with self.engine.connect() as conn:
            return [_sync_result(row) for row in conn.execute(query)]

    def find_sync(self, sync_id: int) -> SyncResult | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(syncs).where(syncs.c.id == sync_id)).first()
        return None if row is None else _sync_result(row)

    def latest_syncs(self, source: str, board: str, limit: int = 10) -> list[SyncResult]:
        with self.engine.connect() as conn:
            return [_sync_result(row) for row in conn.execute(
                sa.select(syncs).where(syncs.c.source == source, syncs.c.board == board)
                .order_by(syncs.c.id.desc()).limit(limit))]

    def has_other_sources(self, source: str) -> bool:
        """Whether any other source has boards (cross-source duplicates are looked for only then)."""
        with self.engine.connect() as conn:
            return has_other_sources(conn, source)

    def apply_snapshot(self, source: str, board: str,
                       chunks: Iterable[pd.DataFrame] | Callable[[KnownRecords], Recognised], *,
                       sync_id: int, **options) -> SnapshotDiff:
        """Diff a snapshot against the board's jobs and apply it in one transaction (`store.apply`)."""
        return apply_snapshot(self, source, board, chunks, sync_id=sync_id, **options)


def _newest_raw_ids(source: str, boards: list[str]) -> sa.Select:
    """The id of each of `boards`' newest archived payload (a board never archived has none)."""
    return (sa.select(sa.func.max(raw_snapshots.c.id))
            .where(raw_snapshots.c.source == source, raw_snapshots.c.board.in_(boards))
            .group_by(raw_snapshots.c.board))


def _raw_snapshot(row) -> RawSnapshot:
    return RawSnapshot(id=row.id, source=row.source, board=row.board, location=row.location,
                       fetched_at=as_utc(row.fetched_at), etag=row.etag, last_modified=row.last_modified,
                       sha256=row.sha256, body=bytes(row.payload))


def _sync_result(row) -> SyncResult:
    return SyncResult(source=row.source, board=row.board, status=row.status,
                      counts={c: getattr(row, c) for c in SYNC_COUNTS}, error=row.error, expiry_guard=row.expiry_guard,
                      started_at=as_utc(row.started_at), finished_at=as_utc(row.finished_at),
                      duration_seconds=row.duration_seconds, id=row.id, run_id=row.run_id)


@lru_cache(maxsize=64)
def _finish_statement(dialect: str, columns: tuple[str, ...]) -> sa.Update:
    """The UPDATE ending a sync that sets `columns` (each bound as `set_<column>`), its finishing instant
    (`finished`) and its duration: built once per set of columns, as `store.apply`'s statements are
    (built anew, it cost more than the update itself)."""
    finished = sa.bindparam("finished", type_=syncs.c.finished_at.type)
    return syncs.update().where(syncs.c.id == sa.bindparam("ended_sync")).values(
        finished_at=finished, duration_seconds=_seconds_since_start(dialect, finished),
        **{c: sa.bindparam(f"set_{c}", type_=syncs.c[c].type) for c in columns})


def _seconds_since_start(dialect: str, finished: sa.ColumnElement) -> sa.ColumnElement:
    """A sync's duration from its row's `started_at` to `finished`, computed in the UPDATE that ends it
    (reading `started_at` first cost a statement a board)."""
    if dialect == "postgresql":
        return sa.func.extract("epoch", finished - syncs.c.started_at)
    # SQLite keeps the instants as UTC text; julianday reads it to a fraction of a millisecond
    return (sa.func.julianday(finished) - sa.func.julianday(syncs.c.started_at)) * 86400.0

