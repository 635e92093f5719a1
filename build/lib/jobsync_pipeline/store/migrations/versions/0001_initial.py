"""Initial store: boards, jobs, syncs, job_events, raw_snapshots, bad_records.

Revision ID: 0001
Revises:
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "boards",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("board", sa.String(128), primary_key=True),
        sa.Column("display_name", sa.Text),
        sa.Column("added_at", UTC_TIME, nullable=False),
        sa.Column("last_snapshot_at", UTC_TIME),
        sa.Column("last_synced_at", UTC_TIME),
    )
    op.create_table(
        "jobs",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("board", sa.String(128), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        *(sa.Column(name, sa.Text, nullable=False)
          for name in ("title", "company", "location", "url", "description", "requirements")),
        sa.Column("posted_date", sa.String(32)),
        sa.Column("content_hash", sa.BigInteger, nullable=False),
        *(sa.Column(name, UTC_TIME, nullable=False) for name in ("first_seen_at", "last_seen_at", "updated_at")),
        sa.Column("expired_at", UTC_TIME),
        sa.Column("expired_reason", sa.String(32)),
        sa.UniqueConstraint("source", "board", "external_id", name="uq_jobs_source_board_external_id"),
    )
    op.create_table(
        "syncs",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64)),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("board", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        *(sa.Column(name, sa.Integer, nullable=False)
          for name in ("found", "new", "changed", "unchanged", "expired", "reactivated", "bad", "duplicates")),
        sa.Column("raw_snapshot_id", sa.BigInteger),
        sa.Column("snapshot_at", UTC_TIME),
        sa.Column("started_at", UTC_TIME, nullable=False),
        sa.Column("finished_at", UTC_TIME),
        sa.Column("duration_seconds", sa.Float),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_syncs_source_board_started", "syncs", ["source", "board", "started_at"])
    op.create_index("ix_syncs_run_id", "syncs", ["run_id"])
    op.create_table(
        "job_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.BigInteger, sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("sync_id", sa.BigInteger, sa.ForeignKey("syncs.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
    )
    op.create_index("ix_job_events_sync", "job_events", ["sync_id"])
    op.create_index("ix_job_events_job", "job_events", ["job_id"])
    op.create_table(
        "raw_snapshots",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("board", sa.String(128), nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("fetched_at", UTC_TIME, nullable=False),
        sa.Column("etag", sa.Text),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_raw_snapshots_source_board", "raw_snapshots", ["source", "board", "id"])
    op.create_table(
        "bad_records",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("raw_snapshot_id", sa.BigInteger, sa.ForeignKey("raw_snapshots.id"), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("board", sa.String(128), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("external_id", sa.String(255)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.UniqueConstraint("raw_snapshot_id", "position", name="uq_bad_records_snapshot_position"),
    )


def downgrade() -> None:
    for table in ("bad_records", "raw_snapshots", "job_events", "syncs", "jobs", "boards"):
        op.drop_table(table)
