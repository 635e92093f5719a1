"""PostgreSQL: the columns an apply reads of every job of its board (its state, and the known records
of a company file) in one index, read by an index-only scan instead of a visit to each job's 2 KB row:
a million jobs' state in 0.7-0.9 s instead of 2.0-2.1 s. Writing it costs nothing measurable beside the
row versions and GIN entries each written job makes anyway (an expiry of 50,000 jobs: 5.6 s with or
without it). SQLite: nothing (a covering index there halved the reads and slowed the writes by more).

Revision ID: 0017
Revises: 0016
"""
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE INDEX ix_jobs_board_state ON jobs (source, board) "
               "INCLUDE (external_id, content_hash, record_hash, expired_at, last_seen_at, valid_through)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_jobs_board_state")
