"""jobs.salary_source and jobs.salary_period_basis: where a job's pay was read (a structured field, the
pay block of its description, a sentence of it) and how its interval was found (stated, read from the
text, or inferred from the amounts); syncs.already_expired: postings a feed listed although their own
expiry date had passed, so every found posting lands in exactly one count of a sync.

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (SQLite has it): a batch copy of `jobs` would break the canonical_jobs view over it
    op.add_column("jobs", sa.Column("salary_source", sa.String(32)))
    op.add_column("jobs", sa.Column("salary_period_basis", sa.String(16)))
    op.add_column("syncs", sa.Column("already_expired", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("syncs", "already_expired")
    op.drop_column("jobs", "salary_period_basis")  # SQLite 3.35+ drops columns in place
    op.drop_column("jobs", "salary_source")
