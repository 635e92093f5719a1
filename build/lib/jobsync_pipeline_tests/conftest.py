"""Shared fixtures: real stores on SQLite and on the PostgreSQL server, and the sample payloads."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from jobsync_pipeline.settings import SAMPLE_BUCKET  # noqa: F401 - the shipped sample snapshots, package data
from jobsync_pipeline.store.engine import dispose, upgrade

# The server CI and developers run (trust auth); never skipped: a missing server is a failure.
POSTGRES_ADMIN_URL = os.environ.get("JOBSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The project's own sample payloads, in the shapes the real APIs send (fixtures/README.md lists them).
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def scratch_default_store(tmp_path_factory, monkeypatch):
    """What a resource left unconfigured falls back to (the store, the HTTP pacing slots) is a scratch
    file, never the developer's data/local."""
    folder = tmp_path_factory.mktemp("default_store")
    monkeypatch.setenv("JOBSYNC_DATABASE_URL", f"sqlite:///{folder / 'jobsync.db'}")


@pytest.fixture
def blank_sqlite_url(tmp_path) -> str:
    """A SQLite store jobsync never upgraded."""
    return f"sqlite:///{tmp_path / 'jobsync.db'}"


@pytest.fixture
def sqlite_url(blank_sqlite_url) -> str:
    """A SQLite store at the newest schema (what `jobsync db upgrade` makes)."""
    upgrade(blank_sqlite_url)
    return blank_sqlite_url


@pytest.fixture
def new_postgres_database():
    """Makes scratch databases on the real server; drops them afterwards."""
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make() -> str:
        name = f"jobsync_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        made.append(name)
        return admin.url.set(database=name).render_as_string(hide_password=False)

    yield make
    for name in made:
        dispose(admin.url.set(database=name).render_as_string(hide_password=False))
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def blank_postgres_url(new_postgres_database) -> str:
    """A scratch PostgreSQL database jobsync never upgraded."""
    return new_postgres_database()


@pytest.fixture
def postgres_url(blank_postgres_url) -> str:
    upgrade(blank_postgres_url)
    return blank_postgres_url


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request) -> str:
    """Each store test runs on both databases the product supports."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(params=["sqlite", "postgres"])
def blank_store_url(request) -> str:
    """A store jobsync never upgraded, on both databases (the migration tests)."""
    return request.getfixturevalue(f"blank_{request.param}_url")
