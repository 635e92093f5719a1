"""Users, saved searches, the search-run queue and its results; full-text search over jobs kept up to
date by the database itself: an FTS5 index on SQLite (external content, triggers on jobs), a weighted
tsvector column with a GIN index on PostgreSQL (generated, so every insert and update of the apply
keeps it right).

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

SQLITE_FTS = [
    # detail=column: which column a word is in (title matches rank higher), not where in it; a third of
    # the index and of the apply's indexing work. Searches are words, never phrases.
    "CREATE VIRTUAL TABLE jobs_fts USING fts5(title, description, content='jobs', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2', detail=column)",
    "CREATE TRIGGER jobs_fts_insert AFTER INSERT ON jobs BEGIN "
    "INSERT INTO jobs_fts(rowid, title, description) VALUES (new.id, new.title, new.description); END",
    "CREATE TRIGGER jobs_fts_delete AFTER DELETE ON jobs BEGIN "
    "INSERT INTO jobs_fts(jobs_fts, rowid, title, description) VALUES ('delete', old.id, old.title, old.description); END",
    "CREATE TRIGGER jobs_fts_update AFTER UPDATE OF title, description ON jobs BEGIN "
    "INSERT INTO jobs_fts(jobs_fts, rowid, title, description) VALUES ('delete', old.id, old.title, old.description); "
    "INSERT INTO jobs_fts(rowid, title, description) VALUES (new.id, new.title, new.description); END",
    "INSERT INTO jobs_fts(jobs_fts) VALUES ('rebuild')",
]
POSTGRES_FTS = [
    "ALTER TABLE jobs ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('simple', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('simple', coalesce(description, '')), 'B')) STORED",
    "CREATE INDEX ix_jobs_search_vector ON jobs USING GIN (search_vector)",
]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("name", sa.Text),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="Europe/London"),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("last_seen_at", UTC_TIME, nullable=False),
    )
    op.create_table(
        "saved_searches",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("removed_at", UTC_TIME),
    )
    op.create_index("ix_saved_searches_user", "saved_searches", ["user_id"])
    op.create_table(
        "search_runs",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("saved_search_id", sa.BigInteger, sa.ForeignKey("saved_searches.id"), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("client_context", sa.Text),
        sa.Column("jobs_found", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("dagster_run_id", sa.String(64)),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("started_at", UTC_TIME),
        sa.Column("completed_at", UTC_TIME),
    )
    op.create_index("ix_search_runs_status", "search_runs", ["status", "created_at"])
    op.create_index("ix_search_runs_user", "search_runs", ["user_id", "created_at"])
    op.create_index("uq_search_runs_one_pending", "search_runs", ["saved_search_id"], unique=True,
                    sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))
    op.create_table(
        "search_run_results",
        sa.Column("search_run_id", sa.BigInteger, sa.ForeignKey("search_runs.id"), primary_key=True),
        sa.Column("rank", sa.Integer, primary_key=True),
        sa.Column("job_id", sa.BigInteger, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
    )
    for statement in SQLITE_FTS if op.get_bind().dialect.name == "sqlite" else POSTGRES_FTS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("jobs_fts_insert", "jobs_fts_delete", "jobs_fts_update"):
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE jobs_fts")
    else:
        op.execute("DROP INDEX ix_jobs_search_vector")
        op.execute("ALTER TABLE jobs DROP COLUMN search_vector")
    for table in ("search_run_results", "search_runs", "saved_searches", "users"):
        op.drop_table(table)
