"""Board lifecycle (active → failing → retired), payload validators, discovery candidates.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("boards") as boards:
        boards.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="active"))
        boards.add_column(sa.Column("origin", sa.String(16)))
        boards.add_column(sa.Column("consecutive_not_found", sa.Integer, nullable=False, server_default="0"))
        boards.add_column(sa.Column("status_changed_at", UTC_TIME))
        boards.add_column(sa.Column("status_reason", sa.Text))
    with op.batch_alter_table("raw_snapshots") as raw:
        raw.add_column(sa.Column("last_modified", sa.Text))
    op.create_table(
        "potential_companies",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("name_key", sa.String(255), nullable=False, unique=True),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("added_at", UTC_TIME, nullable=False),
        sa.Column("last_probed_at", UTC_TIME),
        sa.Column("probe_status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("probe_result", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("potential_companies")
    with op.batch_alter_table("raw_snapshots") as raw:
        raw.drop_column("last_modified")
    with op.batch_alter_table("boards") as boards:
        for column in ("status_reason", "status_changed_at", "consecutive_not_found", "origin", "status"):
            boards.drop_column(column)
