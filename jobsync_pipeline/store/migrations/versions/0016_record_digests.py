"""`jobs.record_hash`: the digest of the source record a job was last written from
(`core.normalize.record_digests`), so that a large file's unchanged jobs are recognised from their
records without being decoded and normalized again. Null for a job written before, or by a source
whose records are not digested; such a job is filled in by the next sync that lists it unchanged.

Revision ID: 0016
Revises: 0015
"""
from alembic import op
import sqlalchemy as sa

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN, nullable without a default: no table rewrite on either database (a batch copy of
    # `jobs` on SQLite would break the canonical_jobs view over it)
    op.add_column("jobs", sa.Column("record_hash", sa.BigInteger))


def downgrade() -> None:
    op.drop_column("jobs", "record_hash")  # SQLite 3.35+ drops columns in place
