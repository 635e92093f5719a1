"""A SQLite store's WAL copied into its database file on a thread of its own, as PostgreSQL's checkpointer
does, instead of by whichever commit crosses SQLite's autocheckpoint threshold.

SQLite's automatic checkpoint runs inside the committing `COMMIT`: a transaction that wrote 600 MB of
WAL (an apply of a 1M-posting snapshot) then waits 1.7-2.0 s for those pages to be copied and synced
into the database file, after its own work is durable. The store's connections turn it off
(`PRAGMA wal_autocheckpoint=0`) and hand the copying to a `WalCheckpointer`, woken whenever a connection
goes back to the pool: the commit returns, and the copy overlaps what the process does next (the next
board, a step's bookkeeping). A checkpoint is PASSIVE: it never waits for, or blocks, readers and writers.
Before the process exits, the checkpoint under way (and one asked for) is finished."""
from __future__ import annotations

import atexit
import logging
import os
import sqlite3
import threading
import weakref
from pathlib import Path

log = logging.getLogger(__name__)

# Checkpoints of one file are at least this far apart: the commits of many small boards share one.
MIN_INTERVAL_SECONDS = 0.5
# How long the end of a process waits for the checkpoint under way (one left undone is safe: the WAL
# stays, and the next checkpoint of the file, in any process, copies it).
EXIT_WAIT_SECONDS = 300.0

_live: weakref.WeakSet[WalCheckpointer] = weakref.WeakSet()


class WalCheckpointer:
    """Checkpoints one SQLite database file on a daemon thread, at most every `min_interval` seconds,
    after `request` is called. The thread ends once nothing more was asked for; the next request starts
    another (an idle store holds no thread)."""

    def __init__(self, database: str, *, min_interval: float = MIN_INTERVAL_SECONDS):
        self.database = database
        # mode=rw: a file deleted meanwhile (a scratch store) is not made again, empty
        self._uri = f"{Path(database).resolve().as_uri()}?mode=rw"
        self.min_interval = min_interval
        self.checkpoints = 0  # completed, for tests and benchmarks
        self._condition = threading.Condition()
        self._requested = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        _live.add(self)

    def request(self) -> None:
        """Ask for a checkpoint soon (cheap: called each time a connection goes back to the pool)."""
        with self._condition:
            if self._closed:
                return
            self._requested = True
            if self._thread is None or self._pid != os.getpid():  # a forked process has not the thread
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name=f"jobsync-wal-checkpoint:{self.database}")
                self._thread.start()
            self._condition.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no checkpoint is asked for or under way; False if `timeout` ran out first."""
        with self._condition:
            if self._pid != os.getpid():
                return True
            return self._condition.wait_for(lambda: self._thread is None, timeout)

    def close(self, timeout: float | None = EXIT_WAIT_SECONDS) -> None:
        """Finish what was asked for; later requests are ignored."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        self.wait(timeout)

    def checkpoint(self) -> None:
        """One PASSIVE checkpoint of the file, on a connection of its own."""
        try:
            connection = sqlite3.connect(self._uri, uri=True, timeout=5)
            try:
                busy, _, _ = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            finally:
                connection.close()
        except sqlite3.Error as exc:  # the file gone, or not a database yet: nothing to copy
            log.debug("WAL checkpoint of %s not done: %s", self.database, exc)
            return
        if not busy:
            self.checkpoints += 1

    def _loop(self) -> None:
        while True:
            with self._condition:
                if not self._requested:
                    self._thread = None  # ends; the next request starts another
                    self._condition.notify_all()
                    return
                self._requested = False
            try:
                self.checkpoint()
            except Exception:  # noqa: BLE001 - the thread must end cleanly; the next request tries again
                log.warning("WAL checkpoint of %s failed", self.database, exc_info=True)
            with self._condition:  # the commits of the next moments share the next checkpoint
                self._condition.wait_for(lambda: self._closed, self.min_interval)


@atexit.register
def _finish_checkpoints() -> None:
    for checkpointer in list(_live):
        checkpointer.close()
