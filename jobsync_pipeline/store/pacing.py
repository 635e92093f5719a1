"""Per-host request slots shared by every process of one jobsync instance, kept beside the store.

`StorePacer` is `sources.pacing.InProcessPacer` with its state in the `host_pacing` table: a request
reserves its host's next slot in one short transaction (the row read under a lock, the slot worked out
by `sources.pacing.reserve_slot`, the row written back, commit) and then sleeps until that slot outside
any transaction. Lanes, discovery and `jobsync boards add` all reserve through it (`HttpResource.client()`),
so the per-host rate holds for every request to a host from any process, while nothing but the HTTP
request itself is paced: parsing and the database apply never wait for a slot.

Where the table lives:
- PostgreSQL: in the store (migration 0006). `SELECT … FOR UPDATE` locks the host's row only.
- SQLite: in a side file, `<store file>.pacing.db`, created on first use. SQLite locks the whole file
  for a writer, and the store's applies hold `BEGIN IMMEDIATE` for seconds: a reservation in the store
  would wait for the apply (and a fetch with it). The side file has its own lock, taken for the
  milliseconds of a reservation; its `BEGIN IMMEDIATE` (engine_for's) is what serializes reservations.
- an in-memory SQLite store: nothing to share (one process); `shared_pacer` returns None.

Clock: `time.time()`, wall-clock epoch seconds, which every process on the machine (and every machine
an NTP-synced PostgreSQL store is shared with) reads alike; a monotonic clock is per machine and boot.
A stored instant more than `CLOCK_STEP` ahead can only come from the wall clock stepping back, and is
forgotten rather than waited for.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateTable

from jobsync_pipeline.sources.pacing import HostSlots, Slot, hold_slots, reserve_slot
from jobsync_pipeline.store.engine import check_schema, engine_for
from jobsync_pipeline.store.tables import host_pacing

SIDE_FILE_SUFFIX = ".pacing.db"
# Further ahead than any queue of waiting requests or honoured Retry-After (120 s by default).
CLOCK_STEP = 3600.0

# built once: a reservation per request, and building them anew cost more than running them
_HOST = sa.select(host_pacing).where(host_pacing.c.host == sa.bindparam("pacing_host"))
_HOST_LOCKED = _HOST.with_for_update()
_WRITE = host_pacing.update().where(host_pacing.c.host == sa.bindparam("pacing_host")).values(
    last_slot_at=sa.bindparam("last"), next_slot_at=sa.bindparam("next"), held_until=sa.bindparam("held"))

_ready: set[str] = set()  # pacing URLs whose table was found (or made) in this process
_ready_lock = threading.Lock()


def pacing_url(store_url: str) -> str | None:
    """The database the store's processes reserve their slots in (see the module doc); None for a
    store only one process can open (in-memory SQLite)."""
    url = sa.make_url(store_url)
    if url.get_backend_name() != "sqlite":
        return store_url
    database = url.database or ""
    if database in ("", ":memory:") or url.query.get("mode") == "memory":
        return None
    # beside the store and named after its whole file name, so two stores never share a side file
    return url.set(database=database + SIDE_FILE_SUFFIX).render_as_string(hide_password=False)


def shared_pacer(store_url: str) -> StorePacer | None:
    """The pacer every process using this store shares, or None when there is nothing to share."""
    return StorePacer(store_url) if pacing_url(store_url) is not None else None


class StorePacer:
    """A `sources.pacing.Pacer` whose slots every process reserving through the same store shares."""

    def __init__(self, store_url: str, *, clock: Callable[[], float] = time.time):
        url = pacing_url(store_url)
        if url is None:
            raise ValueError("an in-memory SQLite store has no other process to share pacing with")
        self.store_url, self.url, self._clock = store_url, url, clock
        self._side_file = url != store_url

    def reserve(self, host: str, interval: float, delay: float = 0.0) -> Slot:
        with self._engine().begin() as conn:
            state, now = self._locked(conn, host)
            at, state = reserve_slot(state, now, interval, delay)
            self._write(conn, host, state)
        # measured after the commit, so the time the commit took is not waited on top
        return Slot(at, max(0.0, at - self._clock()))

    def hold_off(self, host: str, seconds: float) -> None:
        with self._engine().begin() as conn:
            state, now = self._locked(conn, host)
            self._write(conn, host, hold_slots(state, now + seconds))

    def voided(self, host: str, slot: Slot) -> bool:
        with self._engine().begin() as conn:
            held_until = conn.scalar(sa.select(host_pacing.c.held_until).where(host_pacing.c.host == host))
        return held_until is not None and slot.at < held_until <= self._clock() + CLOCK_STEP

    def slots(self, host: str) -> HostSlots | None:
        """The host's stored state (for tests and operators), or None before its first request."""
        with self._engine().begin() as conn:
            row = conn.execute(sa.select(host_pacing).where(host_pacing.c.host == host)).one_or_none()
        return None if row is None else HostSlots(row.last_slot_at, row.next_slot_at, row.held_until)

    # --- the table ---------------------------------------------------------------------------------

    def _engine(self) -> sa.Engine:
        engine = engine_for(self.url)
        if self.url not in _ready:
            if self._side_file:
                # Made here, not by a migration: the side file holds seconds-lived slots and nothing
                # else, so it needs no history (deleting it costs one interval of pacing), and made on
                # first use it needs no `jobsync db upgrade` step. IF NOT EXISTS inside BEGIN IMMEDIATE:
                # two processes starting together both succeed.
                Path(sa.make_url(self.url).database).parent.mkdir(parents=True, exist_ok=True)
                with engine.begin() as conn:
                    conn.execute(CreateTable(host_pacing, if_not_exists=True))
            else:
                check_schema(self.url)  # the table comes with migration 0006: name the fix if it is missing
            with _ready_lock:
                _ready.add(self.url)
        return engine

    def _locked(self, conn: sa.Connection, host: str) -> tuple[HostSlots, float]:
        """The host's state with its row locked until the commit, and the time read after the lock."""
        # SQLite: the transaction's BEGIN IMMEDIATE already excludes writers
        query = _HOST if conn.dialect.name == "sqlite" else _HOST_LOCKED
        row = conn.execute(query, {"pacing_host": host}).one_or_none()
        if row is None:
            insert = (sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert)(host_pacing)
            conn.execute(insert.values(host=host, last_slot_at=0.0, next_slot_at=0.0, held_until=0.0)
                         .on_conflict_do_nothing(index_elements=["host"]))
            row = conn.execute(query, {"pacing_host": host}).one()
        now = self._clock()
        state = HostSlots(row.last_slot_at, row.next_slot_at, row.held_until)
        if max(state.last_slot_at, state.next_slot_at, state.held_until) > now + CLOCK_STEP:
            state = HostSlots()  # the wall clock stepped back: these instants are not waited for
        return state, now

    @staticmethod
    def _write(conn: sa.Connection, host: str, state: HostSlots) -> None:
        conn.execute(_WRITE, {"pacing_host": host, "last": _finite(state.last_slot_at),
                              "next": _finite(state.next_slot_at), "held": _finite(state.held_until)})


def _finite(instant: float) -> float:
    return max(instant, 0.0)  # HostSlots' -inf ("never") is the epoch in the table
