"""The repository: every read and write of the store, each atomic write in one transaction."""
from __future__ import annotations

import hashlib
import itertools
import re
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from jobsync_pipeline.core.dedupe import compare
from jobsync_pipeline.core.diff import SnapshotDiff, classify, expired_unseen, state_frame
from jobsync_pipeline.core.enrich import DERIVED_COLUMNS, derive
from jobsync_pipeline.core.models import POSTING_COLUMNS, BadRecord
from jobsync_pipeline.sources.base import RawPayload, collection_paused
from jobsync_pipeline.store.boards import BoardRegistry
from jobsync_pipeline.store.tables import (bad_records, boards, job_events, jobs, possible_duplicates, raw_snapshots,
                                          syncs)
from jobsync_pipeline.store.time import as_utc, to_utc, utcnow

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
COUNT_COLUMNS = ("found", "new", "changed", "unchanged", "expired", "reactivated", "bad", "duplicates",
                 "cross_source_duplicates", "possible_duplicates")
_NO_IDS = np.array([], dtype=object)


@dataclass(frozen=True)
class Expiry:
    """A source's snapshot semantics: what makes one of its jobs expire."""

    complete: bool = True  # a snapshot lists every open posting: absent means gone
    max_age: timedelta = timedelta(days=30)  # a feed's job not seen for this long is gone


COMPLETE = Expiry()
# last_seen_at is refreshed at most this often: an unchanged snapshot must write no job rows.
DEFAULT_SEEN_REFRESH = timedelta(days=1)

_engines: dict[str, sa.Engine] = {}
_migrated: set[str] = set()
_lock = threading.Lock()


def engine_for(url: str) -> sa.Engine:
    """One engine per URL per process (engines own connection pools)."""
    with _lock:
        if url not in _engines:
            _engines[url] = _create_engine(url)
        return _engines[url]


def _create_engine(url: str) -> sa.Engine:
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True)
    engine = sa.create_engine(url, connect_args={"timeout": 60})

    @sa.event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record):
        # pysqlite opens transactions lazily and outside our control; let SQLAlchemy's BEGIN rule.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection):
        # IMMEDIATE takes the write lock up front, so a read-then-write apply cannot be overtaken.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class ExpiryRefused(Exception):
    """The guard refused a diff; `verdict` says why. Nothing of the diff was written."""

    def __init__(self, verdict: Any):
        super().__init__(getattr(verdict, "reason", None) or str(verdict))
        self.verdict = verdict


@dataclass
class SyncResult:
    """One board's sync as the `syncs` table records it."""

    source: str
    board: str
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    id: int | None = None


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


_tmp = sa.MetaData()
# What a written job row holds beyond the store's bookkeeping: the posting and what is derived from it.
WRITTEN_COLUMNS = (*POSTING_COLUMNS[:-1], *DERIVED_COLUMNS, "content_hash")
_stage = sa.Table(
    "jobsync_stage", _tmp,
    sa.Column("external_id", sa.String(255), primary_key=True),
    *(sa.Column(name, jobs.c[name].type) for name in WRITTEN_COLUMNS if name != "external_id"),
    prefixes=["TEMPORARY"],
)
_diff_keys = sa.Table(
    "jobsync_diff_keys", _tmp,
    sa.Column("external_id", sa.String(255), primary_key=True),
    sa.Column("kind", sa.String(16), comment="an event kind, or 'seen' for a last_seen_at refresh"),
    sa.Column("reason", sa.String(32), comment="why an expired job expired"),
    prefixes=["TEMPORARY"],
)
EVENT_KINDS = ("new", "changed", "reactivated", "expired")


class Store:
    """The jobsync store on one database URL (SQLite file by default, PostgreSQL in production)."""

    def __init__(self, url: str, *, migrate: bool = True):
        self.url = url
        self.engine = engine_for(url)
        if migrate:
            self.migrate()

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent, once per process and URL)."""
        with _lock:
            if self.url in _migrated:
                return
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
            _migrated.add(self.url)

    @property
    def boards(self) -> BoardRegistry:
        return BoardRegistry(self.engine)

    def recent_found(self, source: str, board: str, limit: int = 5) -> list[int]:
        """Found counts of the board's latest successful syncs, newest first (the guard's history)."""
        with self.engine.connect() as conn:
            return list(conn.scalars(sa.select(syncs.c.found).where(
                syncs.c.source == source, syncs.c.board == board, syncs.c.status == "success")
                .order_by(syncs.c.id.desc()).limit(limit)))

    def ensure_boards(self, source: str, names: Iterable[str]) -> None:
        names = list(dict.fromkeys(names))
        if not names:
            return
        with self.engine.begin() as conn:
            known = set(conn.scalars(sa.select(boards.c.board).where(boards.c.source == source)))
            fresh = [{"source": source, "board": n, "added_at": utcnow()} for n in names if n not in known]
            if fresh:
                conn.execute(boards.insert(), fresh)

    def board_names(self, source: str) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.scalars(sa.select(boards.c.board).where(boards.c.source == source)
                                     .order_by(boards.c.board)))

    def last_snapshot_at(self, source: str, board: str) -> datetime | None:
        with self.engine.connect() as conn:
            return as_utc(conn.scalar(sa.select(boards.c.last_snapshot_at).where(
                boards.c.source == source, boards.c.board == board)))

    def archive_raw(self, source: str, payload: RawPayload) -> tuple[int, bool]:
        """Archive a fetched payload; an identical payload to the newest one is not stored twice.

        Returns the snapshot's id and whether it was already archived.
        """
        digest = hashlib.sha256(payload.body).hexdigest()
        with self.engine.begin() as conn:
            latest = conn.execute(
                sa.select(raw_snapshots.c.id, raw_snapshots.c.sha256, raw_snapshots.c.etag,
                          raw_snapshots.c.last_modified)
                .where(raw_snapshots.c.source == source, raw_snapshots.c.board == payload.board)
                .order_by(raw_snapshots.c.id.desc()).limit(1)).first()
            if latest is not None and latest.sha256 == digest:
                if (latest.etag, latest.last_modified) != (payload.etag, payload.last_modified):
                    # the same bytes under new validators: keep them, or every later GET is a full 200
                    conn.execute(raw_snapshots.update().where(raw_snapshots.c.id == latest.id).values(
                        etag=payload.etag, last_modified=payload.last_modified))
                return latest.id, True
            new_id = conn.execute(raw_snapshots.insert().values(
                source=source, board=payload.board, location=payload.location,
                fetched_at=to_utc(payload.fetched_at), etag=payload.etag, last_modified=payload.last_modified,
                sha256=digest,
                size_bytes=len(payload.body), payload=payload.body)).inserted_primary_key[0]
            return new_id, False

    def latest_raw(self, source: str, board: str) -> RawSnapshot | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(raw_snapshots).where(raw_snapshots.c.source == source,
                                               raw_snapshots.c.board == board)
                .order_by(raw_snapshots.c.id.desc()).limit(1)).first()
        if row is None:
            return None
        return RawSnapshot(id=row.id, source=row.source, board=row.board, location=row.location,
                           fetched_at=as_utc(row.fetched_at), etag=row.etag, last_modified=row.last_modified,
                           sha256=row.sha256,
                           body=bytes(row.payload))

    def keep_bad_records(self, raw_snapshot_id: int, source: str, board: str,
                         records: list[BadRecord]) -> None:
        """Set a snapshot's refused records aside (replacing any from an earlier parse of it)."""
        with self.engine.begin() as conn:
            conn.execute(bad_records.delete().where(bad_records.c.raw_snapshot_id == raw_snapshot_id))
            if records:
                conn.execute(bad_records.insert(), [
                    {"raw_snapshot_id": raw_snapshot_id, "source": source, "board": board,
                     "position": r.position, "external_id": r.external_id, "reason": r.reason,
                     "record": r.record} for r in records])

    def bad_records(self, source: str, board: str) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                sa.select(bad_records).where(bad_records.c.source == source, bad_records.c.board == board)
                .order_by(bad_records.c.id))]

    def start_sync(self, source: str, board: str, *, run_id: str | None, started_at: datetime | None = None,
                   raw_snapshot_id: int | None = None) -> int:
        with self.engine.begin() as conn:
            return conn.execute(syncs.insert().values(
                source=source, board=board, run_id=run_id, status="running",
                started_at=to_utc(started_at) or utcnow(), raw_snapshot_id=raw_snapshot_id,
                **{c: 0 for c in COUNT_COLUMNS})).inserted_primary_key[0]

    def finish_sync(self, sync_id: int, status: str, *, counts: dict[str, int] | None = None,
                    error: str | None = None, snapshot_at: datetime | None = None,
                    conn: sa.Connection | None = None) -> None:
        if conn is None:
            with self.engine.begin() as own:
                return self.finish_sync(sync_id, status, counts=counts, error=error,
                                        snapshot_at=snapshot_at, conn=own)
        started = as_utc(conn.scalar(sa.select(syncs.c.started_at).where(syncs.c.id == sync_id)))
        finished = utcnow()
        conn.execute(syncs.update().where(syncs.c.id == sync_id).values(
            status=status, error=error, finished_at=finished, snapshot_at=to_utc(snapshot_at),
            duration_seconds=(finished - started).total_seconds(),
            **{c: v for c, v in (counts or {}).items() if c in COUNT_COLUMNS}))

    def record_sync(self, source: str, board: str, status: str, *, run_id: str | None,
                    counts: dict[str, int] | None = None, error: str | None = None,
                    started_at: datetime | None = None, raw_snapshot_id: int | None = None,
                    snapshot_at: datetime | None = None) -> int:
        """A sync that ended before its diff (refused file, stale snapshot): one row, in one go."""
        sync_id = self.start_sync(source, board, run_id=run_id, started_at=started_at,
                                  raw_snapshot_id=raw_snapshot_id)
        self.finish_sync(sync_id, status, counts=counts, error=error, snapshot_at=snapshot_at)
        return sync_id

    def syncs_for_run(self, run_id: str, source: str | None = None) -> list[SyncResult]:
        query = sa.select(syncs).where(syncs.c.run_id == run_id).order_by(syncs.c.id)
        if source:
            query = query.where(syncs.c.source == source)
        with self.engine.connect() as conn:
            return [_sync_result(row) for row in conn.execute(query)]

    def sync_result(self, sync_id: int) -> SyncResult:
        with self.engine.connect() as conn:
            return _sync_result(conn.execute(sa.select(syncs).where(syncs.c.id == sync_id)).one())

    def latest_syncs(self, source: str, board: str, limit: int = 10) -> list[SyncResult]:
        with self.engine.connect() as conn:
            return [_sync_result(row) for row in conn.execute(
                sa.select(syncs).where(syncs.c.source == source, syncs.c.board == board)
                .order_by(syncs.c.id.desc()).limit(limit))]

    def apply_snapshot(self, source: str, board: str, chunks: Iterable[pd.DataFrame], *, sync_id: int,
                       snapshot_at: datetime | None = None, counts: dict[str, int] | None = None,
                       now: datetime | None = None, seen_refresh: timedelta = DEFAULT_SEEN_REFRESH,
                       guard: Callable[[SnapshotDiff], Any] | None = None, expiry: Expiry = COMPLETE,
                       jobs_board: str | None = None) -> SnapshotDiff:
        """Diff a snapshot against the board's jobs and apply it, with its events and its `syncs` row,
        in one transaction.

        `expiry` is the source's snapshot semantics: a complete snapshot expires the jobs it does not
        list; a feed's expires none by absence, only those past their own expiry date or not seen for
        `expiry.max_age`. `jobs_board` is the board the jobs are kept under when it is not the synced
        one (a feed's tags all list into one catalog).

        `guard` sees the whole diff before any of it is committed; a verdict it returns (not None)
        rolls everything back and raises `ExpiryRefused` carrying it (the mass-expiry guard).

        `chunks` are frames of `POSTING_COLUMNS`, unique by external id across all chunks; they are
        consumed once, so a snapshot larger than memory can stream through. Only rows whose content
        hash differs are written, with their derived columns (`core.enrich`): an unchanged snapshot
        writes no job rows.
        """
        now = to_utc(now) or utcnow()
        snapshot_at = to_utc(snapshot_at)
        where_board = (jobs.c.source == source, jobs.c.board == (jobs_board or board))
        # the state, the chunks and the diff are freed by reference counting: no cyclic collection
        # while they are built (it traversed the growing state and chunks again and again)
        with self.engine.begin() as conn, collection_paused():
            previous, stale = _previous_state(conn, where_board, now - seen_refresh, now, expiry)
            seen = np.zeros(len(previous), dtype=bool)
            result, staged = SnapshotDiff(), False
            refresh: list[np.ndarray] = []
            for chunk in chunks:
                if not expiry.complete:
                    chunk = _listed(chunk, now)
                part = classify(previous, chunk, seen=seen)
                ids = chunk["external_id"]
                if len(part.new):
                    _bulk_insert(conn, jobs, _written(chunk.loc[ids.isin(part.new)]),
                                 source=source, board=jobs_board or board, first_seen_at=now, last_seen_at=now,
                                 updated_at=now)
                if len(part.changed) or len(part.reactivated):
                    staged = staged or _create(conn, _stage)
                    touched = ids.isin(np.concatenate([part.changed, part.reactivated]))
                    _bulk_insert(conn, _stage, _written(chunk.loc[touched]))
                if not expiry.complete and len(part.unchanged):
                    refresh.append(part.unchanged[previous["stale"].to_numpy()[
                        previous.index.get_indexer(part.unchanged)]])
                result = result + part
                del chunk, part, ids  # not alive while the source produces the next chunk
            reasons = _expiries(previous, seen, expiry)
            result = result + SnapshotDiff(expired=np.concatenate(list(reasons.values())))
            verdict = guard(result) if guard else None
            if verdict is not None:
                raise ExpiryRefused(verdict)  # rolls the whole apply back: nothing of it is written
            del previous, seen
            if staged:
                _analyze(conn, _stage)
                # the IN lets SQLite walk the staged ids through the jobs index instead of all the board's jobs
                conn.execute(jobs.update().where(*where_board, jobs.c.external_id == _stage.c.external_id,
                                                 jobs.c.external_id.in_(sa.select(_stage.c.external_id)))
                             .values(**{name: _stage.c[name] for name in WRITTEN_COLUMNS if name != "external_id"},
                                     updated_at=now, last_seen_at=now, expired_at=None, expired_reason=None))
            refreshed = np.concatenate(refresh) if refresh else _NO_IDS
            self._record_diff(conn, result, reasons, refreshed, where_board, sync_id, now)
            if expiry.complete and (stale or seen_refresh <= timedelta(0)):
                # a full pass over the board's jobs, skipped when the state read found none to refresh
                conn.execute(jobs.update().where(*where_board, jobs.c.expired_at.is_(None),
                                                 jobs.c.last_seen_at < now - seen_refresh).values(last_seen_at=now))
            duplicates = _cross_source_duplicates(conn, source, jobs_board or board, sync_id, now)
            for table in (_stage, _diff_keys):
                table.drop(conn, checkfirst=True)
            self.finish_sync(sync_id, "success", counts={**(counts or {}), **result.counts(), **duplicates},
                             snapshot_at=snapshot_at, conn=conn)
            conn.execute(boards.update().where(boards.c.source == source, boards.c.board == board).values(
                last_synced_at=now,
                last_snapshot_at=sa.case((boards.c.last_snapshot_at.is_(None), snapshot_at),
                                         (boards.c.last_snapshot_at < snapshot_at, snapshot_at),
                                         else_=boards.c.last_snapshot_at) if snapshot_at else boards.c.last_snapshot_at))
        return result

    @staticmethod
    def _record_diff(conn: sa.Connection, result: SnapshotDiff, reasons: dict[str, np.ndarray],
                     refreshed: np.ndarray, where_board, sync_id: int, now: datetime) -> None:
        """Expire the jobs that went, refresh the feed jobs seen again, and write one event per touched
        job, set-based from one key table."""
        kinds = ("new", "changed", "reactivated")
        if not any(len(getattr(result, kind)) for kind in kinds) and not len(result.expired) and not len(refreshed):
            return
        _create(conn, _diff_keys)
        parts = [(getattr(result, kind), kind, None) for kind in kinds]
        parts += [(ids, "expired", reason) for reason, ids in reasons.items()]
        parts.append((refreshed, "seen", None))
        keys = pd.DataFrame({
            "external_id": np.concatenate([ids for ids, _, _ in parts]),
            "kind": np.repeat(np.array([kind for _, kind, _ in parts], dtype=object), [len(ids) for ids, _, _ in parts]),
            "reason": np.repeat(np.array([reason for _, _, reason in parts], dtype=object),
                                [len(ids) for ids, _, _ in parts])})
        _bulk_insert(conn, _diff_keys, keys)
        _analyze(conn, _diff_keys)
        for reason, ids in reasons.items():
            if len(ids):
                conn.execute(jobs.update().where(*where_board, jobs.c.external_id.in_(
                    sa.select(_diff_keys.c.external_id).where(_diff_keys.c.kind == "expired",
                                                              _diff_keys.c.reason == reason))).values(
                        expired_at=now, expired_reason=reason, updated_at=now))
        if len(refreshed):
            conn.execute(jobs.update().where(*where_board, jobs.c.external_id.in_(
                sa.select(_diff_keys.c.external_id).where(_diff_keys.c.kind == "seen"))).values(last_seen_at=now))
        conn.execute(job_events.insert().from_select(
            ["job_id", "sync_id", "kind", "at"],
            sa.select(jobs.c.id, sa.literal(sync_id, sa.BigInteger), _diff_keys.c.kind,
                      sa.literal(now, jobs.c.updated_at.type))
            .join(_diff_keys, jobs.c.external_id == _diff_keys.c.external_id)
            .where(*where_board, _diff_keys.c.kind.in_(EVENT_KINDS),
                   jobs.c.external_id.in_(sa.select(_diff_keys.c.external_id)))))


def _cross_source_duplicates(conn: sa.Connection, source: str, board: str, sync_id: int,
                             now: datetime) -> dict[str, int]:
    """How many jobs this sync wrote that another source lists too (same dedupe key: one canonical
    job), and the weaker pairs recorded in `possible_duplicates` for tuning the rule from data.

    Only the rows the sync wrote are compared, each with the active jobs of other sources at the
    same company, so an unchanged board costs one empty query.
    """
    if conn.scalar(sa.select(boards.c.board).where(boards.c.source != source).limit(1)) is None:
        return {"cross_source_duplicates": 0, "possible_duplicates": 0}  # no other source has boards
    written = (sa.select(job_events.c.job_id)
               .where(job_events.c.sync_id == sync_id, job_events.c.kind.in_(("new", "changed", "reactivated"))))
    other = jobs.alias("other")
    same_key = conn.scalar(
        sa.select(sa.func.count(sa.distinct(jobs.c.id)))
        .select_from(jobs.join(other, sa.and_(other.c.dedupe_key == jobs.c.dedupe_key, other.c.source != source,
                                              other.c.expired_at.is_(None))))
        .where(jobs.c.id.in_(written)))
    columns = (jobs.c.id, jobs.c.source, jobs.c.company, jobs.c.title, jobs.c.location, jobs.c.dedupe_key,
               jobs.c.company_key)
    others = conn.execute(sa.select(*columns).where(
        jobs.c.source != source, jobs.c.expired_at.is_(None), jobs.c.company_key.in_(
            sa.select(jobs.c.company_key).where(jobs.c.id.in_(written))))).all()
    if not others:
        return {"cross_source_duplicates": same_key or 0, "possible_duplicates": 0}
    by_company: dict[str, list] = {}
    for row in others:
        by_company.setdefault(row.company_key, []).append(row)
    mine = conn.execute(sa.select(*columns).where(jobs.c.id.in_(written),
                                                  jobs.c.company_key.in_(list(by_company)))).all()
    pairs = {}
    for row in mine:
        for candidate in by_company[row.company_key]:
            if row.dedupe_key == candidate.dedupe_key:
                continue  # one canonical job already: not a possible duplicate
            verdict = compare(row._mapping, candidate._mapping)
            if verdict.verdict == "possible":
                pair = (min(row.id, candidate.id), max(row.id, candidate.id))
                pairs[pair] = {"job_id_a": pair[0], "job_id_b": pair[1], "score": verdict.score,
                               "reason": verdict.reason, "sync_id": sync_id, "found_at": now}
    if pairs:
        known = set(conn.execute(sa.select(possible_duplicates.c.job_id_a, possible_duplicates.c.job_id_b).where(
            possible_duplicates.c.job_id_a.in_(sorted({a for a, _ in pairs})))).all())
        fresh = [values for pair, values in pairs.items() if pair not in known]
        if fresh:
            conn.execute(possible_duplicates.insert(), fresh)
        pairs = fresh
    return {"cross_source_duplicates": same_key or 0, "possible_duplicates": len(pairs)}


def _listed(chunk: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """A feed chunk without the postings whose own expiry date has passed: they are gone, not new."""
    through = pd.to_datetime(chunk["valid_through"], utc=True, errors="coerce", format="ISO8601")
    return chunk[~(through < now).to_numpy()]


def _expiries(previous: pd.DataFrame, seen: np.ndarray, expiry: Expiry) -> dict[str, np.ndarray]:
    """The active jobs a snapshot expires, by reason."""
    if expiry.complete:
        return {"absent": expired_unseen(previous, seen)}
    unseen = previous["active"].to_numpy() & ~seen
    past = unseen & previous["past_expiry"].to_numpy()
    old = unseen & ~past & previous["too_old"].to_numpy()
    return {"past_expiry": previous.index[past].to_numpy(dtype=object),
            "too_old": previous.index[old].to_numpy(dtype=object)}


def _written(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows as the store writes them: the posting's columns, its derived ones, store types."""
    rows = pd.concat([rows.reset_index(drop=True), derive(rows).reset_index(drop=True)], axis=1)
    rows["valid_through"] = [None if v is None else to_utc(datetime.fromisoformat(v))
                             for v in rows["valid_through"]]
    return rows[list(WRITTEN_COLUMNS)]


def _create(conn: sa.Connection, table: sa.Table) -> bool:
    table.create(conn, checkfirst=True)
    return True


def _analyze(conn: sa.Connection, table: sa.Table) -> None:
    """Statistics for a filled key table on PostgreSQL, which has none for temporary tables: without
    them it plans for a handful of rows and joins thousands by nested index lookups."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ANALYZE {conn.dialect.identifier_preparer.format_table(table)}")


# Elsewhere than PostgreSQL (which COPYs it), a board's stored state is fetched this many rows at a time.
_STATE_BATCH = 50_000


def _previous_state(conn: sa.Connection, where_board, stale_before: datetime, now: datetime,
                    expiry: Expiry) -> tuple[pd.DataFrame, bool]:
    """The board's stored state for the diff engine, read into columns (no row objects kept),
    and whether any active job was last seen before `stale_before`. A feed's state also has, per job,
    `stale`, `past_expiry` and `too_old` (the source's expiry date passed; not seen for max_age)."""
    active = jobs.c.expired_at.is_(None)
    flags = [sa.and_(active, jobs.c.last_seen_at < stale_before)]
    if not expiry.complete:
        flags += [sa.and_(active, jobs.c.valid_through.is_not(None), jobs.c.valid_through < now),
                  sa.and_(active, jobs.c.last_seen_at < now - expiry.max_age)]
    query = sa.select(jobs.c.external_id, jobs.c.content_hash, active, *flags).where(*where_board)
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg2":
        ids, hashes, active_flags, stale, *feed = _copied_columns(conn, query, len(flags))
    else:
        ids, hashes, active_flags, stale, *feed = _fetched_columns(conn, query, len(flags))
    state = state_frame(ids, hashes, active_flags)
    if not expiry.complete:
        state["stale"], state["past_expiry"], state["too_old"] = stale, feed[0], feed[1]
    return state, bool(stale.any())


def _fetched_columns(conn: sa.Connection, query: sa.Select, flags: int) -> list:
    """The state query's columns (ids, hashes, active, then `flags` more booleans), batch by batch."""
    ids: list[str] = []
    columns: list[list[np.ndarray]] = [[] for _ in range(2 + flags)]
    for batch in _driver_batches(conn, query, _STATE_BATCH):
        batch_ids, *batch_columns = zip(*batch)
        ids.extend(batch_ids)
        columns[0].append(np.fromiter(batch_columns[0], dtype="int64", count=len(batch)))
        for column, values in zip(columns[1:], batch_columns[1:]):
            # never NULL (every flag ANDs non-null terms, false AND NULL is false); 0/1 on SQLite
            column.append(np.fromiter(values, dtype=bool, count=len(batch)))
    return [ids, *(np.concatenate(c) if c else np.zeros(0, dtype="int64" if n == 0 else bool)
                   for n, c in enumerate(columns))]


# COPY's output is spooled to disk beyond this size, so a large board's state is not held twice
_SPOOL_BYTES = 8 << 20


def _copied_columns(conn: sa.Connection, query: sa.Select, flags: int) -> list:
    """What `_fetched_columns` gives, through COPY … TO STDOUT as CSV parsed by pandas' C reader:
    a million rows in a fraction of the time of as many driver tuples."""
    from psycopg2.extensions import encodings

    statement, params = _driver_statement(conn, query)
    names = ["external_id", "content_hash", *(f"flag_{n}" for n in range(1 + flags))]
    encoding = encodings[conn.connection.dbapi_connection.encoding]  # the client encoding, as Python names it
    with conn.connection.cursor() as cursor, tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        select = cursor.mogrify(statement, params).decode(encoding)
        cursor.copy_expert(f"COPY ({select}) TO STDOUT WITH (FORMAT csv)", spool)
        if not spool.tell():
            return [[], np.zeros(0, dtype="int64"), *(np.zeros(0, dtype=bool) for _ in range(1 + flags))]
        spool.seek(0)
        # ids stay text exactly as stored ("007", "NA", "1e5", quoted commas and newlines)
        frame = pd.read_csv(spool, header=None, names=names, encoding=encoding, keep_default_na=False,
                            na_filter=False, dtype={"external_id": object, "content_hash": "int64"},
                            true_values=["t"], false_values=["f"])
    return [frame["external_id"].tolist(), frame["content_hash"].to_numpy(),
            *(frame[name].to_numpy(dtype=bool) for name in names[2:])]


def _driver_statement(conn: sa.Connection, query: sa.Select) -> tuple[str, Any]:
    """`query` as the driver's SQL and parameters (bound values processed as SQLAlchemy would)."""
    compiled = query.compile(dialect=conn.dialect)
    params = {}
    for name, value in compiled.construct_params().items():
        process = compiled.binds[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        params[name] = process(value) if process else value
    if compiled.positional:
        params = tuple(params[name] for name in compiled.positiontup)
    return str(compiled), params


def _driver_batches(conn: sa.Connection, query: sa.Select, size: int):
    """The rows of `query` as the driver's plain tuples, `size` at a time: a million SQLAlchemy rows
    would cost seconds. Only for columns whose types need no result processing (strings, integers,
    booleans)."""
    statement, params = _driver_statement(conn, query)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(statement, params)
        while batch := cursor.fetchmany(size):
            yield batch
    finally:
        cursor.close()


def _bulk_insert(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame, **constants) -> None:
    """Insert a frame's rows (plus constant columns) into `table` set-based: COPY on PostgreSQL
    (psycopg2), one executemany of plain tuples on SQLite, SQLAlchemy's executemany elsewhere."""
    names = [*frame.columns, *constants]
    driver = (conn.dialect.name, conn.dialect.driver)
    if driver == ("postgresql", "psycopg2"):
        columns = [_copy_column(_column_values(frame[name])) for name in frame.columns]
        columns += [itertools.repeat(_copy_value(value), len(frame)) for value in constants.values()]
        preparer = conn.dialect.identifier_preparer
        statement = (f"COPY {preparer.format_table(table)} ({', '.join(preparer.quote(n) for n in names)}) "
                     "FROM STDIN")
        with conn.connection.cursor() as cursor:
            cursor.copy_expert(statement, _LineReader(map("\t".join, zip(*columns))), size=_COPY_BLOCK)
    elif conn.dialect.name == "sqlite":
        columns = []
        for name in frame.columns:
            values = _column_values(frame[name])
            process = table.c[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
            # only for types SQLite stores in a form of SQLAlchemy's (datetimes); not for text and numbers
            if process is not None and not isinstance(table.c[name].type, (sa.String, sa.Integer, sa.Float)):
                values = [None if value is None else process(value) for value in values]
            columns.append(values)
        for name, value in constants.items():
            process = table.c[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
            columns.append(itertools.repeat(process(value) if process else value, len(frame)))
        preparer = conn.dialect.identifier_preparer
        conn.exec_driver_sql(
            f"INSERT INTO {preparer.format_table(table)} ({', '.join(preparer.quote(n) for n in names)}) "
            f"VALUES ({', '.join('?' for _ in names)})", list(zip(*columns)))
    else:
        conn.execute(table.insert(), _records(frame, **constants))


def _column_values(series: pd.Series) -> list:
    """A column as plain Python values (int, str), missing values as None."""
    values = series.tolist()
    if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        missing = series.isna().to_numpy()
        if missing.any():
            values = [None if absent else value for value, absent in zip(values, missing)]
    return values


_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_BLOCK = 1 << 20


class _LineReader:
    """Lines as a file for `copy_expert`, produced as it reads, so no whole COPY body is held."""

    def __init__(self, lines: Iterable[str]):
        self.lines = iter(lines)

    def read(self, size: int = _COPY_BLOCK) -> str:
        block = list(itertools.islice(self.lines, max(1, size // 512)))
        return "\n".join(block) + "\n" if block else ""


def _copy_value(value) -> str:
    """One value in COPY's text format."""
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        text = "t" if value else "f"
    elif isinstance(value, datetime):
        text = value.isoformat(sep=" ")
    else:
        text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_column(values: list) -> list[str]:
    """A column in COPY's text format; plain strings without a character to escape pass as they are."""
    try:
        joined = "".join(values)  # raises unless every value is a str
    except TypeError:
        if all(type(value) is int for value in values):
            return list(map(str, values))
        return [_copy_value(value) for value in values]
    return values if _COPY_SPECIAL.search(joined) is None else [_copy_value(value) for value in values]


def _records(frame: pd.DataFrame, **constants) -> list[dict]:
    records = frame.to_dict("records")
    if constants:
        for record in records:
            record.update(constants)
    return records


def _sync_result(row) -> SyncResult:
    return SyncResult(source=row.source, board=row.board, status=row.status,
                      counts={c: getattr(row, c) for c in COUNT_COLUMNS}, error=row.error,
                      started_at=as_utc(row.started_at), finished_at=as_utc(row.finished_at),
                      duration_seconds=row.duration_seconds, id=row.id)

