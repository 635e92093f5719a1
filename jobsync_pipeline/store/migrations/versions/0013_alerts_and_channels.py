"""Alerts: each user's alert state and digest settings, their notification channels, the notifications
and their deliveries, and the delayed follow-ups of an alert confirmation (issue 16).

A notification is unique per saved search × job, so a window built twice notifies nothing twice; a
follow-up is unique per (user, kind) while pending, by a partial unique index on both databases.

Revision ID: 0013
Revises: 0012
"""
from alembic import op
import sqlalchemy as sa

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("alert_status", sa.String(16), nullable=False, server_default="stopped"))
        batch.add_column(sa.Column("alerts_started_at", UTC_TIME))
        batch.add_column(sa.Column("alerts_confirmed_at", UTC_TIME))
        batch.add_column(sa.Column("confirm_token_hash", sa.String(64)))
        batch.add_column(sa.Column("digest", sa.String(8), nullable=False, server_default="daily"))
        batch.add_column(sa.Column("digest_hour", sa.Integer, nullable=False, server_default="8"))
        batch.add_column(sa.Column("quiet_hours", sa.String(11)))
    op.create_table(
        "channels",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("scheme", sa.String(32), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("masked_url", sa.Text, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("removed_at", UTC_TIME),
    )
    op.create_index("ix_channels_user", "channels", ["user_id"])
    op.create_table(
        "notifications",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("saved_search_id", sa.BigInteger, sa.ForeignKey("saved_searches.id"), nullable=False),
        sa.Column("job_id", sa.BigInteger, nullable=False),
        sa.Column("batch_key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("scheduled_for", UTC_TIME, nullable=False),
        sa.Column("retry_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        sa.Column("claim_key", sa.String(36)),
        sa.Column("claimed_until", UTC_TIME),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("sent_at", UTC_TIME),
        sa.UniqueConstraint("saved_search_id", "job_id", name="uq_notifications_search_job"),
    )
    op.create_index("ix_notifications_due", "notifications", ["status", "scheduled_for"])
    op.create_index("ix_notifications_user", "notifications", ["user_id", "status"])
    op.create_index("ix_notifications_batch", "notifications", ["batch_key"])
    op.create_table(
        "deliveries",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("channel_id", sa.BigInteger, sa.ForeignKey("channels.id")),
        sa.Column("message_key", sa.String(64), nullable=False),
        sa.Column("notifications", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("at", UTC_TIME, nullable=False),
    )
    op.create_index("ix_deliveries_at", "deliveries", ["at"])
    op.create_table(
        "followups",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("scheduled_at", UTC_TIME, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("claimed_until", UTC_TIME),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("processed_at", UTC_TIME),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_followups_due", "followups", ["status", "scheduled_at"])
    # a window's new jobs are read by time (building it, and the sensor that decides to)
    op.create_index("ix_job_events_at", "job_events", ["at"])
    op.create_index("uq_followups_one_pending", "followups", ["user_id", "kind"], unique=True,
                    sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))


def downgrade() -> None:
    op.drop_index("ix_job_events_at", "job_events")
    for table in ("followups", "deliveries", "notifications", "channels"):
        op.drop_table(table)
    with op.batch_alter_table("users") as batch:
        for column in ("quiet_hours", "digest_hour", "digest", "confirm_token_hash", "alerts_confirmed_at",
                       "alerts_started_at", "alert_status"):
            batch.drop_column(column)
