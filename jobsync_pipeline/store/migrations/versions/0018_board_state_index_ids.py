"""PostgreSQL: the board-state index (0017) holds each job's id too, so the apply of a large diff can
write its events by COPY with the ids it read (a join of 130,000 events' ids back to their jobs took
1.3-1.5 s of a million-job apply) and still read the state by an index-only scan. SQLite: nothing.

Revision ID: 0018
Revises: 0017
"""
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_COLUMNS = "external_id, content_hash, record_hash, expired_at, last_seen_at, valid_through"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_jobs_board_state")
    op.execute(f"CREATE INDEX ix_jobs_board_state ON jobs (source, board) INCLUDE (id, {_COLUMNS})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_jobs_board_state")
    op.execute(f"CREATE INDEX ix_jobs_board_state ON jobs (source, board) INCLUDE ({_COLUMNS})")
