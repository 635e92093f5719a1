"""syncs.expiry_guard: what the expiry guard decided about a sync that expires jobs (refused, an empty
answer held or confirmed, accepted by an operator), so an operator sees why jobs did or did not expire.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("syncs") as syncs:
        syncs.add_column(sa.Column("expiry_guard", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("syncs") as syncs:
        syncs.drop_column("expiry_guard")
