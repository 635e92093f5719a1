"""Two syncs of one board at once, in two real processes, on SQLite and on PostgreSQL: the applies (and
the raw archives) of one board are exclusive, so the second waits and finds the first one's result."""
from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from jobsync_pipeline.core.models import Posting, RawPayload, postings_frame
from jobsync_pipeline.core.status import SyncStatus
from jobsync_pipeline.sources.company_files import SOURCE
from jobsync_pipeline.store import engine as engine_module
from jobsync_pipeline.store.apply import BoardBusy
from jobsync_pipeline.store.repo import Store
from jobsync_pipeline.store.tables import job_events, jobs, raw_snapshots, syncs

BOARD = "acme"
N = 2000  # jobs on the board before the contested sync
T1 = datetime(2026, 11, 18, 7, 0, tzinfo=timezone.utc)
T2 = datetime(2026, 11, 21, 7, 0, tzinfo=timezone.utc)
BUSY = f"another sync of {SOURCE}/{BOARD} is running"
SPAWN = multiprocessing.get_context("spawn")


def snapshot(version: int) -> list[Posting]:
    """Version 1: N jobs. Version 2: 900 of them changed, 100 unchanged, 1,000 gone and 100 new."""
    def posting(external_id: str, title: str) -> Posting:
        return Posting(source=SOURCE, board=BOARD, external_id=external_id, title=title, company="Acme")
    if version == 1:
        return [posting(f"j{i:05d}", f"Job {i}") for i in range(N)]
    return ([posting(f"j{i:05d}", f"Job {i} (revised)") for i in range(900)]
            + [posting(f"j{i:05d}", f"Job {i}") for i in range(900, 1000)]
            + [posting(f"n{i:05d}", f"New job {i}") for i in range(100)])


def raw_payload() -> RawPayload:
    return RawPayload(board=BOARD, location=f"bucket/{BOARD}.json", body=b'{"jobs": []}', fetched_at=T2, etag="e2")


# --- the other process --------------------------------------------------------------------------

def _contender(url: str, action: str, sync_id: int, barrier, results) -> None:
    """One sync in its own process: wait at the barrier twice (set up; go), then apply or archive."""
    store = Store(url)
    frame = postings_frame(snapshot(2))
    barrier.wait()
    barrier.wait()
    try:
        if action == "apply":
            diff = store.apply_snapshot(SOURCE, BOARD, [frame], sync_id=sync_id, now=T2)
            results.put(("ok", sync_id, diff.counts()))
        else:
            results.put(("ok", sync_id, store.archive_raw(SOURCE, raw_payload())))
    except BoardBusy as exc:
        store.finish_sync(sync_id, SyncStatus.FAILED, error=str(exc))
        results.put(("busy", sync_id, str(exc)))
    except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
        results.put(("error", sync_id, f"{type(exc).__name__}: {exc}"))


# --- holding a board, as another sync would -------------------------------------------------------

class Holder:
    """Holds the board the way an apply does (PostgreSQL: its advisory lock; SQLite: the writer lock)."""

    def __init__(self, url: str, namespace: str = "jobsync"):
        self.url, self.key = url, f"{namespace}:{SOURCE}:{BOARD}"
        self.postgres = url.startswith("postgresql")

    def __enter__(self) -> "Holder":
        if self.postgres:
            self.engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
            self.conn = self.engine.connect()
            self.conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": self.key})
        else:
            self.raw = sqlite3.connect(sa.make_url(self.url).database, isolation_level=None)
            self.raw.execute("BEGIN IMMEDIATE")
        return self

    def waiting(self) -> int:
        """How many sessions wait for an advisory lock (PostgreSQL only)."""
        with sa.create_engine(self.url, poolclass=sa.pool.NullPool).connect() as conn:
            return conn.scalar(sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))

    def __exit__(self, *_) -> None:
        if self.postgres:
            self.conn.rollback()
            self.conn.close()
            self.engine.dispose()
        else:
            self.raw.rollback()
            self.raw.close()


def contend(url: str, action: str, sync_ids: list[int], *, hold: bool) -> list[tuple]:
    """Run two contenders at once; with `hold`, both start while the board is held, then it is released."""
    barrier, results = SPAWN.Barrier(3), SPAWN.Queue()
    processes = [SPAWN.Process(target=_contender, args=(url, action, sync_id, barrier, results))
                 for sync_id in sync_ids]
    for process in processes:
        process.start()
    try:
        barrier.wait(timeout=60)  # both set up
        if hold:
            namespace = "jobsync" if action == "apply" else "jobsync-raw"
            with (holder := Holder(url, namespace)):
                barrier.wait(timeout=10)
                deadline = time.monotonic() + 15
                if holder.postgres:  # both blocked on the lock: they really overlap
                    while holder.waiting() < 2 and time.monotonic() < deadline:
                        time.sleep(0.05)
                    assert holder.waiting() == 2
                else:
                    time.sleep(1.0)  # both in BEGIN IMMEDIATE's busy wait
        else:
            barrier.wait(timeout=10)
        outcomes = [results.get(timeout=90) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    return sorted(outcomes, key=lambda outcome: outcome[1])


# --- the tests ------------------------------------------------------------------------------------

def loaded(url: str) -> Store:
    store = Store(url)
    store.ensure_boards(SOURCE, [BOARD])
    first = store.start_sync(SOURCE, BOARD, run_id=None)
    store.apply_snapshot(SOURCE, BOARD, [postings_frame(snapshot(1))], sync_id=first, now=T1)
    return store


def event_kinds(store: Store, sync_ids: list[int]) -> Counter:
    with store.engine.connect() as conn:
        return Counter(conn.scalars(sa.select(job_events.c.kind).where(job_events.c.sync_id.in_(sync_ids))))


@pytest.mark.parametrize("hold", [True, False], ids=["held-then-released", "started-together"])
def test_two_processes_applying_one_board_apply_it_once(store_url, hold):
    store = loaded(store_url)
    sync_ids = [store.start_sync(SOURCE, BOARD, run_id=f"run-{i}") for i in range(2)]

    outcomes = contend(store_url, "apply", sync_ids, hold=hold)

    assert [o for o in outcomes if o[0] == "error"] == []  # never a raw database error
    applied = [o[2] for o in outcomes if o[0] == "ok"]
    busy = [o[2] for o in outcomes if o[0] == "busy"]
    assert all(BUSY in reason for reason in busy)
    full = {"new": 100, "changed": 900, "unchanged": 100, "reactivated": 0, "expired": 1000, "already_expired": 0}
    nothing = {"new": 0, "changed": 0, "unchanged": 1100, "reactivated": 0, "expired": 0, "already_expired": 0}
    assert sorted(applied, key=lambda c: -c["new"]) in ([full, nothing], [full])  # the second finds the first's result
    assert event_kinds(store, sync_ids) == Counter(new=100, changed=900, expired=1000)
    with store.engine.connect() as conn:
        statuses = conn.execute(sa.select(syncs.c.status, syncs.c.error).where(syncs.c.id.in_(sync_ids))).all()
        ids = list(conn.scalars(sa.select(jobs.c.external_id).where(jobs.c.board == BOARD)))
        active = conn.scalar(sa.select(sa.func.count()).where(jobs.c.board == BOARD, jobs.c.expired_at.is_(None)))
    assert all(s.status == SyncStatus.SUCCESS or BUSY in s.error for s in statuses)
    assert len(ids) == len(set(ids)) == N + 100
    assert active == 1100


def test_two_processes_archiving_one_payload_store_it_once(store_url):
    store = Store(store_url)
    sync_ids = [store.start_sync(SOURCE, BOARD, run_id=f"run-{i}") for i in range(2)]

    outcomes = contend(store_url, "archive", sync_ids, hold=True)

    assert [o[0] for o in outcomes] == ["ok", "ok"]
    (first_id, first_known), (second_id, second_known) = sorted(o[2] for o in outcomes)
    assert first_id == second_id and sorted([first_known, second_known]) == [False, True]
    with store.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(raw_snapshots)) == 1


def test_a_batch_of_archives_with_a_held_board_archives_board_by_board_on_postgres(postgres_url):
    """A batch never waits inside its transaction for one board: it gives its locks up and archives its
    boards one by one, the held one once it is free."""
    store = Store(postgres_url)
    other = RawPayload(board="other-board", location="bucket/other-board.json", body=b"{}", fetched_at=T2)
    done: list = []
    with (holder := Holder(postgres_url, "jobsync-raw")):
        worker = threading.Thread(target=lambda: done.append(store.archive_raws(SOURCE, [raw_payload(), other])))
        worker.start()
        deadline = time.monotonic() + 15
        while holder.waiting() < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert holder.waiting() == 1 and not done  # waiting for the held board, alone
    worker.join(timeout=30)
    assert [seen for _, seen in done[0]] == [False, False]
    assert store.latest_raw(SOURCE, BOARD).id == done[0][0][0]
    assert store.latest_raw(SOURCE, "other-board").id == done[0][1][0]


def test_a_board_held_past_the_lock_timeout_is_busy_on_postgres(postgres_url):
    store = loaded(postgres_url)
    sync_id = store.start_sync(SOURCE, BOARD, run_id=None)
    started = time.monotonic()
    with Holder(postgres_url), pytest.raises(BoardBusy, match=f"^{BUSY}: waited 0.5 s"):
        store.apply_snapshot(SOURCE, BOARD, [postings_frame(snapshot(2))], sync_id=sync_id, now=T2,
                             lock_timeout=timedelta(seconds=0.5))
    assert time.monotonic() - started < 10
    assert event_kinds(store, [sync_id]) == Counter()  # nothing of it written
    # the lock_timeout was the apply's alone: the pooled session is back to the server's default
    with store.engine.connect() as conn:
        assert conn.scalar(sa.text("SHOW lock_timeout")) == "0"
    diff = store.apply_snapshot(SOURCE, BOARD, [postings_frame(snapshot(2))], sync_id=sync_id, now=T2)
    assert (len(diff.new), len(diff.changed), len(diff.expired)) == (100, 900, 1000)


def test_a_store_locked_past_the_busy_timeout_is_busy_on_sqlite(sqlite_url):
    store = loaded(sqlite_url)
    sync_id = store.start_sync(SOURCE, BOARD, run_id=None)
    short = engine_module._create_engine(sqlite_url)

    @sa.event.listens_for(short, "connect")
    def _short_busy_timeout(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA busy_timeout = 500")

    store.engine = short
    started = time.monotonic()
    try:
        with Holder(sqlite_url), pytest.raises(BoardBusy, match=f"^{BUSY} .*busy timeout"):
            store.apply_snapshot(SOURCE, BOARD, [postings_frame(snapshot(2))], sync_id=sync_id, now=T2)
        assert time.monotonic() - started < 10
        assert event_kinds(store, [sync_id]) == Counter()
        diff = store.apply_snapshot(SOURCE, BOARD, [postings_frame(snapshot(2))], sync_id=sync_id, now=T2)
        assert (len(diff.new), len(diff.changed), len(diff.expired)) == (100, 900, 1000)
    finally:
        short.dispose()
