"""A SQLite store's WAL checkpointed on a thread of its own (jobsync_pipeline/store/checkpoint.py)."""
from __future__ import annotations

import os
import threading

import sqlalchemy as sa

from jobsync_pipeline.store import checkpoint
from jobsync_pipeline.store.checkpoint import WalCheckpointer
from jobsync_pipeline.store.engine import dispose, engine_for, wal_checkpointer

ROWS, ROW_BYTES = 2_000, 4_000  # about 8 MB: past SQLite's own autocheckpoint (1,000 pages)


def _write(url: str) -> None:
    with engine_for(url).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS blobs (body BLOB)")
        conn.exec_driver_sql("INSERT INTO blobs (body) VALUES (?)", [(os.urandom(ROW_BYTES),) for _ in range(ROWS)])


def _threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("jobsync-wal-checkpoint")]


def test_a_commit_leaves_its_wal_to_the_checkpointer(tmp_path, monkeypatch):
    """The committing connection does not copy the WAL into the file (SQLite's autocheckpoint is off);
    going back to the pool, it asks the checkpointer to."""
    asked = []
    monkeypatch.setattr(WalCheckpointer, "request", lambda self: asked.append(self.database))
    database = tmp_path / "store.db"
    url = f"sqlite:///{database}"
    _write(url)
    with engine_for(url).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    assert asked and set(asked) == {str(database)}
    assert database.stat().st_size < 1_000_000 < (tmp_path / "store.db-wal").stat().st_size
    wal_checkpointer(url).checkpoint()
    assert database.stat().st_size > ROWS * ROW_BYTES
    with engine_for(url).connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM blobs").scalar() == ROWS
    dispose(url)


def test_the_checkpointers_thread_copies_the_wal_and_ends(tmp_path):
    database = tmp_path / "store.db"
    url = f"sqlite:///{database}"
    _write(url)
    checkpointer = wal_checkpointer(url)
    assert checkpointer.wait(30)
    assert checkpointer.checkpoints >= 1
    assert database.stat().st_size > ROWS * ROW_BYTES
    assert not [t for t in _threads() if t.name.endswith(str(database))]  # an idle store holds no thread
    dispose(url)
    assert wal_checkpointer(url) is None


def test_requests_close_together_share_a_checkpoint_and_close_finishes_them(tmp_path):
    database = tmp_path / "store.db"
    url = f"sqlite:///{database}"
    _write(url)
    wal_checkpointer(url).wait(30)  # the engine's own is not busy with the file
    checkpointer = WalCheckpointer(str(database), min_interval=60)
    for _ in range(10):
        checkpointer.request()
    checkpointer.close(timeout=30)  # does not wait out the interval: it finishes what was asked, now
    assert 1 <= checkpointer.checkpoints <= 2
    assert not [t for t in _threads() if t.name.endswith(str(database))]
    checkpointer.request()  # closed: ignored
    assert checkpointer.wait(1) and not [t for t in _threads() if t.name.endswith(str(database))]
    dispose(url)


def test_a_checkpoint_never_makes_a_missing_file(tmp_path):
    missing = tmp_path / "gone.db"
    WalCheckpointer(str(missing)).checkpoint()
    assert not missing.exists()


def test_the_end_of_a_process_finishes_the_checkpoints_asked_for(tmp_path):
    database = tmp_path / "store.db"
    url = f"sqlite:///{database}"
    engine_for(url)  # the checkpointer exists with its engine
    checkpointer = wal_checkpointer(url)
    assert checkpointer in set(checkpoint._live)
    _write(url)
    checkpoint._finish_checkpoints()  # what atexit runs
    assert database.stat().st_size > ROWS * ROW_BYTES
    dispose(url)


def test_other_databases_have_no_checkpointer(tmp_path, postgres_url):
    assert wal_checkpointer(postgres_url) is None
    engine = engine_for(postgres_url)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    assert wal_checkpointer(postgres_url) is None
    memory = "sqlite://"
    with engine_for(memory).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000  # SQLite's own
    assert wal_checkpointer(memory) is None
    dispose(memory)
