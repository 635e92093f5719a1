"""The snapshot apply: a board's new snapshot diffed against its stored jobs and written, with its
events and its `syncs` row, in one transaction."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from jobsync_pipeline.core.dedupe import compare
from jobsync_pipeline.core.diff import SnapshotDiff, classify, expired_unseen, state_frame
from jobsync_pipeline.core.enrich import DERIVED_COLUMNS, derived_columns
from jobsync_pipeline.core.models import POSTING_COLUMNS, KnownRecords
from jobsync_pipeline.core.status import SyncStatus
from jobsync_pipeline.sources.base import collection_paused
from jobsync_pipeline.store.bulk import EncodedInsert, bulk_insert, encode_insert, read_columns
from jobsync_pipeline.store.engine import defer_checkpoint, release_checkpoint
from jobsync_pipeline.store.read_ahead import read_ahead
from jobsync_pipeline.store.tables import boards, job_events, jobs, possible_duplicates
from jobsync_pipeline.store.time import to_utc, utcnow

if TYPE_CHECKING:
    from jobsync_pipeline.store.repo import Store

_NO_IDS = np.array([], dtype=object)


@dataclass(frozen=True)
class Expiry:
    """A source's snapshot semantics: what makes one of its jobs expire."""

    complete: bool = True  # a snapshot lists every open posting: absent means gone
    max_age: timedelta = timedelta(days=30)  # a feed's job not seen for this long is gone


COMPLETE = Expiry()
# last_seen_at is refreshed at most this often: an unchanged snapshot must write no job rows.
DEFAULT_SEEN_REFRESH = timedelta(days=1)

# How long an apply waits for another apply of the same board on PostgreSQL before giving up with BoardBusy
# (SQLite's writer lock waits for the engine's busy timeout, store.engine).
LOCK_TIMEOUT = timedelta(seconds=300)


class BoardBusy(Exception):
    """Another sync of the board held it longer than the wait allowed; nothing of this one was written."""


class KnownRecordsMoved(Exception):
    """A snapshot's recognised records (`PostingCollector.frame`'s `known`) no longer match the board's jobs:
    another sync wrote them since they were read. Nothing was written; parse the snapshot again."""


class ExpiryRefused(Exception):
    """The guard refused a diff; `verdict` says why. Nothing of the diff was written."""

    def __init__(self, verdict: Any):
        super().__init__(getattr(verdict, "reason", None) or str(verdict))
        self.verdict = verdict


@dataclass(frozen=True)
class Recognised:
    """A snapshot parsed with the board's known records (what `apply_snapshot`'s `chunks` as a function gives):
    its frames, and what the parse found of it, which are known only once it is parsed."""

    chunks: Iterable[pd.DataFrame]
    snapshot_at: datetime | None = None
    listed_ids: Iterable[str] = ()  # as apply_snapshot's


_tmp = sa.MetaData()
# What a written job row holds beyond the store's bookkeeping: the posting and what is derived from it.
WRITTEN_COLUMNS = (*POSTING_COLUMNS[:-1], *DERIVED_COLUMNS, "content_hash", "record_hash")
_POSTED = POSTING_COLUMNS[:-1]  # the posting's columns but its content hash, which is written last
_WRITTEN_AT = {name: position for position, name in enumerate(WRITTEN_COLUMNS)}
_stage = sa.Table(
    "jobsync_stage", _tmp,
    sa.Column("external_id", sa.String(255), primary_key=True),
    *(sa.Column(name, jobs.c[name].type) for name in WRITTEN_COLUMNS if name != "external_id"),
    prefixes=["TEMPORARY"],
)
# a chunk's new jobs on SQLite, staged to be inserted into jobs by one statement (`_insert_staged_new`)
_new_jobs = sa.Table(
    "jobsync_new_jobs", _tmp,
    *(sa.Column(name, jobs.c[name].type) for name in WRITTEN_COLUMNS),
    prefixes=["TEMPORARY"],
)
_diff_keys = sa.Table(
    "jobsync_diff_keys", _tmp,
    sa.Column("external_id", sa.String(255), primary_key=True),
    sa.Column("kind", sa.String(16)),  # an event kind, or 'seen' for a last_seen_at refresh
    sa.Column("reason", sa.String(32)),  # why an expired job expired
    prefixes=["TEMPORARY"],
)
_digests = sa.Table(
    "jobsync_digests", _tmp,
    sa.Column("external_id", sa.String(255), primary_key=True),
    sa.Column("record_hash", sa.BigInteger, nullable=False),
    prefixes=["TEMPORARY"],
)
EVENT_KINDS = ("new", "changed", "reactivated", "expired")
ANALYZE_FROM_ROWS = 100
# A diff touching at most this many jobs binds their ids in its statements instead of a key table.
SMALL_DIFF_KEYS = 500
# On SQLite a chunk with at least this many new jobs stages them and inserts them into jobs in one statement.
# FTS5 flushes its pending index at every statement's savepoint, so an executemany into jobs, whose insert
# trigger indexes each row, writes one index segment per job, which later writes merge again (1M apply:
# 50,000 new jobs took 5.2 s, of which 4 s were the index; staged: 0.5 s into the temporary table, 1.3-1.8 s
# from it into jobs).
STAGE_NEW_FROM = 64

# The statements every apply of a small board runs, built once with their values as parameters: building a
# statement and its cache key anew each time cost more than running it (most of 1.5 ms a board of SQLAlchemy
# Python in a backfill of small boards). `_KEY` binds the board (`_board_key`).
_KEY = (jobs.c.source == sa.bindparam("key_source"), jobs.c.board == sa.bindparam("key_board"))
_NOW = sa.bindparam("now", type_=jobs.c.updated_at.type)
_IDS = sa.bindparam("ids", expanding=True)
_EXPIRE_IDS = jobs.update().where(*_KEY, jobs.c.external_id.in_(_IDS)).values(
    expired_at=_NOW, expired_reason=sa.bindparam("reason"), updated_at=_NOW)
_SEEN_IDS = jobs.update().where(*_KEY, jobs.c.external_id.in_(_IDS)).values(last_seen_at=_NOW)
_EVENTS_OF_IDS = job_events.insert().from_select(
    ["job_id", "sync_id", "kind", "at"],
    sa.select(jobs.c.id, sa.bindparam("event_sync", type_=sa.BigInteger), sa.bindparam("event_kind", type_=sa.String),
              _NOW).where(*_KEY, jobs.c.external_id.in_(_IDS)))
_SNAPSHOT_AT = sa.bindparam("snapshot_at", type_=boards.c.last_snapshot_at.type)
# a board's last snapshot only ever moves forward (a late one applied is recorded stale elsewhere)
_BOARD_APPLIED = boards.update().where(
    boards.c.source == sa.bindparam("key_source"), boards.c.board == sa.bindparam("synced_board")).values(
    last_synced_at=sa.bindparam("synced_at", type_=boards.c.last_synced_at.type),
    last_snapshot_at=sa.case((_SNAPSHOT_AT.is_(None), boards.c.last_snapshot_at),
                             (boards.c.last_snapshot_at.is_(None), _SNAPSHOT_AT),
                             (boards.c.last_snapshot_at < _SNAPSHOT_AT, _SNAPSHOT_AT),
                             else_=boards.c.last_snapshot_at))
# `<` or `>`, not `!=`: two empty ranges of the boards' key instead of a scan of every board of this
# source, per board (0.9 ms a board at 10,000 boards on PostgreSQL)
_OTHER_SOURCES_BOARD = sa.select(boards.c.board).where(
    sa.or_(boards.c.source < sa.bindparam("key_source"), boards.c.source > sa.bindparam("key_source"))).limit(1)
_TRY_LOCK = sa.text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))")
_TRY_LOCKS = sa.text("SELECT bool_and(pg_try_advisory_xact_lock(hashtextextended(k, 0))) "
                     "FROM unnest(CAST(:keys AS text[])) AS k")


def _board_key(source: str, board: str) -> dict[str, str]:
    """The parameters of `_KEY`: the board's jobs."""
    return {"key_source": source, "key_board": board}


def apply_snapshot(store: "Store", source: str, board: str,
                   chunks: Iterable[pd.DataFrame] | Callable[[KnownRecords], Recognised], *, sync_id: int,
                   snapshot_at: datetime | None = None, counts: dict[str, int] | None = None,
                   now: datetime | None = None, seen_refresh: timedelta = DEFAULT_SEEN_REFRESH,
                   guard: Callable[[SnapshotDiff], Any] | None = None, expiry: Expiry = COMPLETE,
                   jobs_board: str | None = None, lock_timeout: timedelta = LOCK_TIMEOUT,
                   listed_ids: Iterable[str] = (), raw_snapshot_id: int | None = None,
                   other_sources: bool | None = None) -> SnapshotDiff:
    """Diff a snapshot against the board's jobs and apply it, with its events and its `syncs` row,
    in one transaction.

    `expiry` is the source's snapshot semantics: a complete snapshot expires the jobs it does not
    list; a feed's expires none by absence, only those past their own expiry date or not seen for
    `expiry.max_age`. `jobs_board` is the board the jobs are kept under when it is not the synced
    one (a feed's tags all list into one catalog).

    `guard` sees the whole diff before any of it is committed and returns a `GuardVerdict` (or None):
    one that is not ok rolls everything back and raises `ExpiryRefused` carrying it; an ok one's
    decision (an accepted shrink, a confirmed empty board) is recorded on the `syncs` row.

    `chunks` are frames of `POSTING_COLUMNS`, unique by external id across all chunks; they are
    consumed once, so a snapshot larger than memory can stream through. `chunks` may also be a function
    of the board's known records (`Store.known_records`), called with those of the state the apply reads
    under its lock, that parses the snapshot (`Recognised`: its snapshot_at and listed_ids then replace
    the arguments): the recognition costs no read of the board of its own (a million jobs: about a
    second), and its known rows cannot have moved. Only rows whose content
    hash differs are written, with their derived columns (`core.enrich`): an unchanged snapshot
    writes no job rows.

    Applies of one board are exclusive: on PostgreSQL the transaction first takes an advisory lock
    keyed on the source and the jobs board, on SQLite the writer lock (BEGIN IMMEDIATE). A second
    apply waits, then diffs against the first one's result; one that waits longer than `lock_timeout`
    (PostgreSQL) or the busy timeout (SQLite) raises `BoardBusy`, having written nothing.

    `listed_ids` are ids the snapshot lists whose records were refused: never expired by it.

    `other_sources`: whether any other source has boards (`has_other_sources`), when the caller read it
    for a batch of boards; None asks here. With none, no cross-source duplicate is looked for.

    A chunk may carry `record_hash` (the digest of each posting's record, kept on the rows written) and
    `known` (`PostingCollector.frame`): a known row is an open job recognised by its record, holding only
    its id and hashes. Each must still be that job, unchanged, or the apply raises `KnownRecordsMoved`,
    having written nothing. A job listed unchanged whose row has no digest yet gets the record's.
    """
    now = to_utc(now) or utcnow()
    snapshot_at = to_utc(snapshot_at)
    where_board = (jobs.c.source == source, jobs.c.board == (jobs_board or board))
    key = _board_key(source, jobs_board or board)
    # the state, the chunks and the diff are freed by reference counting: no cyclic collection
    # while they are built (it traversed the growing state and chunks again and again)
    with board_transaction(store.engine, source, jobs_board or board, lock_timeout) as conn, collection_paused():
        conn.info.pop("jobsync_temporary", None)  # a failed apply's were rolled back with it
        # a large or streamed snapshot on PostgreSQL is prepared a chunk ahead on another thread, and its
        # jobs' ids are read with the state and its new jobs' taken from the sequence, so that its events
        # are written by COPY, not joined back to the jobs
        postgresql, recognised = conn.dialect.name == "postgresql", callable(chunks)
        previous, stale = _previous_state(conn, key, now - seen_refresh, now, expiry,
                                          with_ids=postgresql and (recognised or not _inline(chunks)))
        if recognised:
            parsed = chunks(known_records(previous))
            chunks, snapshot_at, listed_ids = parsed.chunks, to_utc(parsed.snapshot_at), parsed.listed_ids
        inline = _inline(chunks)
        large = postgresql and not inline
        if not inline:
            defer_checkpoint(conn)  # SQLite: a large apply's commit returns before its WAL is checkpointed
        seen = np.zeros(len(previous), dtype=bool)
        result, staged, staged_rows, new_staged = SnapshotDiff(), False, 0, False
        refresh: list[np.ndarray] = []
        undigested: list[pd.DataFrame] = []
        constants = dict(source=source, board=jobs_board or board, first_seen_at=now, last_seen_at=now,
                         updated_at=now)
        prepared = _prepared_chunks(chunks, previous, seen, expiry, now, conn.dialect, constants)
        if large:
            prepared = read_ahead(prepared)  # chunk k+1 parsed, diffed and encoded while chunk k is written
        new_ids: list[np.ndarray] = []
        try:
            for chunk in prepared:
                if chunk.new_staged:
                    new_staged = new_staged or _create(conn, _new_jobs)
                    chunk.new.send(conn)
                elif chunk.new is not None:
                    new = chunk.new
                    if large:
                        new_ids.append(_next_job_ids(conn, chunk.new_rows))
                        new = new.with_first_column("id", new_ids[-1].tolist())
                    new.send(conn)
                if chunk.staged is not None:
                    staged = staged or _create(conn, _stage)
                    chunk.staged.send(conn)
                    staged_rows += chunk.staged_rows
                if chunk.undigested is not None:
                    undigested.append(chunk.undigested)
                if chunk.refresh is not None:
                    refresh.append(chunk.refresh)
                result = result + chunk.part
                del chunk  # not alive while the next one is prepared
        finally:
            prepared.close()  # a failed write stops the preparing too
        listed = list(listed_ids)
        if listed:  # listed but refused (malformed record, readable id): still on the board, not gone
            seen |= previous.index.isin(listed)
        reasons = _expiries(previous, seen, expiry, result.already_expired)
        result = result + SnapshotDiff(expired=np.concatenate(list(reasons.values())))
        verdict = guard(result) if guard else None
        if verdict is not None and not verdict.ok:
            raise ExpiryRefused(verdict)  # rolls the whole apply back: nothing of it is written
        event_ids = _event_job_ids(previous, result, new_ids) if large else None
        del previous, seen
        if staged:
            _analyze(conn, _stage, staged_rows)
            _update_staged(conn, where_board, now)
        if new_staged:
            _insert_staged_new(conn, constants)
        refreshed = np.concatenate(refresh) if refresh else _NO_IDS
        _record_diff(conn, result, reasons, refreshed, where_board, key, sync_id, now, event_ids)
        _fill_digests(conn, where_board, undigested)
        if expiry.complete and (stale or seen_refresh <= timedelta(0)):
            # a full pass over the board's jobs, skipped when the state read found none to refresh
            conn.execute(jobs.update().where(*where_board, jobs.c.expired_at.is_(None),
                                             jobs.c.last_seen_at < now - seen_refresh).values(last_seen_at=now))
        duplicates = _cross_source_duplicates(conn, source, jobs_board or board, sync_id, now, other_sources)
        _drop_created(conn)
        store.finish_sync(sync_id, SyncStatus.SUCCESS, counts={**(counts or {}), **result.counts(), **duplicates},
                          snapshot_at=snapshot_at, expiry_guard=getattr(verdict, "decision", None),
                          raw_snapshot_id=raw_snapshot_id, conn=conn)
        conn.execute(_BOARD_APPLIED, {"key_source": source, "synced_board": board, "synced_at": now,
                                      "snapshot_at": snapshot_at})
    return result


@contextmanager
def board_transaction(engine: sa.Engine, source: str, board: str, lock_timeout: timedelta = LOCK_TIMEOUT,
                      *, namespace: str = "jobsync") -> Iterator[sa.Connection]:
    """A transaction no other one with the same namespace, source and board runs alongside.

    PostgreSQL: a transaction-scoped advisory lock, taken before anything is read, waited for at most
    `lock_timeout`. SQLite: the writer lock BEGIN IMMEDIATE takes, waited for the busy timeout.
    Either wait running out raises `BoardBusy`.
    """
    with engine.connect() as conn:
        try:
            transaction = conn.begin()
        except sa.exc.OperationalError as exc:
            if conn.dialect.name == "sqlite" and "database is locked" in str(exc.orig):
                raise BoardBusy(f"another sync of {source}/{board} is running (the SQLite store stayed "
                                f"locked by another writer past its busy timeout); try again later") from exc
            raise
        try:
            with transaction:
                if conn.dialect.name == "postgresql":
                    _advisory_lock(conn, f"{namespace}:{source}:{board}", source, board, lock_timeout)
                yield conn
        finally:
            release_checkpoint(conn)  # after the commit, of a transaction that deferred its checkpoint


def try_advisory_locks(conn: sa.Connection, keys: list[str]) -> bool:
    """Take the transaction-scoped advisory locks of `keys` (PostgreSQL) in one statement, waiting for none:
    False when another transaction holds any of them (those taken are held until the rollback)."""
    return bool(conn.scalar(_TRY_LOCKS, {"keys": sorted(keys)}))


def _advisory_lock(conn: sa.Connection, key: str, source: str, board: str, lock_timeout: timedelta) -> None:
    """Wait at most `lock_timeout` for the key's advisory lock, then put the session's lock_timeout back."""
    if conn.scalar(_TRY_LOCK, {"key": key}):
        return  # nobody held it (nearly always): one statement instead of four
    previous = conn.scalar(sa.text("SELECT current_setting('lock_timeout')"))
    conn.execute(sa.text("SELECT set_config('lock_timeout', :wait, true)"),
                 {"wait": f"{max(1, round(lock_timeout.total_seconds() * 1000))}ms"})
    try:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})
    except sa.exc.OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) == "55P03":  # lock_not_available: the lock_timeout ran out
            raise BoardBusy(f"another sync of {source}/{board} is running: waited {lock_timeout.total_seconds():g} s "
                            "for it to finish; try again later") from exc
        raise
    conn.execute(sa.text("SELECT set_config('lock_timeout', :wait, true)"), {"wait": previous})


# On PostgreSQL, a snapshot given as frames of at most this many rows in all is prepared and written on
# one thread (most boards); a larger one, or one streamed, is prepared on a thread of its own, a chunk
# ahead, while psycopg2 sends COPY blocks without holding the GIL. Not on SQLite: sqlite3 takes the GIL
# back for every row of an executemany, so the two threads take turns (1M: 22.6 s read ahead, 21.1-22.5 s
# inline).
INLINE_ROWS = 5_000
# A larger frame is prepared and written in slices of this many rows, so that its slices overlap too.
SLICE_ROWS = 25_000


@dataclass(frozen=True)
class _PreparedChunk:
    """A chunk of a snapshot diffed against the board's state, its rows to write encoded."""

    part: SnapshotDiff  # its diff (a feed's: with the postings it listed past their expiry date)
    new: EncodedInsert | None  # its new jobs
    new_rows: int
    new_staged: bool  # its new jobs are for `_new_jobs`, not jobs
    staged: EncodedInsert | None  # its changed and reactivated jobs, for the staging table
    staged_rows: int
    undigested: pd.DataFrame | None  # `_check_digests`' rows whose jobs have no digest yet
    refresh: np.ndarray | None  # a feed's jobs listed unchanged whose last_seen_at is stale


def _prepared_chunks(chunks: Iterable[pd.DataFrame], previous: pd.DataFrame, seen: np.ndarray, expiry: Expiry,
                     now: datetime, dialect: sa.Dialect, constants: dict) -> Iterator[_PreparedChunk]:
    """The snapshot's chunks diffed against `previous` (marking what they list in `seen`) and encoded for
    writing: everything of the apply but the writes, which need the connection."""
    for chunk in _sliced(chunks):
        already = SnapshotDiff()
        if not expiry.complete:
            chunk, past = _listed(chunk, now)
            already = SnapshotDiff(already_expired=past)
        positions = previous.index.get_indexer(chunk["external_id"].to_numpy(dtype=object))
        part = classify(previous, chunk, seen=seen, positions=positions)
        undigested = _check_digests(previous, chunk, positions) if "record_hash" in chunk else None
        ids = chunk["external_id"]
        new, new_staged = None, dialect.name == "sqlite" and len(part.new) >= STAGE_NEW_FROM
        if len(part.new):
            written = _written(chunk.loc[ids.isin(part.new)])
            new = encode_insert(dialect, _new_jobs, written) if new_staged else encode_insert(
                dialect, jobs, written, **constants)
        staged, staged_rows = None, 0
        if len(part.changed) or len(part.reactivated):
            touched = ids.isin(np.concatenate([part.changed, part.reactivated]))
            staged, staged_rows = encode_insert(dialect, _stage, _written(chunk.loc[touched])), int(touched.sum())
        refresh = None
        if not expiry.complete and len(part.unchanged):
            refresh = part.unchanged[previous["stale"].to_numpy()[previous.index.get_indexer(part.unchanged)]]
        del chunk, ids, positions  # not alive while the source produces the next chunk
        yield _PreparedChunk(already + part, new, len(part.new), new_staged, staged, staged_rows, undigested,
                             refresh)


def _sliced(chunks: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for chunk in chunks:
        if len(chunk) <= SLICE_ROWS:
            yield chunk
        else:
            for start in range(0, len(chunk), SLICE_ROWS):
                yield chunk.iloc[start:start + SLICE_ROWS]


def _inline(chunks: Iterable[pd.DataFrame]) -> bool:
    return isinstance(chunks, (list, tuple)) and sum(len(chunk) for chunk in chunks) <= INLINE_ROWS


# The written columns SQLite's indexes hold (ix_jobs_dedupe_key, ix_jobs_company_key, ix_jobs_open_newest's
# posted_date; that index is also on expired_at IS NULL, which `_update_staged` adds): an UPDATE that sets
# one of them rewrites its index entries, changed or not.
_INDEXED = ("dedupe_key", "company_key", "posted_date")


def _update_staged(conn: sa.Connection, where_board, now: datetime) -> None:
    """The staged changed and reactivated jobs written over their rows. On SQLite, in two statements: every
    column but the indexed ones, then those only where they differ (a reactivated job, a new title or
    date), so that a changed description does not rewrite three index entries (30,000 changed jobs of a
    1M board: 1.3-2.0 s instead of 2.8-3.1 s)."""
    # the IN lets SQLite walk the staged ids through the jobs index instead of all the board's jobs
    staged = (*where_board, jobs.c.external_id == _stage.c.external_id,
              jobs.c.external_id.in_(sa.select(_stage.c.external_id)))
    values = {name: _stage.c[name] for name in WRITTEN_COLUMNS if name != "external_id"}
    values.update(updated_at=now, last_seen_at=now, expired_at=None, expired_reason=None)
    if conn.dialect.name != "sqlite":
        conn.execute(jobs.update().where(*staged).values(values))
        return
    indexed = (*_INDEXED, "expired_at", "expired_reason")
    conn.execute(jobs.update().where(*staged).values({k: v for k, v in values.items() if k not in indexed}))
    differs = [jobs.c[name].is_distinct_from(_stage.c[name]) for name in _INDEXED]
    conn.execute(jobs.update().where(*staged, sa.or_(jobs.c.expired_at.is_not(None), jobs.c.expired_reason.is_not(None),
                                                     *differs))
                 .values({k: v for k, v in values.items() if k in indexed}))


def _insert_staged_new(conn: sa.Connection, constants: dict) -> None:
    """The staged new jobs (`_new_jobs`) inserted into jobs by one statement, in the snapshot's order."""
    conn.execute(jobs.insert().from_select(
        [*WRITTEN_COLUMNS, *constants],
        sa.select(*_new_jobs.c, *(sa.literal(value, jobs.c[name].type) for name, value in constants.items()))))


def _record_diff(conn: sa.Connection, result: SnapshotDiff, reasons: dict[str, np.ndarray],
                 refreshed: np.ndarray, where_board, key: dict[str, str], sync_id: int, now: datetime,
                 event_ids: pd.DataFrame | None = None) -> None:
    """Expire the jobs that went, refresh the feed jobs seen again, and write one event per touched
    job, set-based from one key table; with `event_ids` (the touched jobs' ids and event kinds, known
    from the state and the new jobs' sequence) the events are inserted as they are."""
    kinds = ("new", "changed", "reactivated")
    touched = sum(len(getattr(result, kind)) for kind in kinds) + len(result.expired) + len(refreshed)
    if not touched:
        return
    if touched <= SMALL_DIFF_KEYS:
        _record_small_diff(conn, result, reasons, refreshed, key, sync_id, now)
        return
    _create(conn, _diff_keys)
    # with the events' job ids known, the table holds only the keys the updates below need
    parts = [] if event_ids is not None else [(getattr(result, kind), kind, None) for kind in kinds]
    parts += [(ids, "expired", reason) for reason, ids in reasons.items()]
    parts.append((refreshed, "seen", None))
    keys = pd.DataFrame({
        "external_id": np.concatenate([ids for ids, _, _ in parts]),
        "kind": np.repeat(np.array([kind for _, kind, _ in parts], dtype=object), [len(ids) for ids, _, _ in parts]),
        "reason": np.repeat(np.array([reason for _, _, reason in parts], dtype=object),
                            [len(ids) for ids, _, _ in parts])})
    bulk_insert(conn, _diff_keys, keys)
    _analyze(conn, _diff_keys, len(keys))
    for reason, ids in reasons.items():
        if len(ids):
            conn.execute(jobs.update().where(*where_board, jobs.c.external_id.in_(
                sa.select(_diff_keys.c.external_id).where(_diff_keys.c.kind == "expired",
                                                          _diff_keys.c.reason == reason))).values(
                    expired_at=now, expired_reason=reason, updated_at=now))
    if len(refreshed):
        conn.execute(jobs.update().where(*where_board, jobs.c.external_id.in_(
            sa.select(_diff_keys.c.external_id).where(_diff_keys.c.kind == "seen"))).values(last_seen_at=now))
    if event_ids is not None:
        bulk_insert(conn, job_events, event_ids, sync_id=sync_id, at=now)
        return
    conn.execute(job_events.insert().from_select(
        ["job_id", "sync_id", "kind", "at"],
        sa.select(jobs.c.id, sa.literal(sync_id, sa.BigInteger), _diff_keys.c.kind,
                  sa.literal(now, jobs.c.updated_at.type))
        .join(_diff_keys, jobs.c.external_id == _diff_keys.c.external_id)
        .where(*where_board, _diff_keys.c.kind.in_(EVENT_KINDS),
               jobs.c.external_id.in_(sa.select(_diff_keys.c.external_id)))))




def _record_small_diff(conn: sa.Connection, result: SnapshotDiff, reasons: dict[str, np.ndarray],
                       refreshed: np.ndarray, key: dict[str, str], sync_id: int, now: datetime) -> None:
    """`_record_diff` of a diff of a few keys (most syncs of most boards): the ids bound in the statements
    themselves, no key table to create, fill and drop."""
    for reason, ids in reasons.items():
        if len(ids):
            conn.execute(_EXPIRE_IDS, {**key, "ids": ids.tolist(), "now": now, "reason": reason})
    if len(refreshed):
        conn.execute(_SEEN_IDS, {**key, "ids": refreshed.tolist(), "now": now})
    for kind in EVENT_KINDS:
        if len(ids := getattr(result, kind)):
            conn.execute(_EVENTS_OF_IDS, {**key, "ids": ids.tolist(), "now": now, "event_sync": sync_id,
                                          "event_kind": kind})


def _next_job_ids(conn: sa.Connection, count: int) -> np.ndarray:
    """`count` ids for new jobs, taken from the jobs' id sequence (PostgreSQL) as inserts take theirs."""
    return np.fromiter(conn.scalars(sa.text("SELECT nextval(pg_get_serial_sequence('jobs', 'id')) "
                                            "FROM generate_series(1, :count)"), {"count": count}),
                       dtype=np.int64, count=count)


def _event_job_ids(previous: pd.DataFrame, result: SnapshotDiff, new_ids: list[np.ndarray]) -> pd.DataFrame:
    """The job id and event kind of every job the diff touches, from the state's ids and the new jobs'."""
    state_ids = previous["id"].to_numpy()
    parts = {"new": np.concatenate(new_ids) if new_ids else np.zeros(0, dtype=np.int64)}
    for kind in ("changed", "reactivated", "expired"):
        parts[kind] = state_ids[previous.index.get_indexer(getattr(result, kind))]
    return pd.DataFrame({"job_id": np.concatenate(list(parts.values())),
                         "kind": np.repeat(np.array(list(parts), dtype=object), [len(ids) for ids in parts.values()])})


def known_records(previous: pd.DataFrame) -> KnownRecords:
    """The known records of a board's state (`_previous_state`): its open jobs that hold a record's digest,
    as `Store.known_records` reads them."""
    known = previous["active"].to_numpy() & (previous["record_hash"].to_numpy() != 0)
    return KnownRecords.of(previous["record_hash"].to_numpy()[known], previous.index.to_numpy(dtype=object)[known],
                           previous["content_hash"].to_numpy()[known])


def _check_digests(previous: pd.DataFrame, chunk: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """Raise `KnownRecordsMoved` unless every known row of the chunk is an open job whose row holds its
    record's digest; the rows listed unchanged whose jobs have no digest yet, with their record's."""
    digests = chunk["record_hash"].to_numpy(dtype=np.int64)
    listed = positions >= 0
    stored = np.zeros(len(chunk), dtype=np.int64)  # 0: none (a NULL, read as 0)
    stored[listed] = previous["record_hash"].to_numpy()[positions[listed]]
    active = np.zeros(len(chunk), dtype=bool)
    active[listed] = previous["active"].to_numpy()[positions[listed]]
    if "known" in chunk and (chunk["known"].to_numpy(dtype=bool) & ~(active & (stored == digests))).any():
        raise KnownRecordsMoved("the board's jobs changed since its known records were read")
    same = np.zeros(len(chunk), dtype=bool)
    same[listed] = previous["content_hash"].to_numpy()[positions[listed]] == chunk["content_hash"].to_numpy(
        dtype=np.int64)[listed]
    fill = same & active & (stored == 0)  # a reactivated job is written in full, with its digest
    return pd.DataFrame({"external_id": chunk["external_id"].to_numpy(dtype=object)[fill], "record_hash": digests[fill]})


def _fill_digests(conn: sa.Connection, where_board, undigested: list[pd.DataFrame]) -> None:
    """Give the open jobs listed unchanged, whose rows have no digest yet, their record's (once: a job
    written before digests were kept, or by a sync that parsed without them)."""
    rows = pd.concat(undigested, ignore_index=True) if undigested else None
    if rows is None or rows.empty:
        return
    _create(conn, _digests)
    bulk_insert(conn, _digests, rows)
    _analyze(conn, _digests, len(rows))
    conn.execute(jobs.update().where(*where_board, jobs.c.external_id == _digests.c.external_id,
                                     jobs.c.external_id.in_(sa.select(_digests.c.external_id)))
                 .values(record_hash=_digests.c.record_hash))


def has_other_sources(conn: sa.Connection, source: str) -> bool:
    """Whether any source but `source` has boards: until one has, no job has a duplicate to look for."""
    return conn.scalar(_OTHER_SOURCES_BOARD, {"key_source": source}) is not None


def _cross_source_duplicates(conn: sa.Connection, source: str, board: str, sync_id: int,
                             now: datetime, other_sources: bool | None = None) -> dict[str, int]:
    """How many jobs this sync wrote that another source lists too (same dedupe key: one canonical
    job), and the weaker pairs recorded in `possible_duplicates` for tuning the rule from data.

    Only the rows the sync wrote are compared, each with the active jobs of other sources at the
    same company, so an unchanged board costs one empty query. `other_sources`: `has_other_sources`, if
    the caller knows it (a lane reads it once per batch of boards: a source whose first boards arrive
    meanwhile compares its own jobs with these when it syncs them).
    """
    if not (has_other_sources(conn, source) if other_sources is None else other_sources):
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


def _listed(chunk: pd.DataFrame, now: datetime) -> tuple[pd.DataFrame, np.ndarray]:
    """A feed chunk without the postings whose own expiry date has passed (they are gone, not new), and
    those postings' ids."""
    through = pd.to_datetime(chunk["valid_through"], utc=True, errors="coerce", format="ISO8601")
    past = (through < now).to_numpy()
    return chunk[~past], chunk["external_id"].to_numpy(dtype=object)[past]


def _expiries(previous: pd.DataFrame, seen: np.ndarray, expiry: Expiry,
              listed_past: np.ndarray = _NO_IDS) -> dict[str, np.ndarray]:
    """The active jobs a snapshot expires, by reason. `listed_past`: ids a feed listed past their own
    expiry date, which expire whatever expiry date the store had for them."""
    if expiry.complete:
        return {"absent": expired_unseen(previous, seen)}
    unseen = previous["active"].to_numpy() & ~seen
    stated = previous["past_expiry"].to_numpy().copy()
    if len(listed_past):
        stated[previous.index.isin(listed_past)] = True
    past = unseen & stated
    old = unseen & ~past & previous["too_old"].to_numpy()
    return {"past_expiry": previous.index[past].to_numpy(dtype=object),
            "too_old": previous.index[old].to_numpy(dtype=object)}


def _written(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows as the store writes them: the posting's columns, its derived ones, store types.

    Built as one block of objects: pandas' per-column work (a concat, a column set, a selection, a
    column's inferred type) was most of the cost for a board of a few rows."""
    out = np.empty((len(rows), len(WRITTEN_COLUMNS)), dtype=object)
    out[:, :len(_POSTED)] = rows.to_numpy(dtype=object)[:, rows.columns.get_indexer(_POSTED)]
    for name, values in derived_columns(rows).items():
        out[:, _WRITTEN_AT[name]] = values
    out[:, _WRITTEN_AT["valid_through"]] = [None if v is None else to_utc(datetime.fromisoformat(v))
                                            for v in out[:, _WRITTEN_AT["valid_through"]]]
    out[:, _WRITTEN_AT["content_hash"]] = rows["content_hash"].to_numpy()
    # a source whose records are not digested leaves it empty
    out[:, _WRITTEN_AT["record_hash"]] = rows["record_hash"].to_numpy() if "record_hash" in rows else None
    return pd.DataFrame(out, columns=list(WRITTEN_COLUMNS), dtype=object, copy=False)


def _create(conn: sa.Connection, table: sa.Table) -> bool:
    """Create a temporary table for this apply. Not `checkfirst`: an apply drops what it created, and a
    failed one's transaction rolls its creation back, so it never exists yet; asking costs a catalog
    query each time, which a backfill of thousands of small boards pays per board."""
    table.create(conn, checkfirst=False)
    conn.info.setdefault("jobsync_temporary", []).append(table)
    return True


def _drop_created(conn: sa.Connection) -> None:
    for table in conn.info.pop("jobsync_temporary", []):
        table.drop(conn, checkfirst=False)


def _analyze(conn: sa.Connection, table: sa.Table, rows: int) -> None:
    """Statistics for a filled key table on PostgreSQL, which has none for temporary tables: without
    them it plans for a handful of rows and joins thousands by nested index lookups (a handful it
    plans for right, and the ANALYZE would cost more than it saves). Only the id, which the joins use,
    is sampled: the staged rows' descriptions made it a tenth of a second per 10,000 rows."""
    if conn.dialect.name == "postgresql" and rows >= ANALYZE_FROM_ROWS:
        conn.exec_driver_sql(f"ANALYZE {conn.dialect.identifier_preparer.format_table(table)} (external_id)")


def _previous_state(conn: sa.Connection, key: dict[str, str], stale_before: datetime, now: datetime,
                    expiry: Expiry, *, with_ids: bool = False) -> tuple[pd.DataFrame, bool]:
    """The board's (`_board_key`) stored state for the diff engine, read into columns (no row objects kept),
    and whether any active job was last seen before `stale_before`. A feed's state also has, per job,
    `stale`, `past_expiry` and `too_old` (the source's expiry date passed; not seen for max_age). With
    `with_ids`, each job's `id` too."""
    params = {**key, "stale_before": stale_before}
    if not expiry.complete:
        params.update(state_now=now, too_old_before=now - expiry.max_age)
    query, integers, flags = _state_query(expiry.complete, with_ids)
    ids, hashes, digests, *rest = read_columns(conn, query, flags, integers=integers, params=params)
    job_ids = rest.pop(0) if with_ids else None
    active_flags, stale, *feed = rest
    columns = {"record_hash": digests}  # 0: none
    if with_ids:
        columns["id"] = job_ids
    if not expiry.complete:
        columns.update(stale=stale, past_expiry=feed[0], too_old=feed[1])
    return state_frame(ids, hashes, active_flags, **columns), bool(stale.any())


@lru_cache(maxsize=None)
def _state_query(complete: bool, with_ids: bool) -> tuple[sa.Select, int, int]:
    """`_previous_state`'s query (built once, as the statements above), with its numbers of integer columns
    and of flags for `read_columns`: ids, content hashes, digests, [job ids], the active flag, the stale
    flag, and a feed's past_expiry and too_old flags."""
    active = jobs.c.expired_at.is_(None)
    flags = [sa.and_(active, jobs.c.last_seen_at < sa.bindparam("stale_before", type_=jobs.c.last_seen_at.type))]
    if not complete:
        flags += [sa.and_(active, jobs.c.valid_through.is_not(None),
                          jobs.c.valid_through < sa.bindparam("state_now", type_=jobs.c.valid_through.type)),
                  sa.and_(active, jobs.c.last_seen_at < sa.bindparam("too_old_before", type_=jobs.c.last_seen_at.type))]
    numbers = [jobs.c.content_hash, sa.func.coalesce(jobs.c.record_hash, 0), *([jobs.c.id] if with_ids else [])]
    return sa.select(jobs.c.external_id, *numbers, active, *flags).where(*_KEY), len(numbers), 1 + len(flags)
