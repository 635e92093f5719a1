"""Shared fixtures: real stores on SQLite and on the PostgreSQL server, fixtures from ../shared."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from jobsync_pipeline.settings import PROJECT_ROOT

# The server CI and developers run (trust auth); never skipped: a missing server is a failure.
POSTGRES_ADMIN_URL = os.environ.get("JOBSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SAMPLE_BUCKET = PROJECT_ROOT / "data" / "sample_bucket"
# A copy of ../shared/fixtures (the clone CI tests need not sit beside ../shared); refresh it from there.
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'jobsync.db'}"


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
    from jobsync_pipeline.store import repo
    for name in made:
        url = admin.url.set(database=name).render_as_string(hide_password=False)
        engine = repo._engines.pop(url, None)
        if engine is not None:
            engine.dispose()
        repo._migrated.discard(url)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def postgres_url(new_postgres_database) -> str:
    return new_postgres_database()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request) -> str:
    """Each store test runs on both databases the product supports."""
    return request.getfixturevalue(f"{request.param}_url")
