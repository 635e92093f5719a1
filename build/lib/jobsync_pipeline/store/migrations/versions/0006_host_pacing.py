"""host_pacing: each API host's next free request slot, shared by every process (store/pacing.py).

PostgreSQL only. A reservation there locks its host's row and nothing else, so it never waits for an
apply and an apply never waits for it. A SQLite store keeps the table in a side file instead
(`<store>.pacing.db`, made on first use): in the store itself a reservation would queue behind an
apply's BEGIN IMMEDIATE write lock. On SQLite this revision changes nothing.

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.create_table(
        "host_pacing",
        sa.Column("host", sa.String(255), primary_key=True, comment='"host", or "host:port" for a non-default port'),
        sa.Column("last_slot_at", sa.Double, nullable=False, comment="the newest slot handed out"),
        sa.Column("next_slot_at", sa.Double, nullable=False,
                  comment="the newest slot plus the interval of whoever reserved it"),
        sa.Column("held_until", sa.Double, nullable=False, comment="a Retry-After: no slot before this"),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.drop_table("host_pacing")
