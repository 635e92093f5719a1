"""The order a search reads the catalog in, from an index: open jobs newest first (posted_date, then
id), so a search walks the index and stops once it has what it keeps instead of ranking every match;
on PostgreSQL a title-only tsvector with its own GIN index, whose statistics tell the planner how rare
a word is in titles (a word only descriptions have is found in the index at once, not by walking
every job); and `search_runs.jobs_found_capped`, true when a run's count stopped at its limit (at
least that many).

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("search_runs") as batch:
        batch.add_column(sa.Column("jobs_found_capped", sa.Boolean, nullable=False, server_default=sa.false()))
    # DESC sorts NULLs first on PostgreSQL and last on SQLite: the searches say NULLS LAST on both
    nulls_last = " NULLS LAST" if op.get_bind().dialect.name == "postgresql" else ""
    op.execute(f"CREATE INDEX ix_jobs_open_newest ON jobs (posted_date DESC{nulls_last}, id DESC) "
               "WHERE expired_at IS NULL")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE jobs ADD COLUMN title_vector tsvector GENERATED ALWAYS AS "
                   "(to_tsvector('simple', coalesce(title, ''))) STORED")
        op.execute("CREATE INDEX ix_jobs_title_vector ON jobs USING GIN (title_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE jobs DROP COLUMN title_vector")  # its index goes with it
    op.execute("DROP INDEX ix_jobs_open_newest")
    with op.batch_alter_table("search_runs") as batch:
        batch.drop_column("jobs_found_capped")
