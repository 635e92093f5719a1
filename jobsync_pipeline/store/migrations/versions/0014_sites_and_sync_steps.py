"""Crawled sites' configuration and every sync's steps (issue 17).

`sites` holds each site's validated crawl configuration; `sync_steps` each sync's steps with their
status, progress, counts and errors. An index on syncs (source, board, id) serves the step-history
limit (the last N completed syncs of a board) and `jobsync syncs list`.

Revision ID: 0014
Revises: 0013
"""
from alembic import op
import sqlalchemy as sa

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("search_url", sa.Text, nullable=False),
        sa.Column("keywords", sa.Text, nullable=False),
        sa.Column("max_pages", sa.Integer, nullable=False),
        sa.Column("request_delay", sa.Float, nullable=False),
        sa.Column("max_jobs", sa.Integer, nullable=False),
        sa.Column("timeout", sa.Float, nullable=False),
        sa.Column("browser", sa.Boolean, nullable=False),
        sa.Column("link_selector", sa.Text),
        sa.Column("language", sa.String(8)),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
    )
    op.create_table(
        "sync_steps",
        sa.Column("sync_id", sa.BigInteger, primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("done", sa.Integer),
        sa.Column("total", sa.Integer),
        sa.Column("counts", sa.Text, nullable=False, server_default="{}"),
        sa.Column("error", sa.Text),
        sa.Column("started_at", UTC_TIME),
        sa.Column("finished_at", UTC_TIME),
        sa.Column("updated_at", UTC_TIME, nullable=False),
    )
    op.create_index("ix_syncs_source_board_id", "syncs", ["source", "board", "id"])


def downgrade() -> None:
    op.drop_index("ix_syncs_source_board_id", "syncs")
    op.drop_table("sync_steps")
    op.drop_table("sites")
