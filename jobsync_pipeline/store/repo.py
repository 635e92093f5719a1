"""The repository: every read and write of the store, each atomic write in one transaction."""
from __future__ import annotations

import hashlib
import itertools
import re
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

from jobsync_pipeline.core.diff import SnapshotDiff, classify, expired_unseen, state_frame
from jobsync_pipeline.core.models import CONTENT_FIELDS, POSTING_COLUMNS, BadRecord
from jobsync_pipeline.sources.base import RawPayload
from jobsync_pipeline.store.boards import BoardRegistry
from jobsync_pipeline.store.tables import bad_records, boards, job_events, jobs, raw_snapshots, syncs
from jobsync_pipeline.store.time import as_utc, to_utc, utcnow

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
COUNT_COLUMNS = ("found", "new", "changed", "unchanged", "expired", "reactivated", "bad", "duplicates")
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
_stage = sa.Table(
    "jobsync_stage", _tmp,
    sa.Column("external_id", sa.String(255), primary_key=True),
    *(sa.Column(name, sa.Text) for name in CONTENT_FIELDS),
    sa.Column("content_hash", sa.BigInteger),
    prefixes=["TEMPORARY"],
)
_diff_keys = sa.Table(
    "jobsync_diff_keys", _tmp,
    sa.Column("external_id", sa.String(255), primary_key=True),
    sa.Column("kind", sa.String(16)),
    prefixes=["TEMPORARY"],
)


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

    def latest_syncs(self, source: str, board: str, limit: int = 10) -> list[SyncResult]:
        with self.engine.connect() as conn:
            return [_sync_result(row) for row in conn.execute(
                sa.select(syncs).where(syncs.c.source == source, syncs.c.board == board)
                .order_by(syncs.c.id.desc()).limit(limit))]

    def apply_snapshot(self, source: str, board: str, chunks: Iterable[pd.DataFrame], *, sync_id: int,
                       snapshot_at: datetime | None = None, counts: dict[str, int] | None = None,
                       now: datetime | None = None, seen_refresh: timedelta = DEFAULT_SEEN_REFRESH,
                       guard: Callable[[SnapshotDiff], Any] | None = None) -> SnapshotDiff:
        """Diff a complete snapshot against the board's jobs and apply it, with its events and its
        `syncs` row, in one transaction.

        `guard` sees the whole diff before any of it is committed; a verdict it returns (not None)
        rolls everything back and raises `ExpiryRefused` carrying it (the mass-expiry guard).

        `chunks` are frames of `POSTING_COLUMNS`, unique by external id across all chunks; they are
        consumed once, so a snapshot larger than memory can stream through. Only rows whose content
        hash differs are written: an unchanged snapshot writes no job rows.
        """
        now = to_utc(now) or utcnow()
        snapshot_at = to_utc(snapshot_at)
        where_board = (jobs.c.source == source, jobs.c.board == board)
        with self.engine.begin() as conn:
            previous, stale = _previous_state(conn, where_board, now - seen_refresh)
            seen = np.zeros(len(previous), dtype=bool)
            result, staged = SnapshotDiff(), False
            for chunk in chunks:
                part = classify(previous, chunk, seen=seen)
                ids = chunk["external_id"]
                if len(part.new):
                    _bulk_insert(conn, jobs, chunk.loc[ids.isin(part.new), list(POSTING_COLUMNS)],
                                 source=source, board=board, first_seen_at=now, last_seen_at=now, updated_at=now)
                if len(part.changed) or len(part.reactivated):
                    staged = staged or _create(conn, _stage)
                    touched = ids.isin(np.concatenate([part.changed, part.reactivated]))
                    _bulk_insert(conn, _stage, chunk.loc[touched, list(POSTING_COLUMNS)])
                result = result + part
                del chunk, part, ids  # not alive while the source produces the next chunk
            result = result + SnapshotDiff(expired=expired_unseen(previous, seen))
            verdict = guard(result) if guard else None
            if verdict is not None:
                raise ExpiryRefused(verdict)  # rolls the whole apply back: nothing of it is written
            del previous, seen
            if staged:
                # the IN lets SQLite walk the staged ids through the jobs index instead of all the board's jobs
                conn.execute(jobs.update().where(*where_board, jobs.c.external_id == _stage.c.external_id,
                                                 jobs.c.external_id.in_(sa.select(_stage.c.external_id)))
                             .values(**{name: _stage.c[name] for name in (*CONTENT_FIELDS, "content_hash")},
                                     updated_at=now, last_seen_at=now, expired_at=None, expired_reason=None))
            self._record_diff(conn, result, where_board, sync_id, now)
            if stale or seen_refresh <= timedelta(0):
                # a full pass over the board's jobs, skipped when the state read found none to refresh
                conn.execute(jobs.update().where(*where_board, jobs.c.expired_at.is_(None),
                                                 jobs.c.last_seen_at < now - seen_refresh).values(last_seen_at=now))
            for table in (_stage, _diff_keys):
                table.drop(conn, checkfirst=True)
            self.finish_sync(sync_id, "success", counts={**(counts or {}), **result.counts()},
                             snapshot_at=snapshot_at, conn=conn)
            conn.execute(boards.update().where(boards.c.source == source, boards.c.board == board).values(
                last_synced_at=now,
                last_snapshot_at=sa.case((boards.c.last_snapshot_at.is_(None), snapshot_at),
                                         (boards.c.last_snapshot_at < snapshot_at, snapshot_at),
                                         else_=boards.c.last_snapshot_at) if snapshot_at else boards.c.last_snapshot_at))
        return result

    @staticmethod
    def _record_diff(conn: sa.Connection, result: SnapshotDiff, where_board, sync_id: int,
                     now: datetime) -> None:
        """Expire the absent jobs and write one event per touched job, set-based from one key table."""
        kinds = ("new", "changed", "reactivated", "expired")
        if not any(len(getattr(result, kind)) for kind in kinds):
            return
        _create(conn, _diff_keys)
        keys = pd.DataFrame({"external_id": np.concatenate([getattr(result, kind) for kind in kinds]),
                             "kind": np.repeat(np.array(kinds, dtype=object),
                                               [len(getattr(result, kind)) for kind in kinds])})
        _bulk_insert(conn, _diff_keys, keys)
        if len(result.expired):
            conn.execute(jobs.update().where(*where_board, jobs.c.external_id.in_(
                sa.select(_diff_keys.c.external_id).where(_diff_keys.c.kind == "expired"))).values(
                    expired_at=now, expired_reason="absent", updated_at=now))
        conn.execute(job_events.insert().from_select(
            ["job_id", "sync_id", "kind", "at"],
            sa.select(jobs.c.id, sa.literal(sync_id, sa.BigInteger), _diff_keys.c.kind,
                      sa.literal(now, jobs.c.updated_at.type))
            .join(_diff_keys, jobs.c.external_id == _diff_keys.c.external_id)
            .where(*where_board, jobs.c.external_id.in_(sa.select(_diff_keys.c.external_id)))))


def _create(conn: sa.Connection, table: sa.Table) -> bool:
    table.create(conn, checkfirst=True)
    return True


# A board's stored state is read in batches of this many rows (a server-side cursor on PostgreSQL).
_STATE_BATCH = 50_000


def _previous_state(conn: sa.Connection, where_board, stale_before: datetime) -> tuple[pd.DataFrame, bool]:
    """The board's stored state for the diff engine, streamed into columns (no row objects kept),
    and whether any active job was last seen before `stale_before`."""
    query = sa.select(jobs.c.external_id, jobs.c.content_hash, jobs.c.expired_at.is_(None),
                      sa.and_(jobs.c.expired_at.is_(None), jobs.c.last_seen_at < stale_before)).where(*where_board)
    ids: list[str] = []
    hashes, active, stale = [], [], False
    for batch in _driver_batches(conn, query, _STATE_BATCH):
        batch_ids, batch_hashes, batch_active, batch_stale = zip(*batch)
        ids.extend(batch_ids)
        hashes.append(np.fromiter(batch_hashes, dtype="int64", count=len(batch)))
        active.append(np.fromiter(batch_active, dtype=bool, count=len(batch)))  # bool, or 0/1 on SQLite
        stale = stale or any(batch_stale)
    return state_frame(ids, np.concatenate(hashes) if hashes else [],
                       np.concatenate(active) if active else []), bool(stale)


def _driver_batches(conn: sa.Connection, query: sa.Select, size: int):
    """The rows of `query` as the driver's plain tuples, `size` at a time, from a server-side cursor on
    PostgreSQL: a million SQLAlchemy rows would cost seconds. Only for columns whose types need no
    result processing (strings, integers, booleans)."""
    compiled = query.compile(dialect=conn.dialect)
    params = {}
    for name, value in compiled.construct_params().items():
        process = compiled.binds[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        params[name] = process(value) if process else value
    if compiled.positional:
        params = tuple(params[name] for name in compiled.positiontup)
    dbapi_connection = conn.connection.dbapi_connection
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg2":
        cursor = dbapi_connection.cursor(name="jobsync_state")
        cursor.itersize = size
    else:
        cursor = dbapi_connection.cursor()
    try:
        cursor.execute(str(compiled), params)
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
        columns = [_column_values(frame[name]) for name in frame.columns]
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
