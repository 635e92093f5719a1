"""SQLite: the full-text index merges its segments 16 at a time instead of 4 (FTS5 `automerge`), so each
indexed job is rewritten about half as often over the index's life. A sync that writes many jobs (a
company file's 50,000 new and 30,000 changed of a million) spent more time merging segments than
indexing its jobs; a search reads at most 15 segments per level instead of 3, a few lookups more per
word. PostgreSQL: nothing (no segments).

Revision ID: 0017
Revises: 0016
"""
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("INSERT INTO jobs_fts(jobs_fts, rank) VALUES ('automerge', 16)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("INSERT INTO jobs_fts(jobs_fts, rank) VALUES ('automerge', 4)")
