"""Engines and the schema: one engine per URL per process, migrations run by an explicit step, and a
check that tells an out-of-date store apart from a broken one."""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from contextlib import suppress
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Our own version table: the store may share a database with Dagster's instance, which has alembic_version.
VERSION_TABLE = "jobsync_alembic_version"
UPGRADE_COMMAND = "jobsync db upgrade"

log = logging.getLogger(__name__)

_engines: dict[str, sa.Engine] = {}
_current: set[str] = set()  # URLs whose schema was found (or made) current in this process
_lock = threading.Lock()


class SchemaOutOfDate(Exception):
    """The store's schema is not the one this jobsync needs; the message names the command that fixes it."""


def masked(url: str | sa.URL) -> str:
    """A database URL fit to print: the password, if any, replaced by ***."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown without whatever follows a scheme's "//"
        text = str(url)
        return text.split("//", 1)[0] + "//…" if "//" in text else text


def engine_for(url: str) -> sa.Engine:
    """One engine per URL per process (engines own connection pools)."""
    with _lock:
        if url not in _engines:
            _engines[url] = _create_engine(url)
        return _engines[url]


def dispose(url: str) -> None:
    """Close the URL's engine and forget its schema check (a dropped scratch database, a test)."""
    with _lock:
        engine = _engines.pop(url, None)
        _current.discard(url)
    if engine is not None:
        engine.dispose()


def _create_engine(url: str) -> sa.Engine:
    if not url.startswith("sqlite"):
        # psycopg2 runs an UPDATE's executemany (a batch of boards' step changes) as one round trip per row
        # unless batched; INSERTs are SQLAlchemy's multi-row VALUES either way
        batched = {"executemany_mode": "values_plus_batch"} if sa.make_url(url).get_driver_name() == "psycopg2" else {}
        return sa.create_engine(url, pool_pre_ping=True, **batched)
    database = sa.make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)  # the local default's data/local/, on first use
    engine = sa.create_engine(url, connect_args={"timeout": 60})

    @sa.event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record):
        # pysqlite opens transactions lazily and outside our control; let SQLAlchemy's BEGIN rule.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        _wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection):
        # IMMEDIATE takes the write lock up front, so a read-then-write apply cannot be overtaken.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _wal(cursor, attempts: int = 100) -> None:
    """Put the file in WAL mode. Switching takes the file's exclusive lock, and SQLite answers "database
    is locked" at once (no busy wait) when another process opens the same new file at that moment
    (two `jobsync` processes sharing a fresh pacing file): try again for a few seconds."""
    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05)


# SQLite's default: a commit that leaves the WAL longer than this many pages checkpoints it.
WAL_AUTOCHECKPOINT_PAGES = 1000
_CHECKPOINT_DEFERRED = "jobsync_checkpoint_deferred"
_checkpoints: list[threading.Thread] = []


def defer_checkpoint(conn: sa.Connection) -> None:
    """SQLite: the commit of `conn`'s transaction leaves the WAL as it is, and a thread of its own checkpoints
    it just after (`release_checkpoint`). For a transaction that writes hundreds of MB of WAL (a large
    snapshot's apply), the checkpoint otherwise runs inside the commit (1M jobs: about 2 s of it), where
    PostgreSQL's checkpointer does the same work in the background. Not for every transaction: with
    checkpoints deferred for all of them the WAL grows between checkpoints, and every read searches a longer
    WAL index (a backfill of 1,000 small boards: 72-76 boards/s went to 61-62)."""
    if conn.dialect.name == "sqlite" and not conn.info.get(_CHECKPOINT_DEFERRED):
        conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
        conn.info[_CHECKPOINT_DEFERRED] = True


def release_checkpoint(conn: sa.Connection) -> None:
    """After the transaction of a connection `defer_checkpoint` marked (committed or not): its commits
    checkpoint again, and a thread checkpoints what it left. A connection whose setting cannot be put back
    is closed rather than pooled."""
    if not conn.info.pop(_CHECKPOINT_DEFERRED, False):
        return
    try:
        conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    except sa.exc.SQLAlchemyError:  # a connection the failed transaction broke: not raised over its error
        with suppress(sa.exc.SQLAlchemyError):
            conn.invalidate()
    # not a daemon: the process finishes the checkpoint before it exits
    thread = threading.Thread(target=_checkpoint, args=(conn.engine,), name="jobsync-wal-checkpoint")
    with _lock:
        _checkpoints[:] = [t for t in _checkpoints if t.is_alive()]
        _checkpoints.append(thread)
    thread.start()


def wait_for_checkpoints() -> None:
    """Return once the checkpoints `release_checkpoint` started have finished."""
    with _lock:
        pending = list(_checkpoints)
    for thread in pending:
        thread.join()


def _checkpoint(engine: sa.Engine) -> None:
    # PASSIVE: copies what it can without waiting for readers or writers, who go on meanwhile; what it
    # cannot, a later commit's own checkpoint does
    try:
        connection = engine.raw_connection()  # no transaction: SQLite checkpoints only outside one
        try:
            connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            connection.close()
    except Exception as exc:  # noqa: BLE001 - nothing is lost: the WAL holds the commits, a later commit checkpoints
        log.warning("the checkpoint after a large apply to %s failed: %s", masked(engine.url), exc)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    """The store's schema revision, or None for a database jobsync never upgraded."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(VERSION_TABLE):
            return None
        return conn.scalar(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))


def upgrade(url: str, revision: str = "head") -> tuple[str | None, str]:
    """Bring the store's schema to `revision` (idempotent); returns the revisions before and after."""
    engine = engine_for(url)
    before = current_revision(engine)
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    after = current_revision(engine)
    if revision == "head":
        with _lock:
            _current.add(url)
    return before, after


def check_schema(url: str) -> None:
    """Raise SchemaOutOfDate unless the store is at the newest migration (read once per process and URL)."""
    if url in _current:
        return
    current, head = current_revision(engine_for(url)), head_revision()
    if current != head:
        state = "has no jobsync schema yet" if current is None else f"is at schema {current}, this jobsync needs {head}"
        raise SchemaOutOfDate(f"the store {masked(url)} {state}: run `{UPGRADE_COMMAND}`")
    with _lock:
        _current.add(url)
