"""Alembic environment: runs on the connection `Store.migrate` hands over, or on `sqlalchemy.url`."""
from alembic import context
from sqlalchemy import create_engine

from jobsync_pipeline.store.tables import metadata

connection = context.config.attributes.get("connection")


def run(conn) -> None:
    # Our own version table: the store may share a database with Dagster's instance, which has alembic_version.
    context.configure(connection=conn, target_metadata=metadata, render_as_batch=True,
                      version_table="jobsync_alembic_version")
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:
    with create_engine(context.config.get_main_option("sqlalchemy.url")).connect() as conn:
        run(conn)
