"""PostgreSQL: the facets a search filters on as one tsvector with a GIN index — category (weight A),
workplace (B), location and workplace regions (C), source (D) — so that filters that are each common
but rare together (a category, a place and remote) are found through the index, and the planner
sees how many jobs they admit, instead of walking the catalog for them. SQLite: nothing (its filters
stay WHERE clauses; no latency target there).

Revision ID: 0012
Revises: 0011
"""
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

FACETS = ("setweight(to_tsvector('simple', coalesce(category, '')), 'A') || "
          "setweight(to_tsvector('simple', coalesce(workplace, '')), 'B') || "
          "setweight(to_tsvector('simple', coalesce(location, '') || ' ' || coalesce(workplace_regions, '')), 'C') || "
          "setweight(to_tsvector('simple', source), 'D')")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE jobs ADD COLUMN facets tsvector GENERATED ALWAYS AS ({FACETS}) STORED")
    op.execute("CREATE INDEX ix_jobs_facets ON jobs USING GIN (facets)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE jobs DROP COLUMN facets")  # its index goes with it
