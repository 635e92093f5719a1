"""A process that opens a SQLite store once a barrier lets it (test_repo's race of openers)."""
from __future__ import annotations


def open_store(url: str, barrier) -> None:
    import sqlalchemy as sa

    from jobsync_pipeline.store.engine import engine_for

    barrier.wait()
    with engine_for(url).connect() as conn:
        conn.execute(sa.text("SELECT 1"))
