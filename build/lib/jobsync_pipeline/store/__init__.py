"""The system of record: SQLAlchemy Core tables, Alembic migrations, and the repository over them."""
from jobsync_pipeline.store.repo import Store, SyncResult

__all__ = ["Store", "SyncResult"]
