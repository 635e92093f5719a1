"""Operator alerts: the conditions raised, so each is sent at most once an hour and recovers once.

Revision ID: 0015
Revises: 0014
"""
from alembic import op
import sqlalchemy as sa

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ops_alerts",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("first_at", UTC_TIME, nullable=False),
        sa.Column("last_sent_at", UTC_TIME, nullable=False),
        sa.Column("cleared_at", UTC_TIME),
        sa.Column("sends", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("ops_alerts")
