"""PostgreSQL: the search and dedupe indexes hold open jobs only (`WHERE expired_at IS NULL`), as every
query through them asks (a search, the canonical-job check, cross-source duplicates). An expired job's
new row version then enters none of them: expiring a job was a row version entered in every index,
three GIN indexes among them (an expiry of 50,000 jobs of a million: 3.6-3.7 s before, 2.1 s after).
The indexes are built again, holding the table's write lock while they build: on a large catalog,
upgrade at a quiet moment. SQLite: nothing (its UPDATE rewrites a partial index's entries whenever the column of its
WHERE changes, so there an expiry would touch more indexes, not fewer).

Revision ID: 0019
Revises: 0018
"""
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# index: what it is on
_INDEXES = {
    "ix_jobs_search_vector": "USING GIN (search_vector)",
    "ix_jobs_title_vector": "USING GIN (title_vector)",
    "ix_jobs_facets": "USING GIN (facets)",
    "ix_jobs_dedupe_key": "(dedupe_key)",
    "ix_jobs_company_key": "(company_key)",
}


def _rebuild(where: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, on in _INDEXES.items():
        op.execute(f"DROP INDEX {name}")
        op.execute(f"CREATE INDEX {name} ON jobs {on}{where}")


def upgrade() -> None:
    _rebuild(" WHERE expired_at IS NULL")


def downgrade() -> None:
    _rebuild("")
